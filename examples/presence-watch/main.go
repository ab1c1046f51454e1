// Command presence-watch logs in to a teragate (or OpenTera) gateway, opens the websocket and
// prints every presence change it is allowed to see: users, participants and devices connecting,
// disconnecting, joining and leaving sessions, and device status updates. It reconnects by itself
// when the connection drops and stops when the server disconnects it (close 4000).
//
//	go run ./examples/presence-watch -k --user admin --password admin-demo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/proto/opentera"
	"github.com/teragate/teragate/sdk/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "presence-watch:", err)
		os.Exit(1)
	}
}

// run is the whole program: flags in args, output on stdout. It returns after --count changes,
// when ctx is done, or when the server ends the connection.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("presence-watch", flag.ContinueOnError)
	url := fs.String("url", "https://127.0.0.1:4040", "gateway base URL")
	kind := fs.String("kind", "user", "log in as user, participant or device")
	user := fs.String("user", "admin", "username (users and participants)")
	password := fs.String("password", "admin-demo", "password")
	token := fs.String("token", "", "token instead of a password (participants and devices)")
	cacert := fs.String("cacert", "", "PEM certificate to trust (data/tls/cert.pem of a self-signed gateway)")
	insecure := fs.Bool("k", false, "do not verify the server certificate")
	format := fs.String("format", "json", "websocket frames: json (OpenTera's) or proto")
	count := fs.Int("count", 0, "stop after this many presence changes (0: run until interrupted)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	creds := client.Basic(*user, *password)
	if *token != "" {
		creds = client.Token(*token)
	}
	var opts []client.Option
	if *cacert != "" {
		opts = append(opts, client.WithCACertFile(*cacert))
	}
	if *insecure {
		opts = append(opts, client.WithInsecureSkipVerify())
	}
	if *format == "proto" {
		opts = append(opts, client.WithFormat(client.FormatProto))
	}
	c, err := client.Login(ctx, *url, client.Kind(*kind), creds, opts...)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	conn, err := c.Dial(ctx)
	if err != nil {
		return fmt.Errorf("websocket: %w", err)
	}
	defer conn.Close()
	fmt.Fprintf(stdout, "watching presence as %s %s\n", *kind, c.UUID())
	seen := 0
	for ev := range conn.Events() {
		for _, m := range ev.Messages {
			line, ok := describe(m)
			if !ok {
				continue
			}
			fmt.Fprintln(stdout, line)
			seen++
			if *count > 0 && seen >= *count {
				return nil
			}
		}
	}
	return conn.Err()
}

// describe formats a presence event as one line; other events report false.
func describe(m proto.Message) (string, bool) {
	switch e := m.(type) {
	case *opentera.UserEvent:
		return fmt.Sprintf("%-28s user        %s %q", e.GetType(), e.GetUserUuid(), e.GetUserFullname()), true
	case *opentera.ParticipantEvent:
		return fmt.Sprintf("%-28s participant %s %q (%s, %s)", e.GetType(), e.GetParticipantUuid(), e.GetParticipantName(),
			e.GetParticipantProjectName(), e.GetParticipantSiteName()), true
	case *opentera.DeviceEvent:
		line := fmt.Sprintf("%-28s device      %s %q", e.GetType(), e.GetDeviceUuid(), e.GetDeviceName())
		if e.GetType() == opentera.DeviceEvent_DEVICE_STATUS_CHANGED {
			line += " " + e.GetDeviceStatus()
		}
		return line, true
	}
	return "", false
}
