// Command rooms walks a Mozilla Loop link-clicker through a teragate room: a directory user
// creates the room, an anonymous link-clicker joins it, reports its session states, refreshes,
// leaves, and finds its session token refused afterwards.
//
//	go run ./examples/rooms                      # against an embedded gateway on a random port
//	go run ./examples/rooms -url http://127.0.0.1:4040 -user alice:alice-demo
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway"
)

func main() {
	if err := run(os.Stdout, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "rooms:", err)
		os.Exit(1)
	}
}

// client is a tiny JSON-over-HTTP client of the rooms API.
type client struct {
	base string
	http *http.Client
}

func (c *client) call(method, path, authz, body string) (int, map[string]any, error) {
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, nil
}

func run(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("rooms", flag.ContinueOnError)
	url := fs.String("url", "", "gateway base URL (plain HTTP); empty starts an embedded gateway")
	user := fs.String("user", "alice:alice-demo", "directory user (username:password) who owns the room")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := &client{base: *url, http: &http.Client{Timeout: 10 * time.Second}}
	if c.base == "" {
		dir, err := os.MkdirTemp("", "teragate-rooms-example")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		gw, err := gateway.New(gateway.Config{Listen: "127.0.0.1:0", Insecure: true, DataDir: dir, Logger: hclog.NewNullLogger()})
		if err != nil {
			return err
		}
		if err := gw.Start(context.Background()); err != nil {
			return err
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = gw.Shutdown(ctx)
		}()
		c.base = gw.URL()
	}

	// 1. The owner logs in (OpenTera login) and creates a room with its teragate token.
	name, pass, _ := strings.Cut(*user, ":")
	req, _ := http.NewRequest(http.MethodGet, c.base+"/api/user/login", nil)
	req.SetBasicAuth(name, pass)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	var login struct {
		UserToken string `json:"user_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if err != nil || login.UserToken == "" {
		return fmt.Errorf("login as %s failed (%d)", name, resp.StatusCode)
	}
	owner := "OpenTera " + login.UserToken
	fmt.Fprintf(w, "owner %s logged in\n", name)

	code, out, err := c.call(http.MethodPost, "/rooms", owner, `{"roomName":"Example","roomOwner":"`+name+`","maxSize":3}`)
	if err != nil || code != http.StatusCreated {
		return fmt.Errorf("create room: %d %v %v", code, out, err)
	}
	room := "/rooms/" + out["roomToken"].(string)
	fmt.Fprintf(w, "room created: %d\n", code)

	// 2. A link-clicker joins without credentials; its sessionToken is its Basic credential.
	code, out, err = c.call(http.MethodPost, room, "", `{"action":"join","displayName":"Link clicker","clientMaxSize":3}`)
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("join: %d %v %v", code, out, err)
	}
	clicker := "Basic " + base64.StdEncoding.EncodeToString([]byte(out["sessionToken"].(string)+":"))
	fmt.Fprintf(w, "joined: %d expires=%v\n", code, out["expires"])

	// 3. Session states as the Firefox client reports them (state after the event).
	for _, s := range []struct {
		event, state string
		conns, send  int
		recv         int
	}{
		{"Session.connectionCreated", "waiting", 1, 0, 0},
		{"Session.connectionCreated", "starting", 2, 0, 0},
		{"Publisher.streamCreated", "sending", 2, 1, 0},
		{"Session.streamCreated", "sendrecv", 2, 1, 1},
	} {
		body := fmt.Sprintf(`{"action":"status","event":%q,"state":%q,"connections":%d,"sendStreams":%d,"recvStreams":%d}`, s.event, s.state, s.conns, s.send, s.recv)
		if code, _, err = c.call(http.MethodPost, room, clicker, body); err != nil {
			return err
		}
		fmt.Fprintf(w, "status %s: %d\n", s.state, code)
	}

	// 4. The owner sees the aggregated session state.
	_, out, err = c.call(http.MethodGet, room, owner, "")
	if err != nil {
		return err
	}
	states, _ := json.Marshal(out["sessionState"].(map[string]any)["states"])
	fmt.Fprintf(w, "owner sees states: %s\n", states)

	// 5. Refresh, leave, and the token is refused.
	code, _, _ = c.call(http.MethodPost, room, clicker, `{"action":"refresh"}`)
	fmt.Fprintf(w, "refresh: %d\n", code)
	code, _, _ = c.call(http.MethodPost, room, clicker, `{"action":"leave"}`)
	fmt.Fprintf(w, "leave: %d\n", code)
	code, out, _ = c.call(http.MethodPost, room, clicker, `{"action":"refresh"}`)
	fmt.Fprintf(w, "token after leave: %d errno=%v %v\n", code, out["errno"], out["error"])
	return nil
}
