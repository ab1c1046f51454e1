package rooms

import (
	"encoding/json"
	"time"
)

// publicView is GET /rooms/{token} without credentials.
type publicView struct {
	RoomToken string          `json:"roomToken"`
	RoomName  *string         `json:"roomName,omitempty"`
	Context   json.RawMessage `json:"context"`
	RoomOwner string          `json:"roomOwner"`
	RoomURL   string          `json:"roomUrl"`
}

// fullView is the room info of participants and the owner, and of listings.
type fullView struct {
	RoomURL       string            `json:"roomUrl"`
	RoomName      *string           `json:"roomName,omitempty"`
	Context       json.RawMessage   `json:"context"`
	RoomOwner     string            `json:"roomOwner"`
	MaxSize       int               `json:"maxSize"`
	ClientMaxSize int               `json:"clientMaxSize"`
	CreationTime  int64             `json:"creationTime"`
	ExpiresAt     int64             `json:"expiresAt"`
	Ctime         int64             `json:"ctime"`
	Participants  []participantView `json:"participants"`
	RoomToken     string            `json:"roomToken"`
	// SessionState is teragate's addition, for the owner and admins only.
	SessionState *SessionState `json:"sessionState,omitempty"`
}

type participantView struct {
	RoomConnectionID string `json:"roomConnectionId"`
	DisplayName      string `json:"displayName"`
	Account          string `json:"account,omitempty"`
	Owner            bool   `json:"owner"`
}

// SessionState is a room's aggregated session state: the number of participants per state
// (none before a first status) and each participant's last report.
type SessionState struct {
	SessionID    string             `json:"sessionId"`
	States       map[string]int     `json:"states"`
	Participants []ParticipantState `json:"participants"`
}

// ParticipantState is one participant's last reported status.
type ParticipantState struct {
	RoomConnectionID string `json:"roomConnectionId"`
	DisplayName      string `json:"displayName"`
	// Kind and UUID name a directory principal.
	Kind        string `json:"kind,omitempty"`
	UUID        string `json:"uuid,omitempty"`
	State       string `json:"state"`
	Event       string `json:"event"`
	Connections int64  `json:"connections"`
	SendStreams int64  `json:"sendStreams"`
	RecvStreams int64  `json:"recvStreams"`
	Updates     int64  `json:"updates"`
	UpdatedAt   int64  `json:"updatedAt"`
	ExpiresAt   int64  `json:"expiresAt"`
}

func namePtr(r Room) *string {
	if !r.HasName {
		return nil
	}
	n := r.Name
	return &n
}

func (s *Service) public(r Room) publicView {
	return publicView{RoomToken: r.Token, RoomName: namePtr(r), Context: r.Context, RoomOwner: r.Owner, RoomURL: s.roomURL(r.Token)}
}

// full builds the full view; withState adds the session state.
func (s *Service) full(r Room, ps []Participant, withState bool) fullView {
	v := fullView{
		RoomURL: s.roomURL(r.Token), RoomName: namePtr(r), Context: r.Context, RoomOwner: r.Owner,
		MaxSize: r.MaxSize, ClientMaxSize: r.MaxSize, CreationTime: r.CreationTime, ExpiresAt: r.ExpiresAt,
		Ctime: r.UpdateTime, Participants: make([]participantView, 0, len(ps)), RoomToken: r.Token,
	}
	for _, p := range ps {
		v.ClientMaxSize = min(v.ClientMaxSize, p.ClientMaxSize)
		v.Participants = append(v.Participants, participantView{
			RoomConnectionID: p.ConnectionID, DisplayName: p.DisplayName,
			Owner: p.UserID != "" && p.UserID == r.OwnerID,
		})
	}
	if withState {
		st := aggregate(r, ps)
		v.SessionState = &st
	}
	return v
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// aggregate summarises the participants' session state.
func aggregate(r Room, ps []Participant) SessionState {
	st := SessionState{SessionID: r.SessionID, States: map[string]int{}, Participants: make([]ParticipantState, 0, len(ps))}
	for _, p := range ps {
		st.States[stateLabel(p.Status)]++
		ps := ParticipantState{
			RoomConnectionID: p.ConnectionID, DisplayName: p.DisplayName, UUID: p.UUID,
			State: p.Status.State, Event: p.Status.Event, Connections: p.Status.Connections,
			SendStreams: p.Status.SendStreams, RecvStreams: p.Status.RecvStreams, Updates: p.Status.Updates,
			UpdatedAt: unix(p.Status.UpdatedAt), ExpiresAt: unix(p.ExpiresAt),
		}
		if p.Kind != 0 {
			ps.Kind = p.Kind.String()
		}
		st.Participants = append(st.Participants, ps)
	}
	return st
}
