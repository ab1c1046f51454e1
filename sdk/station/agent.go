package station

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"google.golang.org/protobuf/proto"

	stationv1 "github.com/teragate/teragate/proto/station/v1"
	"github.com/teragate/teragate/sdk/abi"
)

// Version is the agent's version, sent at registration.
const Version = "teragate-station/1"

// MaxStatusBytes bounds a role status the agent reports: the manager refuses larger ones (and
// closes a station that keeps sending invalid frames), so a larger status is replaced by an
// error status naming its size.
const MaxStatusBytes = 16 << 10

// ErrLogin is returned when the gateway refuses the station's login or websocket.
var ErrLogin = errors.New("station: login refused")

// Agent is a station agent; see the package documentation.
type Agent struct {
	cfg  Config
	log  hclog.Logger
	http *http.Client
	rt   wazero.Runtime
	wg   sync.WaitGroup

	mu        sync.Mutex // role state; held across role calls
	modules   map[string]*module
	instances map[string]*instance
	applied   Roles
	stats     Stats

	cmu  sync.Mutex // the current connection
	conn *conn
}

// conn is one /wss/station connection.
type conn struct {
	ws  *websocket.Conn
	wmu sync.Mutex
}

func (c *conn) send(m *stationv1.StationMessage) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.BinaryMessage, b)
}

// New returns an agent; [Agent.Run] starts it.
func New(cfg Config) (*Agent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12} //nolint:gosec // the operator's choice, for self-signed gateways
	a := &Agent{cfg: cfg, log: cfg.Logger, http: &http.Client{Transport: tr, Timeout: 2 * time.Minute},
		modules: map[string]*module{}, instances: map[string]*instance{}, applied: Roles{}}
	plog := cfg.Logger.Named("role")
	a.rt, err = newRuntime(context.Background(), cfg, func(level int32, msg string) {
		switch level {
		case abi.LogTrace:
			plog.Trace(msg)
		case abi.LogDebug:
			plog.Debug(msg)
		case abi.LogWarn:
			plog.Warn(msg)
		case abi.LogError:
			plog.Error(msg)
		default:
			plog.Info(msg)
		}
	})
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(cfg.StateDir, "roles.json")); err == nil {
		var r Roles
		if err := json.Unmarshal(b, &r); err != nil {
			a.log.Warn("ignoring an unreadable roles.json", "error", err)
		} else if r != nil {
			a.applied = r
		}
	}
	return a, nil
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// Applied returns the role config the agent applied last.
func (a *Agent) Applied() Roles {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied.Clone()
}

// Running returns the role instances, sorted by role and uuid.
func (a *Agent) Running() []Running {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Running
	for _, r := range a.running() {
		out = append(out, Running{Role: r.Role, UUID: r.Uuid, Script: r.Script, State: r.State,
			Status: a.instances[key(r.Role, r.Uuid)].status})
	}
	return out
}

// Run starts the locally saved roles, then connects to the manager, registers and applies its
// pushes, reconnecting with backoff, until ctx is done; then it stops every role instance.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	if len(a.applied) > 0 {
		if err := a.apply(ctx, a.applied); err != nil {
			a.log.Warn("the saved role config does not apply", "error", err)
		}
	}
	a.mu.Unlock()

	tctx, stopTicks := context.WithCancel(ctx)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		t := time.NewTicker(a.cfg.TickInterval)
		defer t.Stop()
		for {
			select {
			case <-tctx.Done():
				return
			case <-t.C:
				a.tick(tctx)
			}
		}
	}()

	backoff := a.cfg.MinBackoff
	for ctx.Err() == nil {
		registered, err := a.session(ctx)
		if ctx.Err() != nil {
			break
		}
		if registered {
			backoff = a.cfg.MinBackoff
		}
		a.log.Warn("disconnected from the manager; reconnecting", "error", err, "in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, a.cfg.MaxBackoff)
	}
	stopTicks()
	a.mu.Lock()
	for _, x := range a.instances {
		a.stop(context.Background(), x)
	}
	a.mu.Unlock()
	a.wg.Wait()
	return a.rt.Close(context.Background())
}

// login gets a device ticket and returns the /wss/station URL.
func (a *Agent) login(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.cfg.URL+"/api/device/login?with_websocket=true", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "OpenTera "+a.cfg.Token)
	resp, err := a.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: device login: %s: %s", ErrLogin, resp.Status, strings.TrimSpace(string(body)))
	}
	var lr struct {
		WebsocketURL string `json:"websocket_url"`
	}
	if err := json.Unmarshal(body, &lr); err != nil || lr.WebsocketURL == "" {
		return "", fmt.Errorf("%w: no websocket_url in the login reply (is the device onlineable?)", ErrLogin)
	}
	u, err := url.Parse(lr.WebsocketURL)
	if err != nil {
		return "", err
	}
	u.Path = "/wss/station"
	return u.String(), nil
}

