package presence

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/proto/opentera"
)

// Module topics of the user manager.
const (
	// TopicMessages is where the user manager receives TeraModuleMessages.
	TopicMessages = "module.TeraServer.UserManagerModule.messages"
	// TopicEvents is where it publishes presence events.
	TopicEvents = "module.TeraServer.UserManagerModule.events"
)

// Config configures a [Registry].
type Config struct {
	// Bus carries the module's messages and events. Required.
	Bus bus.Bus
	// Directory resolves names for JOINED/LEFT events. Required.
	Directory *directory.Store
	// Logger is the registry's logger. Nil means no logging.
	Logger hclog.Logger
	// OnPublish, if set, is called after each event the registry publishes (for metrics).
	OnPublish func()
}

type key struct {
	kind directory.Kind
	uuid string
}

// Registry is the presence registry.
type Registry struct {
	cfg Config
	log hclog.Logger

	mu       sync.RWMutex
	online   map[key]int                 // connection count per entity
	order    []key                       // online entities in connection order
	busy     map[key]string              // entity → session uuid
	sessions map[string]map[key]struct{} // session uuid → members

	sub bus.Subscription
}

// New returns an empty registry; call [Registry.Start] to consume the module topic.
func New(cfg Config) *Registry {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Registry{
		cfg: cfg, log: cfg.Logger,
		online: map[key]int{}, busy: map[key]string{}, sessions: map[string]map[key]struct{}{},
	}
}

// Start subscribes to the module's message topic.
func (r *Registry) Start(ctx context.Context) error {
	sub, err := r.cfg.Bus.Subscribe(ctx, TopicMessages, r.onMessage)
	if err != nil {
		return fmt.Errorf("presence: subscribe: %w", err)
	}
	r.sub = sub
	return nil
}

// Stop unsubscribes.
func (r *Registry) Stop(ctx context.Context) error {
	if r.sub == nil {
		return nil
	}
	return r.sub.Unsubscribe(ctx)
}

// Online reports whether the entity has at least one open connection.
func (r *Registry) Online(kind directory.Kind, uuid string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.online[key{kind, uuid}] > 0
}

// Connections returns the entity's open connection count.
func (r *Registry) Connections(kind directory.Kind, uuid string) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.online[key{kind, uuid}]
}

// OnlineList returns the uuids of the online entities of kind, in connection order.
func (r *Registry) OnlineList(kind directory.Kind) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := []string{}
	for _, k := range r.order {
		if k.kind == kind {
			out = append(out, k.uuid)
		}
	}
	return out
}

// Busy returns the session the entity is busy in, if any.
func (r *Registry) Busy(kind directory.Kind, uuid string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.busy[key{kind, uuid}]
	return s, ok
}

// InSession implements filter.Sessions: the entity was invited to the session and the session
// has not been stopped.
func (r *Registry) InSession(kind directory.Kind, uuid, session string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.sessions[session][key{kind, uuid}]
	return ok
}

func (r *Registry) onMessage(m bus.Message) {
	var msg opentera.TeraModuleMessage
	if err := proto.Unmarshal(m.Payload, &msg); err != nil {
		r.log.Warn("undecodable module message", "topic", m.Channel, "error", err)
		return
	}
	ctx := context.Background()
	for _, a := range msg.GetData() {
		r.handle(ctx, a)
	}
}

