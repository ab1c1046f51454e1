package auth

import (
	"errors"
	"time"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrBadCredentials is returned for a wrong password or an unknown username. It is the only
	// error a client should be told about; [ErrUnknownUser] and [ErrWrongPassword] both match it.
	ErrBadCredentials = errors.New("auth: bad credentials")
	// ErrUnknownUser is returned when no user or participant has the given username, or when a
	// token is issued for an entity that does not exist. It matches [ErrBadCredentials].
	ErrUnknownUser error = &reasonError{msg: "auth: unknown user", parent: ErrBadCredentials}
	// ErrWrongPassword is returned when the password does not match, or the entity has no
	// password. It matches [ErrBadCredentials].
	ErrWrongPassword error = &reasonError{msg: "auth: wrong password", parent: ErrBadCredentials}
	// ErrLocked is matched by the [*LockedError] returned while a username is locked for a source
	// address after too many failed passwords from it. Even a correct password is refused then.
	ErrLocked = errors.New("auth: account locked after too many failed attempts")
	// ErrBusy is returned by [Authenticator.Password] when the attempts already in flight for the
	// same username and source address did not finish within MaxLoginWait. It says nothing about
	// the credentials; the client may retry.
	ErrBusy = errors.New("auth: too many login attempts in progress")
	// ErrDisabled is returned when the credentials are right but the entity is disabled in the
	// directory.
	ErrDisabled = errors.New("auth: account disabled")
	// ErrInvalidToken is returned for a token that is malformed, wrongly signed, of an unexpected
	// kind or algorithm, revoked, or that names an entity no longer in the directory.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrRevokedToken is returned for a JWT that was revoked by a logout. It matches
	// [ErrInvalidToken].
	ErrRevokedToken error = &reasonError{msg: "auth: token revoked", parent: ErrInvalidToken}
	// ErrExpiredToken is returned for a correctly signed JWT whose exp has passed.
	ErrExpiredToken = errors.New("auth: token expired")
	// ErrKind is returned when an operation does not apply to the given kind (password login for a
	// device, a JWT for a service, a ticket for kind 0).
	ErrKind = errors.New("auth: unsupported kind")
	// ErrTicketInvalid is returned for an unknown, already used or malformed websocket ticket, or
	// one presented for another kind.
	ErrTicketInvalid = errors.New("auth: invalid ticket")
	// ErrTicketExpired is returned for a websocket ticket presented after its lifetime.
	ErrTicketExpired = errors.New("auth: ticket expired")
	// ErrConfig is returned by [New] for an unusable [Config].
	ErrConfig = errors.New("auth: invalid config")
	// ErrEmptyPassword is returned by [HashPassword] for an empty password.
	ErrEmptyPassword = errors.New("auth: empty password")
)

// reasonError is a finer-grained sentinel that also matches its parent.
type reasonError struct {
	msg    string
	parent error
}

func (e *reasonError) Error() string { return e.msg }

func (e *reasonError) Is(target error) bool { return target == e.parent }

// LockedError is returned by [Authenticator.Password] while a username is locked for the caller's
// source address. It matches [ErrLocked].
type LockedError struct {
	// Until is when the lock ends (suitable for a Retry-After header).
	Until time.Time
}

// Error returns the [ErrLocked] message.
func (e *LockedError) Error() string { return ErrLocked.Error() }

// Is reports whether target is [ErrLocked].
func (e *LockedError) Is(target error) bool { return target == ErrLocked }
