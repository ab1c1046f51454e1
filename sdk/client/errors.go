package client

import (
	"errors"
	"fmt"
)

var (
	// ErrDisconnected matches a [*CloseError] with code 4000: the server disconnected the client
	// for good (logout, CMD_CLIENT_DISCONNECT). The client must not reconnect.
	ErrDisconnected = errors.New("client: disconnected by the server")
	// ErrNoWebsocket is returned by [Client.Dial] when the login reply has no websocket_url (the
	// account may not open one, for example a device that is not onlineable).
	ErrNoWebsocket = errors.New("client: no websocket_url in the login reply")
	// ErrNoCredentials is returned when an operation needs a login or a token the client does not
	// have.
	ErrNoCredentials = errors.New("client: no credentials")
	// ErrBadArgument is returned by [Client.Call] for an argument of an unsupported type.
	ErrBadArgument = errors.New("client: unsupported argument")
)

// CloseError is a websocket close from the server.
type CloseError struct {
	// Code is the close code (4000 = disconnected for good, 4001 = too slow, 1001 = shutdown).
	Code int
	// Text is the close reason.
	Text string
}

// Error implements error.
func (e *CloseError) Error() string {
	return fmt.Sprintf("client: websocket closed with %d %s", e.Code, e.Text)
}

// Is makes a close with code 4000 match [ErrDisconnected].
func (e *CloseError) Is(target error) bool { return target == ErrDisconnected && e.Code == 4000 }

// HTTPError is a non-success HTTP answer that is not an RPC reply (for example 401 for a bad
// token, or 403 "Status update forbidden on offline device.").
type HTTPError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the server's message (OpenTera answers a JSON string) or the raw body.
	Message string
}

// Error implements error.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("client: HTTP %d: %s", e.StatusCode, e.Message)
}

// RPCError is an RPC reply with status "Error".
type RPCError struct {
	// StatusCode is the HTTP status of the reply (404 unknown module or method, 400 bad
	// arguments, 403 forbidden, 500 the method failed).
	StatusCode int
	// Method is the method called.
	Method string
	// Reason is the server's explanation.
	Reason string
}

// Error implements error.
func (e *RPCError) Error() string {
	return fmt.Sprintf("client: RPC %s failed (HTTP %d): %s", e.Method, e.StatusCode, e.Reason)
}
