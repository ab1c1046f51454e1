// Command resume logs in to a teragate gateway, opens the websocket with resume after reconnect
// (sdk/client WithResume) and prints every event it receives with its position. When the
// connection drops it logs in again and resumes from the last event it printed: the events
// published meanwhile arrive first, once each and in order, then the live ones. When the gateway
// cannot resume (its history no longer reaches back), it says so and goes on.
//
//	go run ./examples/resume -k --user alice --password alice-demo
//	go run ./examples/resume -k --since 673276b1348a-3    # from a position printed by an earlier run
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/proto/opentera"
	"github.com/teragate/teragate/sdk/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "resume:", err)
		os.Exit(1)
	}
}

// run is the whole program: flags in args, output on stdout. It returns after --count events,
// when ctx is done, or when the server ends the connection for good (close 4000).
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("resume", flag.ContinueOnError)
	url := fs.String("url", "https://127.0.0.1:4040", "gateway base URL")
	kind := fs.String("kind", "user", "log in as user, participant or device")
	user := fs.String("user", "alice", "username (users and participants)")
	password := fs.String("password", "alice-demo", "password")
	token := fs.String("token", "", "token instead of a password (participants and devices)")
	cacert := fs.String("cacert", "", "PEM certificate to trust (data/tls/cert.pem of a self-signed gateway)")
	insecure := fs.Bool("k", false, "do not verify the server certificate")
	format := fs.String("format", "json", "websocket frames: json (OpenTera's) or proto")
	since := fs.String("since", "", "resume from this position (printed by an earlier run) from the first connection on")
	count := fs.Int("count", 0, "stop after this many events (0: run until interrupted)")
	backoff := fs.Duration("backoff", 500*time.Millisecond, "first reconnection delay (doubles up to 10 s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	creds := client.Basic(*user, *password)
	if *token != "" {
		creds = client.Token(*token)
	}
	opts := []client.Option{client.WithResume(), client.WithBackoff(*backoff, 10*time.Second),
		client.WithStateHook(func(s client.State, err error) {
			if s == client.StateDisconnected {
				fmt.Fprintf(stdout, "connection lost (%v): reconnecting\n", err)
			}
		})}
	if *since != "" {
		opts = append(opts, client.WithResumeFrom(*since))
	}
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
	defer func() {
		conn.Close()
		if p := conn.Position(); p != "" {
			fmt.Fprintf(stdout, "last position %s (resume with --since %s)\n", p, p)
		}
	}()
	fmt.Fprintf(stdout, "connected as %s %s\n", *kind, c.UUID())
	seen := 0
	for ev := range conn.Events() {
		if rf := ev.ResumeFailed; rf != nil {
			// A real client would resynchronise its state here (e.g. the presence RPC).
			fmt.Fprintf(stdout, "resume failed (%s): events may have been missed; continuing from %s\n", rf.GetReason(), rf.GetPosition())
			continue
		}
		for _, m := range ev.Messages {
			fmt.Fprintf(stdout, "%s %s\n", orDash(ev.Position), describe(m))
			seen++
			if *count > 0 && seen >= *count {
				return nil
			}
		}
	}
	return conn.Err()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// describe formats an event in a few words: its type and whom it is about.
func describe(m proto.Message) string {
	switch e := m.(type) {
	case *opentera.UserEvent:
		return fmt.Sprintf("%s %s", e.GetType(), e.GetUserUuid())
	case *opentera.ParticipantEvent:
		return fmt.Sprintf("%s %s", e.GetType(), e.GetParticipantUuid())
	case *opentera.DeviceEvent:
		return fmt.Sprintf("%s %s", e.GetType(), e.GetDeviceUuid())
	case *opentera.JoinSessionEvent:
		return fmt.Sprintf("JoinSessionEvent %s", e.GetSessionUuid())
	case *opentera.LeaveSessionEvent:
		return fmt.Sprintf("LeaveSessionEvent %s", e.GetSessionUuid())
	case *opentera.StopSessionEvent:
		return fmt.Sprintf("StopSessionEvent %s", e.GetSessionUuid())
	}
	name := string(m.ProtoReflect().Descriptor().Name())
	return strings.TrimSpace(name)
}
