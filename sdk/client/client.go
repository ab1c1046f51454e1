package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Kind is the kind of entity a client logs in as.
type Kind string

// The kinds of entities.
const (
	KindUser        Kind = "user"
	KindParticipant Kind = "participant"
	KindDevice      Kind = "device"
)

// UserManagerModule is the module of the presence RPC methods (online_users, status_devices, …).
const UserManagerModule = "TeraServer.UserManagerModule"

// Credentials are login credentials: a username and password (HTTP Basic) or a token.
type Credentials struct {
	Username string
	Password string
	Token    string
}

// Basic returns username and password credentials (users and participants).
func Basic(username, password string) Credentials {
	return Credentials{Username: username, Password: password}
}

// Token returns token credentials (participants and devices).
func Token(token string) Credentials { return Credentials{Token: token} }

// Client talks to one gateway. Create it with [Login] or [New].
type Client struct {
	base  string
	kind  Kind
	creds Credentials
	o     options
	http  *http.Client

	mu    sync.Mutex
	token string
	uuid  string
	wsURL string // unused websocket_url from the last login
	info  map[string]any
	since string // with WithResume: the position to resume from
}

// New returns a client for baseURL (https://host:port) without logging in: for services and
// scripts that hold a token ([WithToken]).
func New(baseURL string, opts ...Option) (*Client, error) {
	o := defaults()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http(s)://host[:port]", baseURL)
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), o: o, token: o.token, http: o.httpClient, since: o.since}
	if c.http == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = o.tls
		tr.MaxIdleConnsPerHost = 64
		c.http = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	return c, nil
}

// Login logs in to the gateway at baseURL as kind with creds (GET /api/<kind>/login, asking for a
// websocket) and returns a client holding the token for RPC calls and the websocket ticket for
// [Client.Dial]. Users log in with [Basic], participants with [Basic] or [Token], devices with
// [Token]. A refused login returns an [*HTTPError] (401).
func Login(ctx context.Context, baseURL string, kind Kind, creds Credentials, opts ...Option) (*Client, error) {
	switch kind {
	case KindUser, KindParticipant, KindDevice:
	default:
		return nil, fmt.Errorf("client: cannot log in as %q", kind)
	}
	c, err := New(baseURL, opts...)
	if err != nil {
		return nil, err
	}
	c.kind, c.creds = kind, creds
	if err := c.login(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// login (re)logs in with the stored credentials and keeps the token, uuid and websocket_url.
func (c *Client) login(ctx context.Context) error {
	if c.kind == "" {
		return fmt.Errorf("%w: created without Login", ErrNoCredentials)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/"+string(c.kind)+"/login?with_websocket=true", nil)
	if err != nil {
		return err
	}
	if c.creds.Username != "" {
		req.SetBasicAuth(c.creds.Username, c.creds.Password)
	} else if c.creds.Token != "" {
		req.Header.Set("Authorization", "OpenTera "+c.creds.Token)
	} else {
		return ErrNoCredentials
	}
	body, err := c.do(req)
	if err != nil {
		return err
	}
	var info map[string]any
	if err := json.Unmarshal(body, &info); err != nil {
		return fmt.Errorf("client: login reply: %w", err)
	}
	str := func(k string) string { s, _ := info[k].(string); return s }
	token, uuid := c.creds.Token, ""
	switch c.kind {
	case KindUser:
		token, uuid = str("user_token"), str("user_uuid")
	case KindParticipant:
		if t := str("participant_token"); t != "" {
			token = t
		} else if token == "" {
			token = str("base_token")
		}
		uuid = str("participant_uuid")
	case KindDevice:
		if d, ok := info["device_info"].(map[string]any); ok {
			uuid, _ = d["device_uuid"].(string)
		}
	}
	c.mu.Lock()
	c.token, c.uuid, c.wsURL, c.info = token, uuid, str("websocket_url"), info
	c.mu.Unlock()
	return nil
}

// UUID returns the uuid of the logged-in entity ("" for [New] clients).
func (c *Client) UUID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.uuid
}

// Token returns the token used for RPC calls.
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// LoginInfo returns the decoded reply of the last login (nil for [New] clients).
func (c *Client) LoginInfo() map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info
}

// Logout calls GET /api/<kind>/logout: the gateway revokes the token and closes the entity's
// websockets with code 4000.
func (c *Client) Logout(ctx context.Context) error {
	if c.kind == "" {
		return fmt.Errorf("%w: created without Login", ErrNoCredentials)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/"+string(c.kind)+"/logout", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "OpenTera "+c.Token())
	_, err = c.do(req)
	return err
}

// do sends req and returns the body of a 2xx answer, or an [*HTTPError].
func (c *Client) do(req *http.Request) ([]byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return body, &HTTPError{StatusCode: resp.StatusCode, Message: message(body)}
	}
	return body, nil
}

// message extracts an OpenTera error message (a JSON string) or returns the trimmed body.
func message(body []byte) string {
	var s string
	if json.Unmarshal(body, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(body))
}
