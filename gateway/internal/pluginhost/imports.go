package pluginhost

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/scope"
	"github.com/teragate/teragate/proto/opentera"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
	"github.com/teragate/teragate/sdk/abi"
)

// Log lines a plugin may write per second (burst included); further lines are dropped and
// counted in the next line that gets through.
const logPerSecond = 50

// hostModule instantiates module "teragate" in rt for version v. Every function validates the
// guest's pointers and lengths: a bad one makes that call fail (a negative return or an ignored
// log line), never a host panic.
func (r *Registry) hostModule(ctx context.Context, rt wazero.Runtime, v *version) error {
	i32 := api.ValueTypeI32
	lg := &logLimiter{log: v.p.log}
	b := rt.NewHostModuleBuilder(abi.ImportModule)
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, st []uint64) {
		level, ptr, n := uint32(st[0]), uint32(st[1]), uint32(st[2])
		if n > 4096 {
			n = 4096
		}
		msg, ok := m.Memory().Read(ptr, n)
		if !ok {
			return
		}
		lg.write(level, string(msg))
	}), []api.ValueType{i32, i32, i32}, nil).Export(abi.ImportLog)

	query := func(handle func(ctx context.Context, q []byte) ([]byte, int32)) api.GoModuleFunc {
		return func(ctx context.Context, m api.Module, st []uint64) {
			qp, qn, op, oc := uint32(st[0]), uint32(st[1]), uint32(st[2]), uint32(st[3])
			st[0] = api.EncodeI32(hostQuery(ctx, m.Memory(), qp, qn, op, oc, handle))
		}
	}
	b.NewFunctionBuilder().WithGoModuleFunction(query(r.directoryQuery(v)), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).Export(abi.ImportDirectory)
	b.NewFunctionBuilder().WithGoModuleFunction(query(r.presenceQuery(v)), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).Export(abi.ImportPresence)
	b.NewFunctionBuilder().WithGoModuleFunction(query(r.rpcQuery(v)), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).Export(abi.ImportRPCCall)
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, st []uint64) {
		ptr, n := uint32(st[0]), uint32(st[1])
		st[0] = api.EncodeI32(r.publish(ctx, v, m.Memory(), ptr, n))
	}), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export(abi.ImportPublish)
	_, err := b.Instantiate(ctx)
	return err
}

// maxQuery bounds a query or publish request read from guest memory.
const maxQuery = 1 << 20

// hostQuery runs one request → result import: it reads the request, runs handle and writes the
// result when it fits, returning its length (or the needed length, or a negative error).
func hostQuery(ctx context.Context, mem api.Memory, qp, qn, op, oc uint32, handle func(context.Context, []byte) ([]byte, int32)) int32 {
	if qn > maxQuery {
		return abi.HostErrBadRequest
	}
	q, ok := mem.Read(qp, qn)
	if !ok {
		return abi.HostErrBadRequest
	}
	out, code := handle(ctx, q)
	if code < 0 {
		return code
	}
	if len(out) > abi.MaxResult {
		return abi.HostErrFailed
	}
	if uint32(len(out)) > oc {
		return int32(len(out))
	}
	if !mem.Write(op, out) {
		return abi.HostErrBadRequest
	}
	return int32(len(out))
}

func subjectOf(s *pluginv1.Subject) (directory.Kind, string, bool) {
	k, ok := directory.ParseKind(s.GetKind())
	return k, s.GetUuid(), ok && s.GetUuid() != ""
}

func marshalResult(res *pluginv1.QueryResult) ([]byte, int32) {
	b, err := proto.Marshal(res)
	if err != nil {
		return nil, abi.HostErrFailed
	}
	return b, 0
}

func (r *Registry) directoryQuery(v *version) func(context.Context, []byte) ([]byte, int32) {
	return func(ctx context.Context, qb []byte) ([]byte, int32) {
		var q pluginv1.DirectoryQuery
		if proto.Unmarshal(qb, &q) != nil {
			return nil, abi.HostErrBadRequest
		}
		sc := scopeOf(ctx)
		if !sc.Trusted() {
			k, uuid, ok := subjectOf(q.GetSubject())
			vk, vuuid, vok := subjectOf(q.GetViewer())
			if (ok && !sc.Reaches(k, uuid)) || (vok && !sc.Reaches(vk, vuuid)) {
				// Outside the caller's access: as if unknown (an answer, not an incident:
				// plugins ask can_see to check their arguments).
				return marshalResult(&pluginv1.QueryResult{})
			}
		}
		return r.directoryAnswer(&q)
	}
}

