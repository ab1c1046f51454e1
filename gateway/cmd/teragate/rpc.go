package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/teragate/teragate/sdk/client"
)

func runRPC(args []string) int {
	return rpcMain(context.Background(), args, os.Stdout, os.Stderr)
}

// rpcMain is `teragate rpc`: it calls one RPC method over HTTP and prints the reply JSON.
func rpcMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rpc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: teragate rpc [flags] <module> <method> [args...]

Calls an RPC method through the gateway's POST /api/rpc/<module> and prints the reply JSON
(the same object OpenTera publishes on reply_to). Each arg is sent as a JSON scalar when it parses
as one (1, 1.5, true, "quoted"), else as a string. Examples:
  teragate rpc -k --token $TOKEN TeraServer.UserManagerModule status_devices
  teragate rpc -k --token $TOKEN TeraServer.UserManagerModule update_device_status <uuid> '{"battery": 80}' 1732145425.5

The exit status is 0 for an OK reply, 1 for an Error reply or a failure, 2 for bad usage.

Flags:
`)
		fs.PrintDefaults()
	}
	url := fs.String("url", "https://127.0.0.1:4040", "gateway base URL")
	token := fs.String("token", os.Getenv("TERAGATE_TOKEN"), "token: a service, user, participant or device token (default $TERAGATE_TOKEN)")
	cacert := fs.String("cacert", "", "PEM certificate to trust (e.g. data/tls/cert.pem of a self-signed gateway)")
	insecureTLS := fs.Bool("k", false, "do not verify the server certificate")
	timeout := fs.Duration("timeout", 10*time.Second, "call timeout")
	returnOnly := fs.Bool("return-value", false, "print only return_value")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() < 2 {
		fs.Usage()
		return 2
	}
	if *token == "" {
		fmt.Fprintln(stderr, "teragate rpc: a token is required (--token or $TERAGATE_TOKEN)")
		return 2
	}
	opts := []client.Option{client.WithToken(*token)}
	if *cacert != "" {
		opts = append(opts, client.WithCACertFile(*cacert))
	}
	if *insecureTLS {
		opts = append(opts, client.WithInsecureSkipVerify())
	}
	c, err := client.New(*url, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "teragate rpc:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := c.CallReply(ctx, fs.Arg(0), fs.Arg(1), parseArgs(fs.Args()[2:])...)
	if rep != nil {
		out := []byte(rep.Raw)
		if *returnOnly {
			out = rep.ReturnValue
		}
		fmt.Fprintln(stdout, string(bytes.TrimSpace(out)))
	}
	if err != nil {
		fmt.Fprintln(stderr, "teragate rpc:", err)
		return 1
	}
	return 0
}

// parseArgs turns command-line words into RPC arguments: JSON scalars when they parse as one
// (numbers keep their literal, so 1 is an integer and 1.0 a float), else the word as a string.
func parseArgs(words []string) []any {
	out := make([]any, len(words))
	for i, w := range words {
		out[i] = parseArg(w)
	}
	return out
}

func parseArg(w string) any {
	switch w {
	case "true":
		return true
	case "false":
		return false
	}
	if strings.HasPrefix(w, `"`) {
		var s string
		if json.Unmarshal([]byte(w), &s) == nil {
			return s
		}
		return w
	}
	if _, err := strconv.ParseFloat(w, 64); err == nil && json.Valid([]byte(w)) {
		return json.Number(w)
	}
	return w
}
