package api

import (
	"testing"
	"time"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// TestLoginLimiter runs the per-entity token bucket on a fake clock: the burst passes, the next
// login waits for the refill (and is told how long), entities do not share buckets, a full
// bucket is forgotten by the sweep, and a non-positive rate disables the limit.
func TestLoginLimiter(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := newLoginLimiter(LoginRate{PerSecond: 2, Burst: 3})
	l.now = func() time.Time { return now }
	dev := directory.KindDevice
	type step struct {
		advance  time.Duration
		kind     directory.Kind
		uuid     string
		want     bool
		wantWait time.Duration
	}
	steps := []step{
		{0, dev, "a", true, 0},
		{0, dev, "a", true, 0},
		{0, dev, "a", true, 0},
		{0, dev, "a", false, 500 * time.Millisecond}, // burst spent: one token every 0.5 s
		{0, dev, "b", true, 0},                       // another entity has its own bucket
		{0, directory.KindUser, "a", true, 0},        // the kind is part of the entity
		{250 * time.Millisecond, dev, "a", false, 250 * time.Millisecond},
		{250 * time.Millisecond, dev, "a", true, 0},
		{0, dev, "a", false, 500 * time.Millisecond},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		ok, wait := l.allow(s.kind, s.uuid)
		if ok != s.want || wait != s.wantWait {
			t.Fatalf("step %d (%s %s after %s): allow = %v, %s; want %v, %s", i, s.kind, s.uuid, s.advance, ok, wait, s.want, s.wantWait)
		}
	}
	if n := len(l.b); n != 3 {
		t.Fatalf("%d buckets, want 3", n)
	}
	now = now.Add(2 * time.Second) // every bucket full again
	l.allow(dev, "c")
	if n := len(l.b); n != 1 {
		t.Fatalf("after the sweep %d buckets, want 1 (the new one)", n)
	}
	var off *loginLimiter = newLoginLimiter(LoginRate{PerSecond: 0, Burst: 10})
	for range 100 {
		if ok, _ := off.allow(dev, "a"); !ok {
			t.Fatal("a zero rate limits")
		}
	}
}
