package rooms

import (
	"context"
	"encoding/json"
	"time"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// Room is the stored record of a room (Loop's room.<token> key).
type Room struct {
	// Token is the room token, [A-Za-z0-9_-].
	Token string
	// Name is the deprecated roomName; HasName says whether it was given.
	Name    string
	HasName bool
	// Context is the encrypted context object as given, or nil.
	Context json.RawMessage
	// Owner is the roomOwner display string.
	Owner string
	// OwnerID is the identity of the creating caller (Loop's roomOwnerHmac).
	OwnerID string
	// MaxSize is the room's maxSize.
	MaxSize int
	// ExpiresIn is the room's lifetime in hours as last set by create or patch.
	ExpiresIn int
	// CreationTime, UpdateTime (ctime) and ExpiresAt are Unix seconds.
	CreationTime int64
	UpdateTime   int64
	ExpiresAt    int64
	// Channel is the TokBox channel of Loop (kept, unused).
	Channel string
	// SessionID is the room's session uuid: join's sessionId and the presence session.
	SessionID string
	// Directory is set once a directory principal has joined: deleting the room then stops its
	// presence session.
	Directory bool
}

// Expired reports whether the room's lifetime has passed at now.
func (r *Room) Expired(now time.Time) bool { return now.Unix() >= r.ExpiresAt }

// Status is the last status update of a participant (action "status").
type Status struct {
	// State and Event are the reported state (after the event) and the event.
	State string
	Event string
	// Connections, SendStreams and RecvStreams are the reported counters.
	Connections int64
	SendStreams int64
	RecvStreams int64
	// Updates counts the status updates received.
	Updates int64
	// UpdatedAt is the time of the last update; zero before the first.
	UpdatedAt time.Time
}

// Participant is one participant of a room (Loop's roomparticipant.<token>.<hmac> key).
type Participant struct {
	// ID is the participant key: the keyed hash of the Basic session token, the Hawk id hash, or
	// the directory principal's identity.
	ID string
	// ConnectionID is the roomConnectionId (uuid v4), new on every join.
	ConnectionID string
	// DisplayName and ClientMaxSize are given by join.
	DisplayName   string
	ClientMaxSize int
	// UserID is the caller's user identity (Loop's userMac); empty for link-clickers.
	UserID string
	// Kind and UUID identify a directory principal; Kind is 0 otherwise.
	Kind directory.Kind
	UUID string
	// Basic says that the participant authenticates with its session token (Basic): the token's
	// keyed hash is ID, and the credential lives exactly as long as this record.
	Basic bool
	// JoinedAt is the time of the join; ExpiresAt the end of the participation unless refreshed.
	JoinedAt  time.Time
	ExpiresAt time.Time
	// Status is the last reported session state.
	Status Status
}

// Expired reports whether the participation has ended at now.
func (p *Participant) Expired(now time.Time) bool { return !now.Before(p.ExpiresAt) }

// Tombstone records a deleted room for GET /rooms?version=.
type Tombstone struct {
	// Token is the deleted room's token.
	Token string
	// DeletedAt is the deletion time, Unix seconds.
	DeletedAt int64
}

// ExpiredRoom is a room removed by [Store.Sweep], with the participants it still had.
type ExpiredRoom struct {
	Room         Room
	Participants []Participant
}

// ExpiredParticipant is a participant removed by [Store.Sweep].
type ExpiredParticipant struct {
	Token       string
	Participant Participant
}

// Expired is what one [Store.Sweep] removed.
type Expired struct {
	Rooms        []ExpiredRoom
	Participants []ExpiredParticipant
}

// Store keeps rooms, participants, tombstones, Hawk sessions and nonces with their lifetimes.
//
// Records past their deadline are invisible to every read at once (ErrNotFound), whatever the
// sweep period; [Store.Sweep] deletes them and reports what it removed, so the service can
// publish presence events and notify (the in-memory store's answer to Redis keyspace
// notifications). Returned records are copies. Implementations are safe for concurrent use.
type Store interface {
	// CreateRoom stores a new room; ErrExists if the token is taken, ErrLimit if the owner
	// already has maxPerOwner live rooms (maxPerOwner ≤ 0: no cap). The check and the insert are
	// atomic.
	CreateRoom(ctx context.Context, r Room, now time.Time, maxPerOwner int) error
	// Room returns a live room; ErrNotFound if unknown or expired.
	Room(ctx context.Context, token string, now time.Time) (Room, error)
	// UpdateRoom applies fn to a live room atomically and returns the result; an error from fn
	// is returned unchanged and nothing is stored.
	UpdateRoom(ctx context.Context, token string, now time.Time, fn func(*Room) error) (Room, error)
	// DeleteRoom removes a live room and its participants, and records a tombstone for the
	// room's owner kept until tombUntil. It returns the room and the participants it had.
	DeleteRoom(ctx context.Context, token string, now, tombUntil time.Time) (Room, []Participant, error)
	// OwnerRooms returns the live rooms of an owner, in no particular order.
	OwnerRooms(ctx context.Context, owner string, now time.Time) ([]Room, error)
	// AllRooms returns every live room, in no particular order.
	AllRooms(ctx context.Context, now time.Time) ([]Room, error)
	// Tombstones returns the owner's live tombstones.
	Tombstones(ctx context.Context, owner string, now time.Time) ([]Tombstone, error)

	// Join runs decide on a live room and its live participants atomically; decide returns the
	// participant to store (replacing a record with the same ID) and may modify the room, which
	// is stored too. Join returns the stored room and the record it replaced, if any (possibly
	// an expired one not yet swept).
	Join(ctx context.Context, token string, now time.Time, decide func(r *Room, ps []Participant) (Participant, error)) (Room, *Participant, error)
	// Participants returns the live participants of a live room.
	Participants(ctx context.Context, token string, now time.Time) ([]Participant, error)
	// Participant returns one live participant; ErrNotFound if unknown or expired.
	Participant(ctx context.Context, token, id string, now time.Time) (Participant, error)
	// UpdateParticipant applies fn to a live participant atomically and returns the result.
	UpdateParticipant(ctx context.Context, token, id string, now time.Time, fn func(*Participant) error) (Participant, error)
	// DeleteParticipant removes a live participant and returns it.
	DeleteParticipant(ctx context.Context, token, id string, now time.Time) (Participant, error)

	// PutHawkSession stores a Hawk session (id hash → key) until until; ErrLimit if max
	// sessions are live (max ≤ 0: no cap). The check and the insert are atomic.
	PutHawkSession(ctx context.Context, idHash, key string, now, until time.Time, max int) error
	// HawkSession returns a live session's key and extends it to until; ErrNotFound otherwise.
	HawkSession(ctx context.Context, idHash string, now, until time.Time) (string, error)
	// UseNonce records a nonce until until and reports whether it was fresh (not seen before).
	UseNonce(ctx context.Context, nonce string, now, until time.Time) (bool, error)

	// Sweep deletes everything expired at now and reports the rooms and participants removed.
	Sweep(ctx context.Context, now time.Time) (Expired, error)
	// Counts counts the live rooms and participants at now (the rooms gauges).
	Counts(ctx context.Context, now time.Time) (Counts, error)
}

// Counts are the live rooms and the live participants by state label (see [LabelNone]).
type Counts struct {
	Rooms        int
	Participants map[string]int
}