func (r *Registry) directoryAnswer(q *pluginv1.DirectoryQuery) ([]byte, int32) {
	if r.cfg.Deps.Directory == nil {
		return nil, abi.HostErrFailed
	}
	snap := r.cfg.Deps.Directory.Current()
	k, uuid, ok := subjectOf(q.GetSubject())
	if !ok || snap == nil {
		return nil, abi.HostErrBadRequest
	}
	res := &pluginv1.QueryResult{}
	list := func(vals []string, found bool) { res.Values, res.Found = vals, found }
	switch q.GetQuery() {
	case "participant_project":
		p, found := snap.ParticipantProject(uuid)
		if found {
			res.Values = []string{p}
		}
		res.Found = found
	case "device_sites":
		_, found := snap.Device(uuid)
		list(snap.DeviceSites(uuid), found)
	case "device_participants":
		_, found := snap.Device(uuid)
		list(snap.DeviceParticipants(uuid), found)
	case "participant_devices":
		_, found := snap.Participant(uuid)
		list(snap.ParticipantDevices(uuid), found)
	case "user_projects":
		_, found := snap.User(uuid)
		list(snap.AccessibleProjects(uuid), found)
	case "superadmin":
		a, found := snap.Principal(k, uuid)
		res.Found, res.Flag = found, a.Admin()
	case "can_see":
		vk, vuuid, ok := subjectOf(q.GetViewer())
		if !ok {
			return nil, abi.HostErrBadRequest
		}
		_, f1 := snap.Principal(vk, vuuid)
		_, f2 := snap.Principal(k, uuid)
		res.Found, res.Flag = f1 && f2, snap.CanSee(vk, vuuid, k, uuid)
	default:
		return nil, abi.HostErrBadRequest
	}
	return marshalResult(res)
}

func (r *Registry) presenceQuery(v *version) func(context.Context, []byte) ([]byte, int32) {
	return func(ctx context.Context, qb []byte) ([]byte, int32) {
		var q pluginv1.PresenceQuery
		if proto.Unmarshal(qb, &q) != nil {
			return nil, abi.HostErrBadRequest
		}
		k, uuid, ok := subjectOf(q.GetSubject())
		if !ok {
			return nil, abi.HostErrBadRequest
		}
		if err := scopeOf(ctx).Check(scope.Entity{Kind: k, UUID: uuid}); err != nil {
			r.denied(ctx, v, "presence", err)
			return nil, abi.HostErrDenied
		}
		return r.presenceAnswer(&q, k, uuid)
	}
}

func (r *Registry) presenceAnswer(q *pluginv1.PresenceQuery, k directory.Kind, uuid string) ([]byte, int32) {
	pr := r.cfg.Deps.Presence
	if pr == nil {
		return nil, abi.HostErrFailed
	}
	res := &pluginv1.QueryResult{Found: true}
	switch q.GetQuery() {
	case "online":
		res.Flag = pr.Online(k, uuid)
	case "busy":
		s, busy := pr.Busy(k, uuid)
		res.Flag = busy
		if busy {
			res.Values = []string{s}
		}
	case "in_session":
		if q.GetSession() == "" {
			return nil, abi.HostErrBadRequest
		}
		res.Flag = pr.InSession(k, uuid, q.GetSession())
	default:
		return nil, abi.HostErrBadRequest
	}
	return marshalResult(res)
}

