package rpc

import (
	"context"
	"errors"
)

// Errors returned by the router and the transports. Handlers wrap them with %w to add context:
//
//	return nil, fmt.Errorf("%w: uuid must be a string", rpc.ErrBadArgs)
var (
	// ErrUnknownModule is returned for a call to a module that is not registered.
	ErrUnknownModule = errors.New("rpc: unknown module")
	// ErrUnknownMethod is returned for a call to a method the module does not have.
	ErrUnknownMethod = errors.New("rpc: unknown method")
	// ErrBadArgs is returned when the arguments have the wrong number or types.
	ErrBadArgs = errors.New("rpc: bad arguments")
	// ErrForbidden is returned when the caller may not call the method (with these arguments).
	ErrForbidden = errors.New("rpc: forbidden")
	// ErrReserved is returned when a plugin's module would replace built-in methods.
	ErrReserved = errors.New("rpc: module reserved for the gateway's built-in methods")
	// ErrBadName is returned when registering an empty or invalid module or method name.
	ErrBadName = errors.New("rpc: bad name")
	// ErrDuplicate is returned when registering a method that already exists.
	ErrDuplicate = errors.New("rpc: already registered")
	// ErrMalformed is returned when a request cannot be decoded.
	ErrMalformed = errors.New("rpc: malformed request")
	// ErrHandlerPanic is returned when a handler panicked (the panic is recovered).
	ErrHandlerPanic = errors.New("rpc: handler panicked")
)

// Call statuses, the values of the status label of the RPC metrics.
const (
	StatusOK            = "ok"
	StatusError         = "error"
	StatusUnknownModule = "unknown_module"
	StatusUnknownMethod = "unknown_method"
	StatusBadArgs       = "bad_args"
	StatusForbidden     = "forbidden"
	StatusTimeout       = "timeout"
)

// StatusOf maps a call's error to its status label (one of the Status* constants).
func StatusOf(err error) string {
	switch {
	case err == nil:
		return StatusOK
	case errors.Is(err, ErrUnknownModule):
		return StatusUnknownModule
	case errors.Is(err, ErrUnknownMethod):
		return StatusUnknownMethod
	case errors.Is(err, ErrBadArgs):
		return StatusBadArgs
	case errors.Is(err, ErrForbidden):
		return StatusForbidden
	case errors.Is(err, context.DeadlineExceeded):
		return StatusTimeout
	}
	return StatusError
}
