package presence

import (
	"context"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/proto/opentera"
)

func (r *Registry) onMessage(m bus.Message) {
	if r.syncing(m.Payload) {
		return
	}
	var msg opentera.TeraModuleMessage
	if err := proto.Unmarshal(m.Payload, &msg); err != nil {
		r.log.Warn("undecodable module message", "topic", m.Channel, "error", err)
		return
	}
	if msg.GetHead().GetSource() == ResyncSource {
		// A node rewrote its ownership: what this replica counted may be stale.
		r.ScheduleResync()
		return
	}
	ctx := context.Background()
	c := &claim{r: r, payload: m.Payload, seq: msg.GetHead().GetSeq()}
	for _, a := range msg.GetData() {
		r.handle(ctx, a, c)
	}
}

func (r *Registry) handle(ctx context.Context, a *anypb.Any, c *claim) {
	m, err := a.UnmarshalNew()
	if err != nil {
		r.log.Debug("ignoring module message data", "type", a.GetTypeUrl(), "error", err)
		return
	}
	switch ev := m.(type) {
	case *opentera.UserEvent:
		switch ev.GetType() {
		case opentera.UserEvent_USER_CONNECTED:
			r.connect(ctx, c, key{directory.KindUser, ev.GetUserUuid()}, ev, a)
		case opentera.UserEvent_USER_DISCONNECTED:
			r.disconnect(ctx, c, key{directory.KindUser, ev.GetUserUuid()}, ev, a)
		}
	case *opentera.ParticipantEvent:
		switch ev.GetType() {
		case opentera.ParticipantEvent_PARTICIPANT_CONNECTED:
			r.connect(ctx, c, key{directory.KindParticipant, ev.GetParticipantUuid()}, ev, a)
		case opentera.ParticipantEvent_PARTICIPANT_DISCONNECTED:
			r.disconnect(ctx, c, key{directory.KindParticipant, ev.GetParticipantUuid()}, ev, a)
		}
	case *opentera.DeviceEvent:
		switch ev.GetType() {
		case opentera.DeviceEvent_DEVICE_CONNECTED:
			r.connect(ctx, c, key{directory.KindDevice, ev.GetDeviceUuid()}, ev, a)
		case opentera.DeviceEvent_DEVICE_DISCONNECTED:
			r.disconnect(ctx, c, key{directory.KindDevice, ev.GetDeviceUuid()}, ev, a)
		case opentera.DeviceEvent_DEVICE_STATUS_CHANGED:
			if r.cfg.Cluster != nil { // a replica's update (updateClustered)
				r.applyStatus(ctx, c, ev, a)
			}
		}
	case *opentera.JoinSessionEvent:
		r.join(ctx, c, ev)
	case *opentera.StopSessionEvent:
		r.stop(ctx, c, ev.GetSessionUuid())
	case *opentera.LeaveSessionEvent:
		for _, k := range memberKeys(ev.GetLeavingUsers(), ev.GetLeavingParticipants(), ev.GetLeavingDevices()) {
			r.leave(ctx, c, k, ev.GetSessionUuid())
		}
	case *opentera.JoinSessionReplyEvent:
		if ev.GetJoinReply() == opentera.JoinSessionReplyEvent_REPLY_ACCEPTED {
			return
		}
		for _, k := range memberKeys(nonEmpty(ev.GetUserUuid()), nonEmpty(ev.GetParticipantUuid()), nonEmpty(ev.GetDeviceUuid())) {
			r.leave(ctx, c, k, ev.GetSessionUuid())
		}
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func memberKeys(users, participants, devices []string) []key {
	out := make([]key, 0, len(users)+len(participants)+len(devices))
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

// connect counts one more connection of k. The first one (cluster-wide: every replica counts
// every node's connections) republishes its CONNECTED event, which reaches everyone who may see
// k, the new connection included; a further one publishes nothing, and the connection is greeted
// alone if it is this node's ([Registry.Announce]). a is the event as received, republished
// without re-encoding.
func (r *Registry) connect(ctx context.Context, c *claim, k key, ev proto.Message, a *anypb.Any) {
	if k.uuid == "" {
		return
	}
	st := &r.kinds[k.kind]
	r.mu.Lock()
	first := false
	if n := st.online.get(k.uuid); n != nil {
		n.val.conns++
	} else {
		v := onlineVal{conns: 1}
		if b := st.busy.get(k.uuid); b != nil {
			b.val.online, v.busy = true, true
		}
		st.online.add(k.uuid, v)
		first = true
	}
	r.mu.Unlock()
	greet := r.takeGreet(c.seq, k)
	switch {
	case first:
		if c.ok(ctx) {
			r.publishAny(ctx, ev, a)
		}
	case greet != nil:
		greet()
	}
}

// disconnect counts one connection of k less; the last one takes k offline (clearing a device's
// status) and republishes DISCONNECTED. Busy is kept, as in OpenTera.
func (r *Registry) disconnect(ctx context.Context, c *claim, k key, ev proto.Message, a *anypb.Any) {
	st := &r.kinds[k.kind]
	r.mu.Lock()
	n := st.online.get(k.uuid)
	if n == nil {
		r.mu.Unlock()
		return
	}
	n.val.conns--
	last := n.val.conns <= 0
	if last {
		if n.val.busy {
			if b := st.busy.get(k.uuid); b != nil {
				b.val.online = false
			}
		}
		st.online.remove(n)
	}
	r.mu.Unlock()
	if last && c.ok(ctx) {
		r.publishAny(ctx, ev, a)
	}
}

func (r *Registry) join(ctx context.Context, c *claim, ev *opentera.JoinSessionEvent) {
	session := ev.GetSessionUuid()
	if session == "" {
		return
	}
	list := memberKeys(ev.GetSessionUsers(), ev.GetSessionParticipants(), ev.GetSessionDevices())
	r.mu.Lock()
	m := r.sessions[session]
	if m == nil {
		m = &members{set: map[key]struct{}{}}
		r.sessions[session] = m
	}
	for _, k := range list {
		if k.uuid == "" {
			continue
		}
		if _, in := m.set[k]; !in {
			m.set[k] = struct{}{}
			m.order = append(m.order, k)
		}
		if st := &r.kinds[k.kind]; st.busy.get(k.uuid) == nil { // first session wins
			bv := busyVal{session: session}
			if o := st.online.get(k.uuid); o != nil {
				o.val.busy, bv.online = true, true
			}
			st.busy.add(k.uuid, bv)
		}
	}
	r.mu.Unlock()
	if !c.ok(ctx) {
		return
	}
	for _, k := range list {
		if k.uuid != "" {
			r.publish(ctx, r.sessionEvent(k, true))
		}
	}
}

// leave clears k's busy state if it is busy in session, and publishes LEFT_SESSION either way
// (as OpenTera does).
func (r *Registry) leave(ctx context.Context, c *claim, k key, session string) {
	if k.uuid == "" {
		return
	}
	r.mu.Lock()
	st := &r.kinds[k.kind]
	if n := st.busy.get(k.uuid); n != nil && n.val.session == session {
		st.unbusy(n)
	} else if n != nil {
		r.log.Debug("leave for another session than the busy one", "kind", k.kind, "uuid", k.uuid, "busy", n.val.session, "leave", session)
	}
	r.mu.Unlock()
	if c.ok(ctx) {
		r.publish(ctx, r.sessionEvent(k, false))
	}
}

// stop clears the busy state of every entity busy in session, in invitation order, publishing
// their LEFT_SESSION, and forgets the session's membership.
func (r *Registry) stop(ctx context.Context, c *claim, session string) {
	r.mu.Lock()
	var left []key
	if m := r.sessions[session]; m != nil {
		for _, k := range m.order {
			st := &r.kinds[k.kind]
			if n := st.busy.get(k.uuid); n != nil && n.val.session == session {
				st.unbusy(n)
				left = append(left, k)
			}
		}
		delete(r.sessions, session)
	}
	r.mu.Unlock()
	if len(left) == 0 || !c.ok(ctx) {
		return
	}
	for _, k := range left {
		r.publish(ctx, r.sessionEvent(k, false))
	}
}

// unbusy removes a busy entity, keeping its online entry's flag in step.
func (st *kindState) unbusy(n *onode[busyVal]) {
	if n.val.online {
		if o := st.online.get(n.uuid); o != nil {
			o.val.busy = false
		}
	}
	st.busy.remove(n)
}

// sessionEvent builds the JOINED_SESSION / LEFT_SESSION event of an entity, with the names
// OpenTera fills in from its database.
func (r *Registry) sessionEvent(k key, joined bool) proto.Message {
	change := LeftSession
	if joined {
		change = JoinedSession
	}
	return EntityEvent(r.cfg.Directory.Current(), k.kind, k.uuid, change)
}
