package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/gorilla/websocket"
)

// runWS is a minimal websocket client (like websocat) for the README walkthrough: it opens a
// websocket_url returned by a login and prints every frame until the server closes it.
func runWS(args []string) int {
	fs := flag.NewFlagSet("ws", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: teragate ws [flags] WEBSOCKET_URL

Opens the websocket_url a login returned and prints each frame on its own line (binary frames
from ?format=proto as hex) until the server closes the connection; then prints the close code.

Flags:
`)
		fs.PrintDefaults()
	}
	cacert := fs.String("cacert", "", "PEM certificate to trust (e.g. data/tls/cert.pem)")
	skip := fs.Bool("k", false, "do not verify the server certificate")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: *skip} //nolint:gosec // explicit -k
	if *cacert != "" {
		pem, err := os.ReadFile(*cacert)
		if err != nil {
			fmt.Fprintln(os.Stderr, "teragate ws:", err)
			return 2
		}
		tcfg.RootCAs = x509.NewCertPool()
		if !tcfg.RootCAs.AppendCertsFromPEM(pem) {
			fmt.Fprintf(os.Stderr, "teragate ws: %s: no PEM certificate\n", *cacert)
			return 2
		}
	}
	d := websocket.Dialer{TLSClientConfig: tcfg, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial(fs.Arg(0), nil)
	if err != nil {
		if resp != nil {
			fmt.Fprintf(os.Stderr, "teragate ws: %v (HTTP %s)\n", err, resp.Status)
		} else {
			fmt.Fprintln(os.Stderr, "teragate ws:", err)
		}
		return 1
	}
	resp.Body.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		time.Sleep(500 * time.Millisecond)
		_ = ws.Close()
	}()
	fmt.Fprintln(os.Stderr, "connected; waiting for events (Ctrl-C to quit)")
	for {
		mt, data, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				fmt.Fprintf(os.Stderr, "closed by the server: %d %s\n", ce.Code, ce.Text)
				return 0
			}
			if ctx.Err() != nil {
				return 0
			}
			fmt.Fprintln(os.Stderr, "teragate ws:", err)
			return 1
		}
		if mt == websocket.BinaryMessage {
			fmt.Printf("%x\n", data)
			continue
		}
		fmt.Println(string(data))
	}
}
