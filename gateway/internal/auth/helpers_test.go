package auth_test

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/directory"
)

func TestMain(m *testing.M) {
	// Cost-4 hashes keep password tests fast under -race.
	h, err := bcrypt.GenerateFromPassword([]byte("dummy"), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	auth.SetDummyHash(string(h))
	os.Exit(m.Run())
}

// Fixture uuids and secrets.
const (
	aliceUUID    = "10000000-0000-4000-8000-000000000001"
	rootUUID     = "10000000-0000-4000-8000-000000000002"
	offUserUUID  = "10000000-0000-4000-8000-000000000003"
	patUUID      = "10000000-0000-4000-8000-000000000101"
	tokOnlyUUID  = "10000000-0000-4000-8000-000000000102"
	offPartUUID  = "10000000-0000-4000-8000-000000000103"
	robotUUID    = "10000000-0000-4000-8000-000000000201"
	offRobotUUID = "10000000-0000-4000-8000-000000000202"
	svcUUID      = "10000000-0000-4000-8000-000000000301"
	svc2UUID     = "10000000-0000-4000-8000-000000000302"

	patToken      = "pat-static-token-0123456789abcdef0123"
	tokOnlyToken  = "tokonly-static-token-0123456789abcdef"
	offPartToken  = "offpart-static-token-0123456789abcdef"
	robotToken    = "robot-static-token-0123456789abcdef01"
	offRobotToken = "offrobot-static-token-0123456789abcde"
	svcToken      = "svc-static-token-0123456789abcdef0123"
	svc2Token     = "svc2-static-token-0123456789abcdef012"

	testKey = "0123456789abcdef0123456789abcdef"
)

var (
	hashOnce sync.Once
	hashes   map[string]string
)

func cheapHash(pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}

// fixtureYAML is a directory with enabled and disabled entities of every kind; drop lists uuids to
// leave out, disable lists uuids to disable.
func fixtureYAML(drop, disable map[string]bool) []byte {
	hashOnce.Do(func() {
		hashes = map[string]string{}
		for _, pw := range []string{"alice-pw", "root-pw", "off-pw", "pat-pw", "offpart-pw"} {
			hashes[pw] = cheapHash(pw)
		}
	})
	en := func(uuid string, def bool) bool { return def && !disable[uuid] }
	s := "sites: [{id: s1}]\nprojects: [{id: p1, site: s1}]\nusers:\n"
	add := func(uuid, format string, args ...any) {
		if !drop[uuid] {
			s += fmt.Sprintf(format, args...)
		}
	}
	add(aliceUUID, "  - {uuid: %s, username: alice, password_hash: '%s', fullname: Alice A, projects: [p1], enabled: %t}\n", aliceUUID, hashes["alice-pw"], en(aliceUUID, true))
	add(rootUUID, "  - {uuid: %s, username: root, password_hash: '%s', fullname: Root, superadmin: true, enabled: %t}\n", rootUUID, hashes["root-pw"], en(rootUUID, true))
	add(offUserUUID, "  - {uuid: %s, username: off, password_hash: '%s', enabled: %t}\n", offUserUUID, hashes["off-pw"], en(offUserUUID, false))
	s += "participants:\n"
	add(patUUID, "  - {uuid: %s, username: pat, password_hash: '%s', token: %s, name: Pat, project: p1, enabled: %t}\n", patUUID, hashes["pat-pw"], patToken, en(patUUID, true))
	add(tokOnlyUUID, "  - {uuid: %s, token: %s, name: Tok, project: p1, enabled: %t}\n", tokOnlyUUID, tokOnlyToken, en(tokOnlyUUID, true))
	add(offPartUUID, "  - {uuid: %s, username: offpart, password_hash: '%s', token: %s, project: p1, enabled: %t}\n", offPartUUID, hashes["offpart-pw"], offPartToken, en(offPartUUID, false))
	s += "devices:\n"
	add(robotUUID, "  - {uuid: %s, token: %s, name: Robot, sites: [s1], onlineable: true, enabled: %t}\n", robotUUID, robotToken, en(robotUUID, true))
	add(offRobotUUID, "  - {uuid: %s, token: %s, name: Off, enabled: %t}\n", offRobotUUID, offRobotToken, en(offRobotUUID, false))
	s += "services:\n"
	add(svcUUID, "  - {uuid: %s, name: Svc, token: %s, admin: true}\n", svcUUID, svcToken)
	add(svc2UUID, "  - {uuid: %s, name: Svc2, token: %s}\n", svc2UUID, svc2Token)
	return []byte(s)
}

func fixtureSnapshot(t testing.TB, drop, disable map[string]bool) *directory.Snapshot {
	t.Helper()
	s, err := directory.Parse(fixtureYAML(drop, disable))
	require.NoError(t, err)
	return s
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	auth  *auth.Authenticator
	store *directory.Store
	clock *fakeClock
}

// newEnv returns an Authenticator over the fixture directory with a fake clock; cfg fields left
// zero get the test key and clock.
func newEnv(t testing.TB, cfg auth.Config, opts ...auth.Option) *env {
	t.Helper()
	e := &env{store: directory.NewStore(fixtureSnapshot(t, nil, nil)), clock: newClock()}
	if cfg.JWTKey == nil {
		cfg.JWTKey = []byte(testKey)
	}
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	a, err := auth.New(cfg, e.store, opts...)
	require.NoError(t, err)
	e.auth = a
	return e
}