func (r *Registry) handle(ctx context.Context, a *anypb.Any) {
	m, err := a.UnmarshalNew()
	if err != nil {
		r.log.Debug("ignoring module message data", "type", a.GetTypeUrl(), "error", err)
		return
	}
	switch ev := m.(type) {
	case *opentera.UserEvent:
		switch ev.GetType() {
		case opentera.UserEvent_USER_CONNECTED:
			r.connect(ctx, key{directory.KindUser, ev.GetUserUuid()}, ev)
		case opentera.UserEvent_USER_DISCONNECTED:
			r.disconnect(ctx, key{directory.KindUser, ev.GetUserUuid()}, ev)
		}
	case *opentera.ParticipantEvent:
		switch ev.GetType() {
		case opentera.ParticipantEvent_PARTICIPANT_CONNECTED:
			r.connect(ctx, key{directory.KindParticipant, ev.GetParticipantUuid()}, ev)
		case opentera.ParticipantEvent_PARTICIPANT_DISCONNECTED:
			r.disconnect(ctx, key{directory.KindParticipant, ev.GetParticipantUuid()}, ev)
		}
	case *opentera.DeviceEvent:
		switch ev.GetType() {
		case opentera.DeviceEvent_DEVICE_CONNECTED:
			r.connect(ctx, key{directory.KindDevice, ev.GetDeviceUuid()}, ev)
		case opentera.DeviceEvent_DEVICE_DISCONNECTED:
			r.disconnect(ctx, key{directory.KindDevice, ev.GetDeviceUuid()}, ev)
		}
	case *opentera.JoinSessionEvent:
		r.join(ctx, ev)
	case *opentera.StopSessionEvent:
		r.stop(ctx, ev.GetSessionUuid())
	case *opentera.LeaveSessionEvent:
		for _, k := range members(ev.GetLeavingUsers(), ev.GetLeavingParticipants(), ev.GetLeavingDevices()) {
			r.leave(ctx, k, ev.GetSessionUuid())
		}
	case *opentera.JoinSessionReplyEvent:
		if ev.GetJoinReply() == opentera.JoinSessionReplyEvent_REPLY_ACCEPTED {
			return
		}
		for _, k := range members(nonEmpty(ev.GetUserUuid()), nonEmpty(ev.GetParticipantUuid()), nonEmpty(ev.GetDeviceUuid())) {
			r.leave(ctx, k, ev.GetSessionUuid())
		}
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func members(users, participants, devices []string) []key {
	var out []key
	for _, u := range users {
		out = append(out, key{directory.KindUser, u})
	}
	for _, u := range participants {
		out = append(out, key{directory.KindParticipant, u})
	}
	for _, u := range devices {
		out = append(out, key{directory.KindDevice, u})
	}
	return out
}

func (r *Registry) connect(ctx context.Context, k key, ev proto.Message) {
	if k.uuid == "" {
		return
	}
	r.mu.Lock()
	if r.online[k] == 0 {
		r.order = append(r.order, k)
	}
	r.online[k]++
	r.mu.Unlock()
	r.publish(ctx, ev)
}

func (r *Registry) disconnect(ctx context.Context, k key, ev proto.Message) {
	r.mu.Lock()
	n := r.online[k]
	if n == 0 {
		r.mu.Unlock()
		return
	}
	last := n == 1
	if last {
		delete(r.online, k)
		for i, x := range r.order {
			if x == k {
				r.order = append(r.order[:i], r.order[i+1:]...)
				break
			}
		}
	} else {
		r.online[k] = n - 1
	}
	r.mu.Unlock()
	if last {
		r.publish(ctx, ev)
	}
}

func (r *Registry) join(ctx context.Context, ev *opentera.JoinSessionEvent) {
	session := ev.GetSessionUuid()
	if session == "" {
		return
	}
	list := members(ev.GetSessionUsers(), ev.GetSessionParticipants(), ev.GetSessionDevices())
	r.mu.Lock()
	set := r.sessions[session]
	if set == nil {
		set = map[key]struct{}{}
		r.sessions[session] = set
	}
	for _, k := range list {
		set[k] = struct{}{}
		if _, busy := r.busy[k]; !busy { // first session wins
			r.busy[k] = session
		}
	}
	r.mu.Unlock()
	for _, k := range list {
		r.publish(ctx, r.sessionEvent(k, true))
	}
}

func (r *Registry) leave(ctx context.Context, k key, session string) {
	r.mu.Lock()
	if s, ok := r.busy[k]; ok && s == session {
		delete(r.busy, k)
	} else if ok {
		r.log.Debug("leave for another session than the busy one", "kind", k.kind, "uuid", k.uuid, "busy", s, "leave", session)
	}
	r.mu.Unlock()
	r.publish(ctx, r.sessionEvent(k, false))
}

func (r *Registry) stop(ctx context.Context, session string) {
	r.mu.Lock()
	var left []key
	for k, s := range r.busy {
		if s == session {
			left = append(left, k)
			delete(r.busy, k)
		}
	}
	delete(r.sessions, session)
	r.mu.Unlock()
	for _, k := range left {
		r.publish(ctx, r.sessionEvent(k, false))
	}
}

// sessionEvent builds the JOINED_SESSION / LEFT_SESSION event of an entity, with the names
// OpenTera fills in from its database.
func (r *Registry) sessionEvent(k key, joined bool) proto.Message {
	snap := r.cfg.Directory.Current()
	switch k.kind {
	case directory.KindUser:
		ev := &opentera.UserEvent{UserUuid: k.uuid, Type: opentera.UserEvent_USER_LEFT_SESSION}
		if joined {
			ev.Type = opentera.UserEvent_USER_JOINED_SESSION
		}
		if u, ok := snap.User(k.uuid); ok {
			ev.UserFullname = u.Fullname
		}
		return ev
	case directory.KindParticipant:
		ev := &opentera.ParticipantEvent{ParticipantUuid: k.uuid, Type: opentera.ParticipantEvent_PARTICIPANT_LEFT_SESSION}
		if joined {
			ev.Type = opentera.ParticipantEvent_PARTICIPANT_JOINED_SESSION
		}
		ev.ParticipantName, ev.ParticipantProjectName, ev.ParticipantSiteName = ParticipantNames(snap, k.uuid)
		return ev
	default:
		ev := &opentera.DeviceEvent{DeviceUuid: k.uuid, Type: opentera.DeviceEvent_DEVICE_LEFT_SESSION}
		if joined {
			ev.Type = opentera.DeviceEvent_DEVICE_JOINED_SESSION
		}
		if d, ok := snap.Device(k.uuid); ok {
			ev.DeviceName = d.Name
		}
		return ev
	}
}

// ParticipantNames returns a participant's name, project name and site name from the directory.
func ParticipantNames(snap *directory.Snapshot, uuid string) (name, project, site string) {
	p, ok := snap.Participant(uuid)
	if !ok {
		return "", "", ""
	}
	name = p.Name
	if pr, ok := snap.Project(p.Project); ok {
		project = pr.Name
		if s, ok := snap.Site(pr.Site); ok {
			site = s.Name
		}
	}
	return name, project, site
}

// publish sends one event in its own TeraEvent on the module's event topic.
func (r *Registry) publish(ctx context.Context, m proto.Message) {
	payload, err := EncodeEvent(TopicEvents, m)
	if err != nil {
		r.log.Error("encoding presence event", "error", err)
		return
	}
	if err := r.cfg.Bus.Publish(ctx, TopicEvents, payload); err != nil {
		if errors.Is(err, bus.ErrClosed) {
			r.log.Debug("presence event not published: bus closed (shutting down)")
			return
		}
		r.log.Error("publishing presence event", "error", err)
		return
	}
	if r.cfg.OnPublish != nil {
		r.cfg.OnPublish()
	}
}

// EncodeEvent returns the binary TeraEvent (version 1, current time, topic) holding m.
func EncodeEvent(topic string, m proto.Message) ([]byte, error) {
	a, err := opentera.NewAny(m)
	if err != nil {
		return nil, err
	}
	te := &opentera.TeraEvent{
		Header: &opentera.TeraEvent_Header{Version: 1, Time: float64(time.Now().UnixMicro()) / 1e6, Topic: topic},
		Events: []*anypb.Any{a},
	}
	return proto.Marshal(te)
}

// EncodeModuleMessage returns the binary TeraModuleMessage from source to dest holding m.
func EncodeModuleMessage(source, dest string, m proto.Message) ([]byte, error) {
	a, err := opentera.NewAny(m)
	if err != nil {
		return nil, err
	}
	mm := &opentera.TeraModuleMessage{
		Head: &opentera.TeraModuleMessage_Header{Version: 1, Time: float64(time.Now().UnixMicro()) / 1e6, Source: source, Dest: dest},
		Data: []*anypb.Any{a},
	}
	return proto.Marshal(mm)
}
