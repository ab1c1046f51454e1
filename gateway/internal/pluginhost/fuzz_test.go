package pluginhost

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

// FuzzApplyResult feeds random bytes as a guest's FilterResult for a random number of
// recipients: decoding and applying never panics, and a failure leaves nothing to deliver.
func FuzzApplyResult(f *testing.F) {
	seed := func(m *pluginv1.FilterResult) []byte { b, _ := proto.Marshal(m); return b }
	f.Add(seed(visibleRule("participant", directory.DemoPatUUID)), uint16(3))
	f.Add(seed(&pluginv1.FilterResult{Result: &pluginv1.FilterResult_Verdicts{Verdicts: &pluginv1.Verdicts{Deliver: []byte{5}, RewriteMask: []byte{1}, RewriteType: "x.Y"}}}), uint16(3))
	f.Add(seed(ruleResult(&pluginv1.Rule{AnyOf: []*pluginv1.Clause{{Uuids: make([]string, 20), InSession: "s", AdminsOnly: true}}})), uint16(9))
	f.Add(seed(needRecipients), uint16(0))
	f.Add([]byte{0x1a, 0x02, 0x0a, 0x00}, uint16(1000))
	snap := directory.Demo()
	users := []string{directory.DemoAliceUUID, directory.DemoBobUUID, directory.DemoAdminUUID}
	pres := &fakePresence{sessions: map[string][]string{"s": {directory.DemoAliceUUID}}}
	f.Fuzz(func(t *testing.T, b []byte, n uint16) {
		n %= 2048
		rs := make([]filter.Recipient, n)
		for i := range rs {
			a, _ := snap.Principal(directory.KindUser, users[i%3])
			rs[i] = filter.Recipient{Kind: directory.KindUser, UUID: users[i%3], Access: a}
		}
		out := make([]filter.Decision, n)
		if err := ApplyResult(b, rs, out, pres); err != nil {
			return
		}
		for _, d := range out {
			if d.Verdict == filter.Rewritten && d.Rewrite == nil {
				t.Fatal("rewrite verdict without a rewrite")
			}
		}
	})
}
