// Command rpc-caller calls the presence methods of a teragate gateway over HTTP (POST
// /api/rpc/TeraServer.UserManagerModule) and prints each return value. A service token sees
// everyone; a user, participant or device token only the uuids that entity may access.
//
//	go run ./examples/rpc-caller -k --token dbY8gNftvqx3C65aRU36iwtMjBsJM68-T2TZfpLn
//	go run ./examples/rpc-caller -k --token $TOKEN status_devices online_users
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/teragate/teragate/sdk/client"
)

// defaultMethods are the read-only presence methods, called when none are named.
var defaultMethods = []string{
	"online_users", "online_participants", "online_devices",
	"busy_users", "busy_participants", "busy_devices",
	"status_users", "status_participants", "status_devices",
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rpc-caller:", err)
		os.Exit(1)
	}
}

// run is the whole program: flags and method names in args, one line per method on stdout.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rpc-caller", flag.ContinueOnError)
	url := fs.String("url", "https://127.0.0.1:4040", "gateway base URL")
	token := fs.String("token", os.Getenv("TERAGATE_TOKEN"), "token (service, user, participant or device; default $TERAGATE_TOKEN)")
	cacert := fs.String("cacert", "", "PEM certificate to trust")
	insecure := fs.Bool("k", false, "do not verify the server certificate")
	module := fs.String("module", client.UserManagerModule, "RPC module")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" {
		return errors.New("a token is required (--token or $TERAGATE_TOKEN)")
	}
	opts := []client.Option{client.WithToken(*token)}
	if *cacert != "" {
		opts = append(opts, client.WithCACertFile(*cacert))
	}
	if *insecure {
		opts = append(opts, client.WithInsecureSkipVerify())
	}
	c, err := client.New(*url, opts...)
	if err != nil {
		return err
	}
	methods := fs.Args()
	if len(methods) == 0 {
		methods = defaultMethods
	}
	for _, m := range methods {
		raw, err := c.Call(ctx, *module, m)
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		fmt.Fprintf(stdout, "%s: %s\n", m, raw)
	}
	return nil
}
