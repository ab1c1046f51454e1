package pdk_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/proto/opentera"
	"github.com/teragate/teragate/sdk/pdk"
	"github.com/teragate/teragate/sdk/pdk/pdktest"
)

const topic = "module.TeraServer.UserManagerModule.events"

func TestRuleEncoding(t *testing.T) {
	tests := []struct {
		name   string
		result pdk.Result
		want   string // the Rule in protobuf text form, compact
	}{
		{"none", pdk.None(), ``},
		{"all cacheable", pdk.All().Cacheable(), `any_of:{} cacheable:true`},
		{"visible", pdk.Deliver(pdk.Visible(pdk.KindDevice, "d1")), `any_of:{visible:{kind:"device" uuid:"d1"}}`},
		{"empty uuids dropped", pdk.Deliver(pdk.UUIDs(), pdk.Admins()), `any_of:{admins_only:true}`},
		{"empty session dropped", pdk.Deliver(pdk.InSession("")), ``},
		{"session except", pdk.Deliver(pdk.InSession("s").Except("a", "b")), `any_of:{in_session:"s" except_uuids:"a" except_uuids:"b"}`},
		{"combined", pdk.Deliver(pdk.Visible(pdk.KindUser, "u").AdminsOnly(), pdk.UUIDs("x")).Rewrite("t.T", []byte{1}),
			`any_of:{visible:{kind:"user" uuid:"u"} admins_only:true} any_of:{uuids:"x"} rewrite_type:"t.T" rewrite:"\x01"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := pdktest.New(t, pdktest.WithFilter(func(*pdk.Event) pdk.Result { return tt.result }))
			rule, err := h.Rule(pdk.KindUser, topic, &opentera.StopSessionEvent{})
			require.NoError(t, err)
			require.NotNil(t, rule)
			want := &pluginv1Rule{}
			require.NoError(t, unmarshalText(tt.want, want))
			require.True(t, proto.Equal(want, rule), "got %v", rule)
		})
	}
}

func TestLargeClauseLength(t *testing.T) {
	// A clause longer than 127 bytes exercises appendMessage's multi-byte length path.
	uuids := make([]string, 40)
	for i := range uuids {
		uuids[i] = "00000000-0000-4000-8000-0000000000" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	h := pdktest.New(t, pdktest.WithFilter(func(*pdk.Event) pdk.Result { return pdk.Deliver(pdk.UUIDs(uuids...)) }))
	rule, err := h.Rule(pdk.KindUser, topic, &opentera.StopSessionEvent{})
	require.NoError(t, err)
	require.Equal(t, uuids, rule.GetAnyOf()[0].GetUuids())
}

func TestEventAccessors(t *testing.T) {
	m := &opentera.JoinSessionEvent{SessionUrl: "https://x", SessionUuid: "s1", SessionUsers: []string{"u1", "u2"},
		SessionParticipants: []string{"p1"}, SessionDevices: []string{"d1"}, JoinMsg: "hi", SessionParameters: "{}", ServiceUuid: "svc"}
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	ev := pdk.NewEvent(pdk.KindUser, topic, pdk.TypeJoinSessionEvent, b)
	require.Equal(t, "JoinSessionEvent", ev.Name())
	require.Equal(t, "s1", ev.String(3))
	require.Equal(t, []string{"u1", "u2"}, ev.Strings(5))
	require.True(t, ev.Has(5, "u2"))
	require.False(t, ev.Has(5, "p1"))
	js, ok := ev.JoinSessionEvent()
	require.True(t, ok)
	require.Equal(t, pdk.JoinSessionEvent{SessionURL: "https://x", SessionUUID: "s1", SessionUsers: []string{"u1", "u2"},
		SessionParticipants: []string{"p1"}, SessionDevices: []string{"d1"}, JoinMsg: "hi", SessionParameters: "{}", ServiceUUID: "svc"}, js)
	_, ok = ev.DeviceEvent()
	require.False(t, ok)

	// Round trip through the kit's encoder and the generated decoder.
	var back opentera.JoinSessionEvent
	require.NoError(t, proto.Unmarshal(js.AppendProto(nil), &back))
	require.True(t, proto.Equal(m, &back))

	d := &opentera.DeviceEvent{DeviceUuid: "d", Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED, DeviceName: "n", DeviceStatus: `{"a":1}`}
	b, _ = proto.Marshal(d)
	de, ok := pdk.NewEvent(pdk.KindUser, topic, pdk.TypeDeviceEvent, b).DeviceEvent()
	require.True(t, ok)
	require.Equal(t, pdk.DeviceEvent{DeviceUUID: "d", Type: pdk.DeviceStatusChanged, DeviceName: "n", DeviceStatus: `{"a":1}`}, de)
	require.Equal(t, int64(7), pdk.NewEvent(pdk.KindUser, topic, pdk.TypeDeviceEvent, b).Int(2))

	r := pdk.JoinSessionReplyEvent{SessionUUID: "s", DeviceUUID: "d", JoinReply: pdk.ReplyBusy, ReplyMsg: "busy"}
	var rb opentera.JoinSessionReplyEvent
	require.NoError(t, proto.Unmarshal(r.AppendProto(nil), &rb))
	require.Equal(t, opentera.JoinSessionReplyEvent_REPLY_BUSY, rb.GetJoinReply())
	require.Equal(t, "d", rb.GetDeviceUuid())

	// Malformed bytes give zero values, never a panic.
	bad := pdk.NewEvent(pdk.KindUser, topic, pdk.TypeUserEvent, []byte{0x0a, 0xff})
	require.Equal(t, "", bad.String(1))
	require.Nil(t, bad.Strings(1))
}

func TestPanicBecomesError(t *testing.T) {
	h := pdktest.New(t, pdktest.WithFilter(func(ev *pdk.Event) pdk.Result {
		var m map[string]int
		m["boom"]++ // nil map write: a runtime panic
		return pdk.All()
	}), pdktest.WithRPC("m", map[string]pdk.RPCFunc{
		"p": func([]any) (any, error) { panic("on purpose") },
		"e": func([]any) (any, error) { return nil, errors.New("refused") },
	}))
	_, err := h.Deliver(pdk.KindUser, topic, &opentera.StopSessionEvent{}, pdktest.Recipient{UUID: "u"})
	require.ErrorIs(t, err, pdktest.ErrPlugin)
	require.ErrorContains(t, err, "panic")
	_, err = h.Call("p")
	require.ErrorContains(t, err, "panic: on purpose")
	_, err = h.Call("e")
	require.ErrorContains(t, err, "refused")
	_, err = h.Call("nope")
	require.ErrorContains(t, err, "unknown method")
}

func TestRecipientsAndRewrite(t *testing.T) {
	h := pdktest.New(t,
		pdktest.WithFilter(func(ev *pdk.Event) pdk.Result { return pdk.NeedRecipients() }),
		pdktest.WithRecipients(func(ev *pdk.Event, rs []pdk.Recipient) []pdk.Verdict {
			ev.Rewrite(pdk.TypeStopSessionEvent, pdk.StopSessionEvent{SessionUUID: "redacted"}.AppendProto(nil))
			vs := make([]pdk.Verdict, len(rs))
			for i, r := range rs {
				switch {
				case r.Admin:
					vs[i] = pdk.Keep
				case i%2 == 0:
					vs[i] = pdk.Rewritten
				}
			}
			return vs
		}))
	h.Directory.AddUser("root", true)
	rs := []pdktest.Recipient{{UUID: "root"}, {UUID: "a"}, {UUID: "b"}, {UUID: "c"}, {UUID: "d"}, {UUID: "e"}, {UUID: "f"}, {UUID: "g"}, {UUID: "h"}, {UUID: "i"}}
	ds, err := h.Deliver(pdk.KindUser, topic, &opentera.StopSessionEvent{SessionUuid: "secret"}, rs...)
	require.NoError(t, err)
	var got []string
	for _, d := range ds {
		got = append(got, d.UUID)
		if d.UUID != "root" {
			require.True(t, d.Rewritten)
			m, err := pdktest.Event{Type: d.Type, Value: d.Value}.Message()
			require.NoError(t, err)
			require.Equal(t, "redacted", m.(*opentera.StopSessionEvent).GetSessionUuid())
		}
	}
	require.Equal(t, []string{"root", "b", "d", "f", "h"}, got)
	require.Equal(t, 2, h.Calls("filter"))
}

func TestHostFunctions(t *testing.T) {
	var hostErr, pubErr error
	var busy string
	var canSee bool
	var project string
	h := pdktest.New(t, pdktest.WithFilter(func(ev *pdk.Event) pdk.Result {
		pdk.Log(pdk.LogInfo, "seen", "type", ev.Name(), "n", 3, "ok", true)
		busy, _, _ = pdk.PresenceBusy(pdk.KindUser, "alice")
		canSee, _ = pdk.DirectoryCanSee(pdk.Subject{Kind: pdk.KindUser, UUID: "alice"}, pdk.Subject{Kind: pdk.KindParticipant, UUID: "pat"})
		project, _ = pdk.DirectoryParticipantProject("pat")
		pubErr = pdk.Publish("websocket.user.alice.events", pdk.StopSessionEvent{SessionUUID: "s"})
		_, hostErr = pdk.CallRPC("TeraServer.UserManagerModule", "online_users")
		return pdk.None()
	}))
	h.Directory.AddProject("p1", "s1").AddUser("alice", false, "p1").AddParticipant("pat", "p1")
	h.Presence.SetBusy(pdk.KindUser, "alice", "s-9")
	h.FailRPC = -2
	_, err := h.Rule(pdk.KindUser, topic, &opentera.StopSessionEvent{})
	require.NoError(t, err)
	require.Equal(t, "s-9", busy)
	require.True(t, canSee)
	require.Equal(t, "p1", project)
	require.NoError(t, pubErr)
	require.ErrorIs(t, hostErr, pdk.ErrHostDenied)
	require.Equal(t, []pdktest.LogLine{{Level: pdk.LogInfo, Text: `seen type="StopSessionEvent" n=3 ok=true`}}, h.Logs())
	pub := h.Published()
	require.Len(t, pub, 1)
	require.Equal(t, "websocket.user.alice.events", pub[0].Topic)
	m, err := pub[0].Events[0].Message()
	require.NoError(t, err)
	require.Equal(t, "s", m.(*opentera.StopSessionEvent).GetSessionUuid())
}

func TestNoHost(t *testing.T) {
	_, err := pdk.PresenceOnline(pdk.KindUser, "x")
	require.ErrorIs(t, err, pdk.ErrNoHost)
}

func TestJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want any
	}{
		{"scalars", `[1, -2.5, "a\"b\u00e9\ud83d\ude00", true, false, null]`, []any{1.0, -2.5, "a\"bé😀", true, false, nil}},
		{"nested", ` {"k": [ {} , []], "z": {"y": "x"}} `, map[string]any{"k": []any{map[string]any{}, []any{}}, "z": map[string]any{"y": "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pdk.ParseJSON([]byte(tt.in))
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			enc, err := pdk.AppendJSON(nil, got)
			require.NoError(t, err)
			again, err := pdk.ParseJSON(enc)
			require.NoError(t, err)
			require.Equal(t, tt.want, again)
		})
	}
	for _, bad := range []string{``, `[`, `{"a" 1}`, `"\x"`, `tru`, `[1,]`, `1 2`, "\"\x01\""} {
		_, err := pdk.ParseJSON([]byte(bad))
		require.ErrorIs(t, err, pdk.ErrJSON, bad)
	}
	enc, err := pdk.AppendJSON(nil, map[string]any{"b": []string{"x"}, "a": map[string]string{"k": "v\n"}, "n": int64(-3), "f": 0.5})
	require.NoError(t, err)
	require.Equal(t, `{"a":{"k":"v\n"},"b":["x"],"f":0.5,"n":-3}`, string(enc))
	_, err = pdk.AppendJSON(nil, struct{}{})
	require.ErrorIs(t, err, pdk.ErrJSON)
}

func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`{"a": [1, "x", null]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := pdk.ParseJSON(b)
		if err != nil {
			return
		}
		enc, err := pdk.AppendJSON(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pdk.ParseJSON(enc); err != nil {
			t.Fatalf("re-parse %q: %v", enc, err)
		}
	})
}
