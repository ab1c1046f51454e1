package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/builtin"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/modsync"
	"github.com/teragate/teragate/gateway/internal/pluginhost/wasmbuild"
	"github.com/teragate/teragate/gateway/internal/testutil"
	"github.com/teragate/teragate/proto/opentera"
)

// modView is a plugin's or role's cluster view in GET /api/plugins and GET /api/roles.
type modView struct {
	Hash      string `json:"cluster_version_hash"`
	Converged bool   `json:"converged"`
	Nodes     map[string]struct {
		Hash         string `json:"version_hash"`
		RejectedHash string `json:"rejected_hash"`
		Error        string `json:"error"`
	} `json:"nodes"`
}

type modPluginList struct {
	Node    string `json:"node"`
	Plugins []struct {
		ID            string   `json:"id"`
		Hash          string   `json:"version_hash"`
		State         string   `json:"state"`
		File          string   `json:"file"`
		LastRejection string   `json:"last_rejection"`
		Cluster       *modView `json:"cluster"`
	} `json:"plugins"`
}

type modRoleList struct {
	Node  string `json:"node"`
	Roles []struct {
		Role          string   `json:"role"`
		Hash          string   `json:"version_hash"`
		LastRejection string   `json:"last_rejection"`
		Cluster       *modView `json:"cluster"`
	} `json:"roles"`
}

// modAdmin returns a superadmin user token of e.
func modAdmin(e *env) string {
	e.t.Helper()
	code, out := e.login(directory.KindUser, "admin:admin-demo", "")
	require.Equal(e.t, http.StatusOK, code, "login: %v", out)
	return out["user_token"].(string)
}

func (e *env) modPlugins(token string) modPluginList {
	e.t.Helper()
	code, body := e.do(http.MethodGet, "/api/plugins", nil, map[string]string{"Authorization": "OpenTera " + token})
	require.Equal(e.t, http.StatusOK, code, "%s", body)
	var pl modPluginList
	require.NoError(e.t, json.Unmarshal(body, &pl), "%s", body)
	return pl
}

func (e *env) modRoles(token string) modRoleList {
	e.t.Helper()
	code, body := e.do(http.MethodGet, "/api/roles", nil, map[string]string{"Authorization": "OpenTera " + token})
	require.Equal(e.t, http.StatusOK, code, "%s", body)
	var rl modRoleList
	require.NoError(e.t, json.Unmarshal(body, &rl), "%s", body)
	return rl
}

// servedPlugin returns the hash of the version of plugin id node e serves ("" for none).
func (e *env) servedPlugin(token, id string) string {
	for _, p := range e.modPlugins(token).Plugins {
		if p.ID == id {
			return p.Hash
		}
	}
	return ""
}

func (e *env) servedRole(token, role string) string {
	for _, r := range e.modRoles(token).Roles {
		if r.Role == role {
			return r.Hash
		}
	}
	return ""
}

// sendModule sends a module PUT or DELETE with token and returns the status and body.
func (e *env) sendModule(method, path, token string, data []byte) (int, string) {
	e.t.Helper()
	code, body := e.do(method, path, bytes.NewReader(data), map[string]string{"Authorization": "OpenTera " + token})
	return code, string(body)
}

// modNode is one gateway of a module test, with its admin token and plugin directory.
type modNode struct {
	*env
	admin, dir string
}

// startModNode starts a gateway on srv (nil: a single node) with its own plugin directory, the
// built-in filter.user and the echo guest's deliver-all config for filter.user.
func startModNode(t *testing.T, srv *testutil.RedisServer, mutate func(*gateway.Config)) modNode {
	t.Helper()
	_, cfg := echoPlugin(t)
	dir := t.TempDir()
	e := startGateway(t, func(c *gateway.Config) {
		if srv != nil {
			c.Redis = srv.URL
			c.RedisNodeTTL = gateway.Duration(1500 * time.Millisecond)
		}
		c.Plugins = dir
		c.Builtins = map[string][]byte{"filter.user": builtin.Modules()["filter.user"]}
		c.PluginConfig = map[string]gateway.PluginConfig{"filter.user": {Config: cfg, Timeout: gateway.Duration(5 * time.Second)}}
		if mutate != nil {
			mutate(c)
		}
	})
	<-e.gw.PluginsReady()
	<-e.gw.StationsReady()
	return modNode{env: e, admin: modAdmin(e), dir: dir}
}

