package hub

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/gateway/internal/metrics"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// discardConn is a net.Conn that swallows writes and counts write calls.
type discardConn struct {
	net.Conn
	writes atomic.Int64
	bytes  atomic.Int64
}

func (d *discardConn) Write(p []byte) (int, error) {
	d.writes.Add(1)
	d.bytes.Add(int64(len(p)))
	return len(p), nil
}
func (d *discardConn) Close() error                     { return nil }
func (d *discardConn) SetWriteDeadline(time.Time) error { return nil }
func (d *discardConn) SetReadDeadline(time.Time) error  { return nil }

func stopEvent(b testing.TB) []byte {
	a, err := opentera.NewAny(&opentera.StopSessionEvent{SessionUuid: "b6a1c2f0-0000-4000-8000-00000000abcd", ServiceUuid: "svc"})
	if err != nil {
		b.Fatal(err)
	}
	p, err := proto.Marshal(&opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Version: 1, Time: 1732145425.5, Topic: topic.UserManagerEvents}, Events: []*anypb.Any{a}})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func participantEvent(b testing.TB, uuid string) []byte {
	a, err := opentera.NewAny(&opentera.ParticipantEvent{ParticipantUuid: uuid, Type: opentera.ParticipantEvent_PARTICIPANT_CONNECTED, ParticipantName: "Pat Demo"})
	if err != nil {
		b.Fatal(err)
	}
	p, err := proto.Marshal(&opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Version: 1, Time: 1732145425.5, Topic: topic.UserManagerEvents}, Events: []*anypb.Any{a}})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkRouterFanout measures the router's cost per delivery: decode once, filter once per
// kind (native OpenTera table), encode once, queue to every connection, writers drained. One op is
// one delivery.
func BenchmarkRouterFanout(b *testing.B) {
	snap := directory.Demo()
	for _, n := range []int{1000, 10000} {
		for _, format := range []Format{FormatJSON, FormatProto} {
			for _, evName := range []string{"stop", "participant"} {
				b.Run(fmt.Sprintf("clients=%d/%s/%s", n, format, evName), func(b *testing.B) {
					h := New(Config{Metrics: metrics.New(), MaxQueueFrames: 1 << 20, MaxQueueBytes: 1 << 30})
					r := NewRouter(h, bus.NewMemory(bus.MemoryConfig{}), RouterConfig{})
					r.SetFilter(directory.KindUser, &filter.Native{})
					conns := make([]*discardConn, n)
					hc := make([]*Conn, n)
					for i := range conns {
						conns[i] = &discardConn{}
						a, _ := snap.Principal(directory.KindUser, directory.DemoAdminUUID)
						hc[i] = h.Register(conns[i], directory.KindUser, directory.DemoAdminUUID, format, a)
					}
					payload := stopEvent(b)
					if evName == "participant" {
						payload = participantEvent(b, directory.DemoPatUUID)
					}
					w := &worker{}
					msg := bus.Message{Channel: topic.UserManagerEvents, Payload: payload}
					events := b.N/n + 1
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < events; i++ {
						r.routeEvents(w, msg, 0, "")
					}
					for _, c := range hc {
						for pending(c) {
							time.Sleep(100 * time.Microsecond)
						}
					}
					b.StopTimer()
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events*n), "ns/delivery")
					var writes int64
					for _, c := range conns {
						writes += c.writes.Load()
					}
					b.ReportMetric(float64(events*n)/float64(writes), "frames/write")
				})
			}
		}
	}
}

func pending(c *Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writing || len(c.queue) > 0
}

func BenchmarkEncodeEvent(b *testing.B) {
	var te opentera.TeraEvent
	payload := participantEvent(b, directory.DemoPatUUID)
	if err := proto.Unmarshal(payload, &te); err != nil {
		b.Fatal(err)
	}
	for _, f := range []Format{FormatJSON, FormatProto} {
		b.Run(f.String(), func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for i := 0; i < b.N; i++ {
				fr, err := EncodeEvent(te.Header, te.Events[0], payload, f)
				if err != nil {
					b.Fatal(err)
				}
				size = len(fr)
			}
			b.ReportMetric(float64(size), "frame-bytes")
		})
	}
}

// counterSum sums every series of the counter family whose name ends with suffix.
func counterSum(tb testing.TB, m *metrics.Metrics, suffix string) float64 {
	tb.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if strings.HasSuffix(mf.GetName(), suffix) {
			for _, s := range mf.GetMetric() {
				sum += s.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// BenchmarkRouterEventMix routes family-topic events that few sockets receive: ParticipantEvents
// and UserEvents alternately, cycling over the subjects, to sockets of every kind (a third each,
// one per entity, over clients/100 projects: `teragate bench --event participant`'s shape, about
// 35 recipients per ParticipantEvent), with the native filters, writers drained. One op is one
// event (filtered for the three kinds).
func BenchmarkRouterEventMix(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("sockets=%d", n), func(b *testing.B) {
			doc := genDoc(dirShape{users: n - 2*(n/3), participants: n / 3, devices: n / 3, projects: max(10, n/100)})
			snap := doc.parse(b)
			m := metrics.New()
			h := New(Config{Metrics: m, MaxQueueFrames: 1 << 20, MaxQueueBytes: 1 << 30})
			r := NewRouter(h, bus.NewMemory(bus.MemoryConfig{}), RouterConfig{})
			native := &filter.Native{}
			for _, k := range socketKinds {
				r.SetFilter(k, native)
			}
			var hc []*Conn
			for _, e := range doc.entities() {
				a, _ := snap.Principal(e.kind, e.uuid)
				hc = append(hc, h.Register(&discardConn{}, e.kind, e.uuid, FormatJSON, a))
			}
			var msgs []bus.Message
			for i := 0; i < 1000; i++ {
				msgs = append(msgs,
					bus.Message{Channel: topic.UserManagerEvents, Payload: participantEvent(b, doc.Participants[(i*37)%len(doc.Participants)].UUID)},
					bus.Message{Channel: topic.UserManagerEvents, Payload: userEvent(b, doc.Users[(i*37)%len(doc.Users)].UUID)})
			}
			w := &worker{}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.routeEvents(w, msgs[i%len(msgs)], 0, "")
			}
			for _, c := range hc {
				for pending(c) {
					time.Sleep(100 * time.Microsecond)
				}
			}
			b.StopTimer()
			d := counterSum(b, m, "_deliveries_total")
			b.ReportMetric(d/float64(b.N), "deliveries/event")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/d, "ns/delivery")
		})
	}
}

func userEvent(b testing.TB, uuid string) []byte {
	a, err := opentera.NewAny(&opentera.UserEvent{UserUuid: uuid, Type: opentera.UserEvent_USER_CONNECTED, UserFullname: "Bench User"})
	if err != nil {
		b.Fatal(err)
	}
	p, err := proto.Marshal(&opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Version: 1, Time: 1732145425.5, Topic: topic.UserManagerEvents}, Events: []*anypb.Any{a}})
	if err != nil {
		b.Fatal(err)
	}
	return p
}