// session runs one connection: login, dial, register, serve. It reports whether the station
// registered.
func (a *Agent) session(ctx context.Context) (bool, error) {
	wsURL, err := a.login(ctx)
	if err != nil {
		return false, err
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: a.http.Transport.(*http.Transport).TLSClientConfig}
	ws, resp, err := d.DialContext(ctx, wsURL, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return false, fmt.Errorf("%w: /wss/station: %s", ErrLogin, resp.Status)
		}
		return false, err
	}
	ws.SetReadLimit(64 << 20)
	c := &conn{ws: ws}
	stop := context.AfterFunc(ctx, func() {
		c.wmu.Lock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "station stopping"), time.Now().Add(time.Second))
		c.wmu.Unlock()
		_ = ws.Close()
	})
	defer stop()
	defer ws.Close()

	a.mu.Lock()
	reg := &stationv1.Register{Hostname: a.cfg.Hostname, Mac: a.cfg.MAC, Ip: a.cfg.IP, BlockedRoles: a.cfg.BlockedRoles,
		Roles: a.applied.ToProto(), AgentVersion: Version}
	a.mu.Unlock()
	if err := c.send(&stationv1.StationMessage{Id: 1, Body: &stationv1.StationMessage_Register{Register: reg}}); err != nil {
		return false, err
	}
	a.cmu.Lock()
	a.conn = c
	a.cmu.Unlock()
	defer func() {
		a.cmu.Lock()
		if a.conn == c {
			a.conn = nil
		}
		a.cmu.Unlock()
	}()

	registered := false
	var applyMu sync.Mutex
	var pending sync.WaitGroup
	defer pending.Wait()
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return registered, err
		}
		var msg stationv1.ManagerMessage
		if err := proto.Unmarshal(b, &msg); err != nil {
			a.log.Warn("undecodable frame from the manager", "error", err)
			continue
		}
		switch body := msg.Body.(type) {
		case *stationv1.ManagerMessage_RegisterReply:
			res := body.RegisterReply.GetResult()
			registered = true
			a.log.Info("registered with the manager", "result", res.GetCode().String(), "message", res.GetMessage())
			// Off the read loop: a.mu may be held by a long apply (a cold compile), and the read
			// loop must keep answering the manager's pings.
			pending.Add(1)
			go func() {
				defer pending.Done()
				a.mu.Lock()
				defer a.mu.Unlock()
				a.stats.Registrations++
				// The manager forgot the statuses when the last connection closed: send them again.
				for _, x := range a.instances {
					if x.status != "" {
						a.sendAsync(&stationv1.StationMessage{Body: &stationv1.StationMessage_Status{Status: &stationv1.RoleStatus{
							Role: x.role, Uuid: x.uuid, Status: x.status, Timestamp: time.Now().UnixMilli()}}})
					}
				}
			}()
		case *stationv1.ManagerMessage_JobOffer:
			id, o := msg.Id, body.JobOffer
			pending.Add(1)
			go func() {
				defer pending.Done()
				r := a.offer(ctx, o)
				if err := c.send(&stationv1.StationMessage{Id: id, Body: &stationv1.StationMessage_JobReply{JobReply: r}}); err != nil {
					a.log.Debug("job reply not sent", "error", err)
				}
			}()
		case *stationv1.ManagerMessage_UpdateConfiguration:
			id, roles := msg.Id, RolesFromProto(body.UpdateConfiguration.GetRoles())
			pending.Add(1)
			go func() {
				defer pending.Done()
				applyMu.Lock()
				defer applyMu.Unlock()
				a.mu.Lock()
				cerr := a.apply(ctx, roles)
				res := &stationv1.ConfigResult{Running: a.running()}
				a.mu.Unlock()
				if cerr != nil {
					a.log.Warn("refusing the pushed configuration", "code", cerr.code.String(), "message", cerr.msg)
					res.Code, res.Message, res.Roles = cerr.code, cerr.msg, cerr.roles
				}
				if err := c.send(&stationv1.StationMessage{Id: id, Body: &stationv1.StationMessage_ConfigResult{ConfigResult: res}}); err != nil {
					a.log.Debug("config result not sent", "error", err)
				}
			}()
		}
	}
}

// sendAsync sends m on the current connection, if any, without waiting (status reports must not
// hold the role lock on a slow network).
func (a *Agent) sendAsync(m *stationv1.StationMessage) {
	a.cmu.Lock()
	c := a.conn
	a.cmu.Unlock()
	if c == nil {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		_ = c.send(m)
	}()
}
