package rooms

import "net/http"

// Session states and events of the wiki's room session state machine (docs/loop-rooms.md).
const (
	StateInit      = "init"
	StateWaiting   = "waiting"
	StateStarting  = "starting"
	StateSending   = "sending"
	StateReceiving = "receiving"
	StateSendRecv  = "sendrecv"
	StateCleanup   = "cleanup"

	EventConnectionCreated   = "Session.connectionCreated"
	EventConnectionDestroyed = "Session.connectionDestroyed"
	EventStreamCreated       = "Session.streamCreated"
	EventStreamDestroyed     = "Session.streamDestroyed"
	EventPublisherCreated    = "Publisher.streamCreated"
	EventPublisherDestroyed  = "Publisher.streamDestroyed"
)

// States lists the wiki's states, in the order of the diagram.
var States = []string{StateInit, StateWaiting, StateStarting, StateSending, StateReceiving, StateSendRecv, StateCleanup}

// Events lists the events a Loop client reports.
var Events = []string{EventConnectionCreated, EventConnectionDestroyed, EventStreamCreated, EventStreamDestroyed, EventPublisherCreated, EventPublisherDestroyed}

func known(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// StatusUpdate is one validated status action.
type StatusUpdate struct {
	Event, State                          string
	Connections, SendStreams, RecvStreams int64
}

// parseStatus validates a status body as the final Loop server does: the five fields defined
// (first missing wins, in order), the counters parseInt-able and non-negative. Event and state
// are free text, bounded by maxField.
func parseStatus(b body, maxField int) (StatusUpdate, *Error) {
	var u StatusUpdate
	for _, f := range []string{"event", "state", "connections", "sendStreams", "recvStreams"} {
		if !b.has(f) {
			return u, badParam("'" + f + "' field is missing in body.")
		}
	}
	for _, c := range []struct {
		name string
		dst  *int64
	}{{"connections", &u.Connections}, {"sendStreams", &u.SendStreams}, {"recvStreams", &u.RecvStreams}} {
		n, ok := ParseIntJS(b[c.name])
		if !ok || n < 0 {
			return u, badParam("Invalid " + c.name + " number.")
		}
		*c.dst = n
	}
	u.Event, u.State = b.text("event"), b.text("state")
	if jsLen(u.Event) > maxField {
		return u, badParam("event should be shorter than " + itoa(maxField) + " characters")
	}
	if jsLen(u.State) > maxField {
		return u, badParam("state should be shorter than " + itoa(maxField) + " characters")
	}
	return u, nil
}

// NextState is the wiki's transition function: the state after event from state, given the
// counters reported with the event, and whether the event is allowed at all. Conditional
// transitions ("send count = 0") keep the state when their condition does not hold.
func NextState(from, event string, u StatusUpdate) (string, bool) {
	if event == EventConnectionDestroyed {
		switch from {
		case StateWaiting:
			return StateInit, true
		case StateCleanup:
			if u.Connections == 1 {
				return StateWaiting, true
			}
			return StateCleanup, true
		case StateStarting, StateSending, StateReceiving, StateSendRecv:
			return StateWaiting, true
		}
		return "", false
	}
	type k struct{ from, event string }
	switch (k{from, event}) {
	case k{StateInit, EventConnectionCreated}:
		return StateWaiting, true
	case k{StateWaiting, EventConnectionCreated}:
		return StateStarting, true
	case k{StateStarting, EventStreamCreated}:
		return StateReceiving, true
	case k{StateStarting, EventPublisherCreated}:
		return StateSending, true
	case k{StateReceiving, EventPublisherCreated}, k{StateSending, EventStreamCreated}:
		return StateSendRecv, true
	case k{StateSendRecv, EventPublisherDestroyed}:
		if u.SendStreams == 0 {
			return StateReceiving, true
		}
		return StateSendRecv, true
	case k{StateSendRecv, EventStreamDestroyed}:
		if u.RecvStreams == 0 {
			return StateSending, true
		}
		return StateSendRecv, true
	case k{StateSending, EventPublisherDestroyed}:
		if u.SendStreams == 0 {
			return StateCleanup, true
		}
		return StateSending, true
	case k{StateReceiving, EventStreamDestroyed}:
		if u.RecvStreams == 0 {
			return StateCleanup, true
		}
		return StateReceiving, true
	}
	return "", false
}

// checkStrict enforces the state machine: the reported state must be a wiki state and the one
// the event leads to from the participant's previous state (init before the first update).
func checkStrict(prev string, u StatusUpdate) *Error {
	if prev == "" {
		prev = StateInit
	}
	if !known(States, u.State) {
		return badParam("Unknown state '" + u.State + "'.")
	}
	next, ok := NextState(prev, u.Event, u)
	if !ok {
		return badParam("Invalid event '" + u.Event + "' for state '" + prev + "'.")
	}
	if next != u.State {
		return errf(http.StatusBadRequest, ErrnoInvalidParameters,
			"Invalid state '"+u.State+"' after event '"+u.Event+"' from state '"+prev+"'; expected '"+next+"'.")
	}
	return nil
}
