package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/proto/opentera"
)

func runPublish(args []string) int {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: teragate publish [flags] [EVENT_JSON]

Publishes one TeraEvent through the gateway's POST /api/events with a service token.
EVENT_JSON (or stdin when absent or "-") is either a whole TeraEvent in protojson, e.g.
  {"header": {"topic": "module.TeraServer.UserManagerModule.events"}, "events": [{"@type": "type.googleapis.com/opentera.protobuf.StopSessionEvent", "sessionUuid": "s1"}]}
or a single event with --topic, e.g.
  teragate publish --topic websocket.user.<uuid>.events '{"@type": "type.googleapis.com/opentera.protobuf.StopSessionEvent", "sessionUuid": "s1"}'

Flags:
`)
		fs.PrintDefaults()
	}
	url := fs.String("url", "https://127.0.0.1:4040", "gateway base URL")
	token := fs.String("token", os.Getenv("TERAGATE_TOKEN"), "service token (default $TERAGATE_TOKEN)")
	topic := fs.String("topic", "", "publish a single event (EVENT_JSON is one Any) on this topic")
	cacert := fs.String("cacert", "", "PEM certificate to trust (e.g. data/tls/cert.pem of a self-signed gateway)")
	insecureTLS := fs.Bool("k", false, "do not verify the server certificate")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *token == "" {
		fmt.Fprintln(os.Stderr, "teragate publish: a service token is required (--token or $TERAGATE_TOKEN)")
		return 2
	}
	var in []byte
	var err error
	if fs.NArg() == 0 || fs.Arg(0) == "-" {
		in, err = io.ReadAll(os.Stdin)
	} else {
		in = []byte(strings.Join(fs.Args(), " "))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "teragate publish:", err)
		return 1
	}
	body, err := buildEventBody(in, *topic)
	if err != nil {
		fmt.Fprintln(os.Stderr, "teragate publish:", err)
		return 2
	}
	client, err := httpClient(*cacert, *insecureTLS)
	if err != nil {
		fmt.Fprintln(os.Stderr, "teragate publish:", err)
		return 2
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(*url, "/")+"/api/events", bytes.NewReader(body))
	if err != nil {
		fmt.Fprintln(os.Stderr, "teragate publish:", err)
		return 2
	}
	req.Header.Set("Authorization", "OpenTera "+*token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "teragate publish:", err)
		return 1
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(os.Stderr, "teragate publish: %s: %s\n", resp.Status, strings.TrimSpace(string(out)))
		return 1
	}
	fmt.Println(strings.TrimSpace(string(out)))
	return 0
}

// buildEventBody validates the JSON locally (so mistakes are reported before any request) and
// returns a TeraEvent body.
func buildEventBody(in []byte, topic string) ([]byte, error) {
	te := &opentera.TeraEvent{}
	if topic != "" {
		a := &anypb.Any{}
		if err := protojson.Unmarshal(in, a); err != nil {
			return nil, fmt.Errorf("event JSON: %w", err)
		}
		te.Header = &opentera.TeraEvent_Header{Version: 1, Topic: topic}
		te.Events = []*anypb.Any{a}
	} else if err := protojson.Unmarshal(in, te); err != nil {
		return nil, fmt.Errorf("TeraEvent JSON: %w", err)
	}
	if te.GetHeader().GetTopic() == "" {
		return nil, errors.New("the event has no header.topic (give --topic)")
	}
	if te.Header.Time == 0 {
		te.Header.Time = float64(time.Now().UnixMicro()) / 1e6
	}
	return protojson.Marshal(te)
}

func httpClient(cacert string, skipVerify bool) (*http.Client, error) {
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cacert != "" {
		pem, err := os.ReadFile(cacert)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", cacert)
		}
		tcfg.RootCAs = pool
	}
	tcfg.InsecureSkipVerify = skipVerify //nolint:gosec // explicit -k, for self-signed test gateways
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tcfg}}, nil
}