// eventuallyServes waits until every node serves hash for plugin id.
func eventuallyServes(t *testing.T, nodes []modNode, id, hash, msg string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			if n.servedPlugin(n.admin, id) != hash {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond, msg)
}

func eventuallyOffers(t *testing.T, nodes []modNode, role, hash, msg string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			if n.servedRole(n.admin, role) != hash {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond, msg)
}

// patVisible publishes Pat's CONNECTED event through pub, then a marker, and reports whether s
// (bob's socket) received Pat's event before the marker. The built-in filter.user hides it from
// bob; the echo guest delivers it.
func patVisible(t *testing.T, pub *env, s *sock) bool {
	t.Helper()
	pub.publish(umEvents, &opentera.ParticipantEvent{ParticipantUuid: directory.DemoPatUUID, Type: opentera.ParticipantEvent_PARTICIPANT_CONNECTED})
	mark := pub.marker("pat")
	seen := false
	for {
		for _, ev := range s.frameEvents() {
			if ev["sessionUuid"] == mark {
				return seen
			}
			if strings.Contains(fmt.Sprint(ev), directory.DemoPatUUID) {
				seen = true
			}
		}
	}
}

// TestModulesClusterPlugins runs three gateways on one redis-server: a plugin file dropped on A
// serves on B and C (by their GET /api/plugins and by what a client on C receives); an upload
// through B serves everywhere; a module that fails validation is refused with its reason (400 for
// an upload, the dropping node's status for a file) while the previous version keeps serving; a
// node started after the upload loads it; DELETE brings the built-in back everywhere.
func TestModulesClusterPlugins(t *testing.T) {
	srv := testutil.StartRedis(t)
	nodes := []modNode{startModNode(t, srv, nil), startModNode(t, srv, nil), startModNode(t, srv, nil)}
	a, b, c := nodes[0], nodes[1], nodes[2]
	builtinHash := modsync.Hash(builtin.Modules()["filter.user"])
	eventuallyServes(t, nodes, "filter.user", builtinHash, "the built-in serves at start")

	bob := c.connect(directory.KindUser, "bob:bob-demo")
	require.False(t, patVisible(t, a.env, bob), "the built-in filter hides Pat's events from bob")

	// A file dropped on A: B and C serve it.
	wasm, _ := echoPlugin(t)
	v0 := variant(wasm, 0)
	writeRename(t, a.dir, "filter.user.wasm", v0)
	eventuallyServes(t, nodes, "filter.user", modsync.Hash(v0), "the file dropped on A serves on every node")
	require.True(t, patVisible(t, a.env, bob), "bob on C receives what the new filter delivers")
	pl := c.modPlugins(c.admin)
	require.Len(t, pl.Plugins, 1)
	view := pl.Plugins[0].Cluster
	require.NotNil(t, view)
	require.Equal(t, modsync.Hash(v0), view.Hash)
	require.Len(t, view.Nodes, 3, "%+v", view)
	require.Eventually(t, func() bool { v := c.modPlugins(c.admin).Plugins[0].Cluster; return v.Converged }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, gateway.ClusterFile, pl.Plugins[0].File, "C got it from the cluster")
	_, err := os.Stat(filepath.Join(c.dir, "filter.user.wasm"))
	require.ErrorIs(t, err, os.ErrNotExist, "nodes do not write what they receive into their directory")

	// An upload through B.
	v1 := variant(wasm, 1)
	code, body := b.sendModule(http.MethodPut, "/api/plugins/filter.user", b.admin, v1)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"cluster":true`)
	require.Contains(t, body, modsync.Hash(v1))
	eventuallyServes(t, nodes, "filter.user", modsync.Hash(v1), "the upload through B serves on every node")

	// Modules that fail validation: refused with the reason, v1 keeps serving everywhere.
	noExports, err := os.ReadFile("internal/pluginhost/testdata/noexports.wasm")
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		data   []byte
		reason string
	}{
		{"garbage", []byte("this is not a Wasm module at all"), "invalid magic number"},
		{"no exports", noExports, "exports neither tg_filter nor tg_rpc"},
	} {
		code, body := b.sendModule(http.MethodPut, "/api/plugins/filter.user", b.admin, tc.data)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", tc.name, body)
		require.Contains(t, body, tc.reason, tc.name)
	}
	writeRename(t, a.dir, "filter.user.wasm", noExports)
	require.Eventually(t, func() bool {
		v := c.modPlugins(c.admin).Plugins[0].Cluster
		st := v.Nodes[a.gw.NodeID()]
		return st.RejectedHash == modsync.Hash(noExports) && strings.Contains(st.Error, "exports neither")
	}, 30*time.Second, 10*time.Millisecond, "C shows A's rejection of the file dropped on it, with the reason")
	for _, n := range nodes {
		require.Equal(t, modsync.Hash(v1), n.servedPlugin(n.admin, "filter.user"), "the previous version keeps serving")
	}
	require.True(t, patVisible(t, b.env, bob))

	// A node started after the upload loads it.
	d := startModNode(t, srv, nil)
	require.Equal(t, modsync.Hash(v1), d.servedPlugin(d.admin, "filter.user"), "a late node serves the cluster's version once ready")
	nodes = append(nodes, d)

	// DELETE through C: the built-in everywhere.
	code, body = c.sendModule(http.MethodDelete, "/api/plugins/filter.user", c.admin, nil)
	require.Equal(t, http.StatusOK, code, body)
	eventuallyServes(t, nodes, "filter.user", builtinHash, "the built-in serves again everywhere")
	require.False(t, patVisible(t, a.env, bob))
	code, body = c.sendModule(http.MethodDelete, "/api/plugins/filter.user", c.admin, nil)
	require.Equal(t, http.StatusNotFound, code, body)

	// A node (re)starting with an old file in its directory keeps the deletion: the file is not
	// published again.
	stale := t.TempDir()
	writeRename(t, stale, "filter.user.wasm", v0)
	e := startModNode(t, srv, func(cfg *gateway.Config) { cfg.Plugins = stale })
	require.Equal(t, builtinHash, e.servedPlugin(e.admin, "filter.user"))
	require.Equal(t, builtinHash, a.servedPlugin(a.admin, "filter.user"))
}

// TestModulesSameFileTwoNodes drops the same file on two nodes at once: it is one version, one
// notification, and nothing is published again afterwards (no node re-publishes what it
// received).
func TestModulesSameFileTwoNodes(t *testing.T) {
	srv := testutil.StartRedis(t)
	nodes := []modNode{startModNode(t, srv, nil), startModNode(t, srv, nil), startModNode(t, srv, nil)}
	opt, err := redis.ParseURL(srv.URL)
	require.NoError(t, err)
	rc := redis.NewClient(opt)
	defer rc.Close()
	sub := rc.Subscribe(context.Background(), "teragate:modules:plugins:changed")
	defer sub.Close()
	_, err = sub.Receive(context.Background())
	require.NoError(t, err)

	wasm, _ := echoPlugin(t)
	v := variant(wasm, 7)
	writeRename(t, nodes[0].dir, "filter.user.wasm", v)
	writeRename(t, nodes[1].dir, "filter.user.wasm", v)
	eventuallyServes(t, nodes, "filter.user", modsync.Hash(v), "every node serves the file")
	// Longer than a resync period and several debounces: any echo would show.
	time.Sleep(6 * time.Second)
	var msgs []string
	for {
		m, err := sub.ReceiveTimeout(context.Background(), 100*time.Millisecond)
		if err != nil {
			break
		}
		if msg, ok := m.(*redis.Message); ok {
			msgs = append(msgs, msg.Payload)
		}
	}
	require.Equal(t, []string{"filter.user"}, msgs, "one change, one notification")
	blobs, err := rc.Keys(context.Background(), "teragate:modules:plugins:blob:*").Result()
	require.NoError(t, err)
	require.Equal(t, []string{"teragate:modules:plugins:blob:" + modsync.Hash(v)}, blobs, "one version stored")
}

// TestModulesClusterRoles: the station role library across three nodes, as for plugins.
func TestModulesClusterRoles(t *testing.T) {
	path := wasmbuild.Build(t, "./plugins/role/heartbeat")
	role, err := os.ReadFile(path)
	require.NoError(t, err)
	srv := testutil.StartRedis(t)
	nodes := []modNode{startModNode(t, srv, nil), startModNode(t, srv, nil), startModNode(t, srv, nil)}
	a, b, c := nodes[0], nodes[1], nodes[2]

	writeRename(t, a.gw.RolesDir(), "heartbeat.wasm", role)
	eventuallyOffers(t, nodes, "heartbeat", modsync.Hash(role), "a role dropped on A is offered by every node")
	// What a station fetches from C is the same module.
	code, body := c.do(http.MethodGet, "/api/stations/roles/"+modsync.Hash(role), nil, map[string]string{"Authorization": "OpenTera " + c.admin})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, role, body)

	v1 := variant(role, 1)
	code, out := b.sendModule(http.MethodPut, "/api/roles/heartbeat", b.admin, v1)
	require.Equal(t, http.StatusOK, code, out)
	eventuallyOffers(t, nodes, "heartbeat", modsync.Hash(v1), "a role uploaded through B is offered everywhere")

	filterModule, _ := echoPlugin(t)
	code, out = b.sendModule(http.MethodPut, "/api/roles/heartbeat", b.admin, filterModule)
	require.Equal(t, http.StatusBadRequest, code, out)
	require.Contains(t, out, "missing export")
	writeRename(t, a.gw.RolesDir(), "heartbeat.wasm", []byte("garbage"))
	require.Eventually(t, func() bool {
		for _, r := range c.modRoles(c.admin).Roles {
			if r.Role == "heartbeat" && r.Cluster != nil {
				st := r.Cluster.Nodes[a.gw.NodeID()]
				return st.RejectedHash == modsync.Hash([]byte("garbage")) && st.Error != ""
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond, "C shows A's rejection with the reason")
	for _, n := range nodes {
		require.Equal(t, modsync.Hash(v1), n.servedRole(n.admin, "heartbeat"), "the previous version stays")
	}

	d := startModNode(t, srv, nil)
	require.Equal(t, modsync.Hash(v1), d.servedRole(d.admin, "heartbeat"), "a late node offers the cluster's role")
	nodes = append(nodes, d)

	code, out = c.sendModule(http.MethodDelete, "/api/roles/heartbeat", c.admin, nil)
	require.Equal(t, http.StatusOK, code, out)
	eventuallyOffers(t, nodes, "heartbeat", "", "a deleted role is offered nowhere")
}

// TestModulesSingleNode: the endpoints on a node without Redis write the node's directories.
func TestModulesSingleNode(t *testing.T) {
	n := startModNode(t, nil, func(c *gateway.Config) { c.MaxModuleBytes = 4 << 20 })
	code, out := n.login(directory.KindUser, "alice:alice-demo", "")
	require.Equal(t, http.StatusOK, code)
	aliceTok := out["user_token"].(string)
	wasm, _ := echoPlugin(t)
	noExports, err := os.ReadFile("internal/pluginhost/testdata/noexports.wasm")
	require.NoError(t, err)
	builtinHash := modsync.Hash(builtin.Modules()["filter.user"])

	for _, tc := range []struct {
		name, method, path, token string
		body                      []byte
		code                      int
		contains                  string
	}{
		{"no token", http.MethodPut, "/api/plugins/filter.user", "nope", wasm, http.StatusUnauthorized, "Unauthorized"},
		{"not an admin", http.MethodPut, "/api/plugins/filter.user", aliceTok, wasm, http.StatusForbidden, "admin only"},
		{"not an admin, delete", http.MethodDelete, "/api/roles/heartbeat", aliceTok, nil, http.StatusForbidden, "admin only"},
		{"bad id", http.MethodPut, "/api/plugins/Filter.User", n.admin, wasm, http.StatusBadRequest, "bad plugin id"},
		{"bad role", http.MethodPut, "/api/roles/a.b", n.admin, wasm, http.StatusBadRequest, "bad role name"},
		{"empty", http.MethodPut, "/api/plugins/filter.user", n.admin, nil, http.StatusBadRequest, "empty body"},
		{"too large", http.MethodPut, "/api/plugins/filter.user", n.admin, make([]byte, 4<<20+1), http.StatusRequestEntityTooLarge, "max_module_bytes"},
		{"too large role", http.MethodPut, "/api/roles/heartbeat", n.admin, make([]byte, 4<<20+1), http.StatusRequestEntityTooLarge, "max_module_bytes"},
		{"garbage", http.MethodPut, "/api/plugins/filter.user", n.admin, []byte("garbage"), http.StatusBadRequest, "invalid magic number"},
		{"missing exports", http.MethodPut, "/api/plugins/filter.user", n.admin, noExports, http.StatusBadRequest, "exports neither tg_filter nor tg_rpc"},
		{"nothing to delete", http.MethodDelete, "/api/plugins/filter.user", n.admin, nil, http.StatusNotFound, "no uploaded"},
		{"no role to delete", http.MethodDelete, "/api/roles/heartbeat", n.admin, nil, http.StatusNotFound, "no role"},
	} {
		code, body := n.sendModule(tc.method, tc.path, tc.token, tc.body)
		require.Equal(t, tc.code, code, "%s: %s", tc.name, body)
		require.Contains(t, body, tc.contains, tc.name)
	}
	require.Equal(t, builtinHash, n.servedPlugin(n.admin, "filter.user"), "nothing partial was loaded")
	ents, err := os.ReadDir(n.dir)
	require.NoError(t, err)
	require.Empty(t, ents, "nothing was written")

	code, body := n.sendModule(http.MethodPut, "/api/plugins/filter.user", n.admin, wasm)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, modsync.Hash(wasm), n.servedPlugin(n.admin, "filter.user"), "served at once")
	onDisk, err := os.ReadFile(filepath.Join(n.dir, "filter.user.wasm"))
	require.NoError(t, err)
	require.Equal(t, wasm, onDisk)
	ents, _ = os.ReadDir(n.dir)
	require.Len(t, ents, 1, "no temporary file is left")

	code, body = n.sendModule(http.MethodDelete, "/api/plugins/filter.user", n.admin, nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, builtinHash, n.servedPlugin(n.admin, "filter.user"))
	_, err = os.Stat(filepath.Join(n.dir, "filter.user.wasm"))
	require.ErrorIs(t, err, os.ErrNotExist)
	// The watcher sees the removal too: the built-in stays.
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, builtinHash, n.servedPlugin(n.admin, "filter.user"))

	role, err := os.ReadFile(wasmbuild.Build(t, "./plugins/role/heartbeat"))
	require.NoError(t, err)
	code, body = n.sendModule(http.MethodPut, "/api/roles/heartbeat", n.admin, role)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, modsync.Hash(role), n.servedRole(n.admin, "heartbeat"))
	_, err = os.Stat(filepath.Join(n.gw.RolesDir(), "heartbeat.wasm"))
	require.NoError(t, err)
	code, body = n.sendModule(http.MethodDelete, "/api/roles/heartbeat", n.admin, nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "", n.servedRole(n.admin, "heartbeat"))
	_, err = os.Stat(filepath.Join(n.gw.RolesDir(), "heartbeat.wasm"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestModulesPropagationTime measures, several times, the time from writing a plugin file on one
// node to every node of three serving it, next to the time from writing it on a single node to
// that node serving it (the baseline, measured in the same run, alternating), for a small WAT
// module and for the Go filter.user plugin. Both include the directory watcher's debounce (100
// ms) and the polling of GET /api/plugins (every millisecond). It reports; it asserts no duration,
// and runs only with TERAGATE_MEASURE=1 (TestModulesClusterPlugins covers the behaviour).
func TestModulesPropagationTime(t *testing.T) {
	if os.Getenv("TERAGATE_MEASURE") == "" {
		t.Skip("measurement; set TERAGATE_MEASURE=1 to run it")
	}
	srv := testutil.StartRedis(t)
	nodes := []modNode{startModNode(t, srv, nil), startModNode(t, srv, nil), startModNode(t, srv, nil)}
	single := startModNode(t, nil, nil)
	wat, _ := echoPlugin(t)
	goFilter := builtin.Modules()["filter.user"]
	// waitServes polls until every node serves hash and returns the time since start.
	waitServes := func(ns []modNode, hash string, start time.Time) time.Duration {
		deadline := start.Add(60 * time.Second)
		for {
			all := true
			for _, n := range ns {
				if n.servedPlugin(n.admin, "filter.user") != hash {
					all = false
					break
				}
			}
			if all {
				return time.Since(start)
			}
			require.True(t, time.Now().Before(deadline), "not serving after 60s")
			time.Sleep(time.Millisecond)
		}
	}
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	const runs = 5
	for _, m := range []struct {
		name string
		wasm []byte
	}{{"WAT echo guest", wat}, {"Go filter.user", goFilter}} {
		var cluster, first, local []time.Duration
		for i := range runs {
			v := variant(m.wasm, 100+i)
			start := time.Now()
			writeRename(t, single.dir, "filter.user.wasm", v)
			local = append(local, waitServes([]modNode{single}, modsync.Hash(v), start))

			start = time.Now()
			writeRename(t, nodes[i%3].dir, "filter.user.wasm", v)
			first = append(first, waitServes(nodes[i%3:i%3+1], modsync.Hash(v), start))
			cluster = append(cluster, waitServes(nodes, modsync.Hash(v), start))
		}
		t.Logf("%s (%d bytes), file written → serving, %d runs: single node %v (median %v); three nodes: the node it was written on %v (median %v), all three %v (median %v)",
			m.name, len(m.wasm), runs, local, med(local), first, med(first), cluster, med(cluster))
	}
}
