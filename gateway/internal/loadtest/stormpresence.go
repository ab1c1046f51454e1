package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	sdk "github.com/teragate/teragate/sdk/client"
)

// onlineMethods are the user manager's online lists by client type.
var onlineMethods = map[Kind]string{
	KindUser:        "online_users",
	KindParticipant: "online_participants",
	KindDevice:      "online_devices",
}

// awaitPresence polls the server's online lists (POST /api/rpc with the
// service token) until they hold exactly the entities of the open sockets,
// at most PresenceTimeout.
func (s *storm) awaitPresence(ctx context.Context, sr *StormReport) error {
	opts := []sdk.Option{sdk.WithToken(s.h.cfg.ServiceToken)}
	if s.h.cfg.InsecureSkipVerify {
		opts = append(opts, sdk.WithInsecureSkipVerify())
	}
	rpc, err := sdk.New(s.h.base.String(), opts...)
	if err != nil {
		return fmt.Errorf("loadtest: presence client: %w", err)
	}
	start := time.Now()
	deadline := start.Add(s.cfg.PresenceTimeout)
	for {
		ok, online, err := s.presenceMatches(ctx, rpc)
		sr.Online, sr.PresenceSeconds = online, time.Since(start).Seconds()
		if ok {
			sr.PresenceConsistent = true
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				s.h.noteErr(err)
			}
			return nil
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// presenceMatches compares the server's online lists with the entities of
// the open sockets; online holds, per type, the server's count and the
// expected one.
func (s *storm) presenceMatches(ctx context.Context, rpc *sdk.Client) (bool, map[string][2]int, error) {
	want := s.openEntities()
	online := map[string][2]int{}
	match := true
	for k, method := range onlineMethods {
		got, err := callList(ctx, rpc, method)
		if err != nil {
			return false, online, err
		}
		online[k.String()] = [2]int{len(got), len(want[k])}
		match = match && sameSet(got, want[k])
	}
	return match, online, nil
}

// openEntities returns the uuids of the entities with an open socket.
func (s *storm) openEntities() map[Kind]map[string]bool {
	d := s.h.cfg.Dir
	out := map[Kind]map[string]bool{KindUser: {}, KindParticipant: {}, KindDevice: {}}
	for _, sc := range s.clients {
		if !sc.isOpen.Load() {
			continue
		}
		c := sc.c
		switch c.kind {
		case KindUser:
			out[KindUser][d.Users[c.entity].UUID] = true
		case KindParticipant:
			out[KindParticipant][d.Participants[c.entity].UUID] = true
		case KindDevice:
			out[KindDevice][d.Devices[c.entity].UUID] = true
		}
	}
	return out
}

func callList(ctx context.Context, rpc *sdk.Client, method string) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, err := rpc.Call(cctx, sdk.UserManagerModule, method)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %s: %w", method, err)
	}
	var out []string
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("loadtest: %s: %w", method, err)
	}
	return out, nil
}

// sameSet tells whether list holds exactly the keys of set, once each.
func sameSet(list []string, set map[string]bool) bool {
	if len(list) != len(set) {
		return false
	}
	seen := make(map[string]bool, len(list))
	for _, u := range list {
		if !set[u] || seen[u] {
			return false
		}
		seen[u] = true
	}
	return true
}