func (r *Registry) rpcQuery(v *version) func(context.Context, []byte) ([]byte, int32) {
	return func(ctx context.Context, qb []byte) ([]byte, int32) {
		var q pluginv1.RPCRequest
		if proto.Unmarshal(qb, &q) != nil || q.GetModule() == "" || q.GetMethod() == "" {
			return nil, abi.HostErrBadRequest
		}
		if r.cfg.Deps.RPC == nil {
			return nil, abi.HostErrFailed
		}
		if mod := v.info.GetRpcModule(); mod != "" && mod == q.GetModule() {
			return nil, abi.HostErrDenied // a plugin calling itself would wait for its own pool
		}
		out, err := r.cfg.Deps.RPC.CallJSON(ctx, q.GetModule(), q.GetMethod(), q.GetArgsJson())
		if err != nil {
			v.p.log.Debug("rpc_call failed", "module", q.GetModule(), "method", q.GetMethod(), "error", err)
			return nil, abi.HostErrFailed
		}
		b, err := proto.Marshal(&pluginv1.RPCResult{ReturnJson: out})
		if err != nil {
			return nil, abi.HostErrFailed
		}
		return b, 0
	}
}

// TopicAllowed reports whether topic matches one of the patterns (a trailing '*' matches any
// suffix; otherwise the topic must be equal). Topics with glob characters are never allowed.
func TopicAllowed(patterns []string, topic string) bool {
	if topic == "" || strings.ContainsAny(topic, "*?[]\\ ") {
		return false
	}
	for _, p := range patterns {
		if pre, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(topic, pre) && len(topic) > len(pre) {
				return true
			}
		} else if p == topic {
			return true
		}
	}
	return false
}

func (r *Registry) publish(ctx context.Context, v *version, mem api.Memory, ptr, n uint32) int32 {
	if n > maxQuery {
		return abi.HostErrBadRequest
	}
	b, ok := mem.Read(ptr, n)
	if !ok {
		return abi.HostErrBadRequest
	}
	var q pluginv1.PublishRequest
	if proto.Unmarshal(b, &q) != nil || len(q.GetEvents()) == 0 {
		return abi.HostErrBadRequest
	}
	if !TopicAllowed(v.settings.PublishTopics, q.GetTopic()) {
		v.p.log.Warn("publish denied: topic not allowed", "topic", q.GetTopic())
		return abi.HostErrDenied
	}
	if sc := scopeOf(ctx); !sc.Trusted() {
		if err := r.scopedPublish(sc, &q); err != nil {
			r.denied(ctx, v, "publish", err)
			return abi.HostErrDenied
		}
	}
	if r.cfg.Deps.Publisher == nil {
		return abi.HostErrFailed
	}
	te := &opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Version: 1, Time: float64(time.Now().UnixNano()) / 1e9, Topic: q.GetTopic()}}
	for _, e := range q.GetEvents() {
		if e.GetType() == "" {
			return abi.HostErrBadRequest
		}
		te.Events = append(te.Events, &anypb.Any{TypeUrl: "type.googleapis.com/" + e.GetType(), Value: e.GetValue()})
	}
	payload, err := proto.Marshal(te)
	if err != nil {
		return abi.HostErrFailed
	}
	if err := r.cfg.Deps.Publisher.Publish(ctx, q.GetTopic(), payload); err != nil {
		v.p.log.Warn("publish failed", "topic", q.GetTopic(), "error", err)
		return abi.HostErrFailed
	}
	return 0
}

// logLimiter passes at most logPerSecond plugin log lines per second.
type logLimiter struct {
	log     hclog.Logger
	mu      sync.Mutex
	window  time.Time
	n       int
	dropped int
}

func (l *logLimiter) write(level uint32, msg string) {
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.window) >= time.Second {
		l.window, l.n = now, 0
	}
	l.n++
	if l.n > logPerSecond {
		l.dropped++
		l.mu.Unlock()
		return
	}
	dropped := l.dropped
	l.dropped = 0
	l.mu.Unlock()
	args := []any{}
	if dropped > 0 {
		args = append(args, "dropped_lines", dropped)
	}
	switch level {
	case abi.LogTrace:
		l.log.Trace(msg, args...)
	case abi.LogDebug:
		l.log.Debug(msg, args...)
	case abi.LogInfo:
		l.log.Info(msg, args...)
	case abi.LogWarn:
		l.log.Warn(msg, args...)
	default:
		l.log.Error(msg, args...)
	}
}
