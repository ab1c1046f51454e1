package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/teragate/teragate/sdk/client"
)

// runWS is a minimal websocket client (like websocat) for the README walkthrough: it opens a
// websocket_url returned by a login and prints every frame until the server closes it.
func runWS(args []string) int {
	fs := flag.NewFlagSet("ws", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: teragate ws [flags] WEBSOCKET_URL
       teragate ws --resume --user NAME:PASSWORD [flags] https://HOST:PORT

Opens the websocket_url a login returned and prints each frame on its own line (binary frames
from ?format=proto as hex) until the server closes the connection; then prints the close code.

With --resume the frames carry their position (resume=1); --since POS resumes from a position
printed by an earlier run: the gateway first sends what was published after it. When it ends,
ws prints the last position received.

Given the gateway's base URL and --user (or --token with --kind), ws logs in itself and
reconnects when the connection drops — with --resume, without missing an event (ResumeFailed
is printed when the gateway cannot resume).

Flags:
`)
		fs.PrintDefaults()
	}
	cacert := fs.String("cacert", "", "PEM certificate to trust (e.g. data/tls/cert.pem)")
	skip := fs.Bool("k", false, "do not verify the server certificate")
	resume := fs.Bool("resume", false, "opt in to positions and resume (resume=1)")
	since := fs.String("since", "", "resume from this position (implies --resume)")
	user := fs.String("user", "", "NAME:PASSWORD: log in to the base URL and reconnect by itself")
	token := fs.String("token", "", "token to log in with (participants, devices), with --kind")
	kind := fs.String("kind", "user", "entity kind to log in as: user, participant or device")
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
	if *since != "" {
		*resume = true
	}
	if *user != "" || *token != "" {
		return wsLoop(fs.Arg(0), *kind, *user, *token, *since, *resume, tcfg)
	}
	target := fs.Arg(0)
	if *resume {
		target += "&resume=1"
		if *since != "" {
			target += "&since=" + url.QueryEscape(*since)
		}
	}
	d := websocket.Dialer{TLSClientConfig: tcfg, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial(target, nil)
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
	last := ""
	defer func() {
		if *resume && last != "" {
			fmt.Fprintf(os.Stderr, "last position: %s (resume with --since %s)\n", last, last)
		}
	}()
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
		if *resume {
			if ev, err := client.DecodeFrame(mt == websocket.BinaryMessage, data); err == nil {
				switch {
				case ev.ResumeFailed != nil:
					last = ev.ResumeFailed.GetPosition()
					fmt.Fprintf(os.Stderr, "resume failed (%s): events may have been missed; continuing from %s\n", ev.ResumeFailed.GetReason(), last)
				case ev.Position != "":
					last = ev.Position
				}
			}
		}
		if mt == websocket.BinaryMessage {
			fmt.Printf("%x\n", data)
			continue
		}
		fmt.Println(string(data))
	}
}

// wsLoop logs in to base with the SDK and prints each event as JSON (with its position), reconnecting
// (and, with resume, resuming) until Ctrl-C or a terminal close.
func wsLoop(base, kind, user, token, since string, resume bool, tcfg *tls.Config) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	creds := client.Token(token)
	if user != "" {
		name, pw, _ := strings.Cut(user, ":")
		creds = client.Basic(name, pw)
	}
	opts := []client.Option{client.WithTLSConfig(tcfg), client.WithStateHook(func(s client.State, err error) {
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", s, err)
			return
		}
		fmt.Fprintln(os.Stderr, s)
	})}
	switch {
	case since != "":
		opts = append(opts, client.WithResumeFrom(since))
	case resume:
		opts = append(opts, client.WithResume())
	}
	c, err := client.Login(ctx, base, client.Kind(kind), creds, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "teragate ws:", err)
		return 1
	}
	conn, err := c.Dial(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "teragate ws:", err)
		return 1
	}
	for ev := range conn.Events() {
		if ev.ResumeFailed != nil {
			fmt.Fprintf(os.Stderr, "resume failed (%s): events may have been missed; continuing from %s\n",
				ev.ResumeFailed.GetReason(), ev.ResumeFailed.GetPosition())
			continue
		}
		b, err := protojson.Marshal(ev.TeraEvent)
		if err != nil {
			continue
		}
		if ev.Position != "" {
			fmt.Printf("{\"position\":%q,\"event\":%s}\n", ev.Position, b)
			continue
		}
		fmt.Println(string(b))
	}
	if resume && conn.Position() != "" {
		fmt.Fprintf(os.Stderr, "last position: %s\n", conn.Position())
	}
	if err := conn.Err(); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "teragate ws:", err)
		return 1
	}
	return 0
}
