package gateway_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/pluginhost/wasmbuild"
	"github.com/teragate/teragate/proto/opentera"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

const userManagerEvents = "module.TeraServer.UserManagerModule.events"

// echoPlugin returns the scripted WAT guest and a config making it deliver every event to every
// recipient (a Rule with one empty clause).
func echoPlugin(t *testing.T) ([]byte, string) {
	t.Helper()
	wasm, err := os.ReadFile("internal/pluginhost/testdata/echo.wasm")
	require.NoError(t, err)
	init, _ := proto.Marshal(&pluginv1.InitResult{Name: "deliver-all"})
	first, _ := proto.Marshal(&pluginv1.FilterResult{Result: &pluginv1.FilterResult_Rule{Rule: &pluginv1.Rule{AnyOf: []*pluginv1.Clause{{}}}}})
	cfg := binary.LittleEndian.AppendUint32(nil, uint32(len(init)))
	cfg = binary.LittleEndian.AppendUint32(cfg, uint32(len(first)))
	cfg = binary.LittleEndian.AppendUint32(cfg, 0)
	cfg = append(append(cfg, init...), first...)
	return wasm, string(cfg)
}

// variant returns wasm with a trailing custom section, so each variant has a new hash.
func variant(wasm []byte, i int) []byte {
	return append(append([]byte(nil), wasm...), 0, 3, 1, 'v', byte(i))
}

// writeRename writes data to dir/name atomically (write a temp file, then rename it).
func writeRename(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	require.NoError(t, os.WriteFile(tmp, data, 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, name)))
}

func seqEvent(t *testing.T, uuid string) []byte {
	a, err := anypb.New(&opentera.ParticipantEvent{ParticipantUuid: uuid, Type: opentera.ParticipantEvent_PARTICIPANT_CONNECTED})
	require.NoError(t, err)
	b, err := proto.Marshal(&opentera.TeraEvent{Events: []*anypb.Any{a}})
	require.NoError(t, err)
	return b
}

type pluginList struct {
	Dir     string `json:"dir"`
	Plugins []struct {
		ID    string `json:"id"`
		Hash  string `json:"version_hash"`
		State string `json:"state"`
		Calls uint64 `json:"calls"`
		Fails uint64 `json:"failures"`
	} `json:"plugins"`
}

func (e *env) plugins(token string) (int, pluginList) {
	e.t.Helper()
	code, body := e.do(http.MethodGet, "/api/plugins", nil, map[string]string{"Authorization": "OpenTera " + token})
	var pl pluginList
	if code == http.StatusOK {
		require.NoError(e.t, json.Unmarshal(body, &pl), "%s", body)
	}
	return code, pl
}

// TestPluginReloadUnderTraffic replaces the user filter plugin several times by write-then-rename
// while events stream to connected websockets, and counts: every client receives every event, in
// order, and no connection drops.
func TestPluginReloadUnderTraffic(t *testing.T) {
	dir := t.TempDir()
	wasm, cfg := echoPlugin(t)
	writeRename(t, dir, "filter.user.wasm", variant(wasm, 0))
	e := startGateway(t, func(c *gateway.Config) {
		c.Plugins = dir
		c.PluginConfig = map[string]gateway.PluginConfig{"filter.user": {Config: cfg, Timeout: gateway.Duration(5 * time.Second)}} // the deadline is tested elsewhere; a loaded CI box must not turn a slow call into a lost event here
	})
	<-e.gw.PluginsReady()
	admin := e.userToken("admin:admin-demo")
	_, pl := e.plugins(admin)
	require.Len(t, pl.Plugins, 1)
	hash0 := pl.Plugins[0].Hash

	creds := []string{"admin:admin-demo", "alice:alice-demo", "bob:bob-demo", "alice:alice-demo"}
	socks := make([]*sock, len(creds))
	for i, c := range creds {
		socks[i] = e.connect(directory.KindUser, c)
	}

	const reloads = 5
	var published atomic.Int64
	stop := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := e.gw.Publish(context.Background(), userManagerEvents, seqEvent(t, "seq-"+strconv.Itoa(i))); err != nil {
				t.Error(err)
				return
			}
			published.Add(1)
			time.Sleep(500 * time.Microsecond)
		}
	}()
	hashes := map[string]bool{hash0: true}
	for i := 1; i <= reloads; i++ {
		time.Sleep(30 * time.Millisecond)
		writeRename(t, dir, "filter.user.wasm", variant(wasm, i))
		require.Eventually(t, func() bool {
			_, pl := e.plugins(admin)
			return len(pl.Plugins) == 1 && !hashes[pl.Plugins[0].Hash]
		}, 10*time.Second, 5*time.Millisecond, "reload %d", i)
		_, pl := e.plugins(admin)
		hashes[pl.Plugins[0].Hash] = true
	}
	time.Sleep(30 * time.Millisecond)
	close(stop)
	<-pubDone
	require.NoError(t, e.gw.Publish(context.Background(), userManagerEvents, seqEvent(t, "end")))
	n := int(published.Load())

	var wg sync.WaitGroup
	got := make([]int, len(socks))
	for i, s := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := 0
			for {
				_ = s.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, data, err := s.ws.ReadMessage()
				if err != nil {
					t.Errorf("socket %d: %v after %d events", i, err, next)
					return
				}
				str := string(data)
				if strings.Contains(str, `"end"`) {
					break
				}
				j := strings.Index(str, `"seq-`)
				if j < 0 {
					continue // other clients' CONNECTED events
				}
				k := strings.IndexByte(str[j+5:], '"')
				seq, _ := strconv.Atoi(str[j+5 : j+5+k])
				if seq != next {
					t.Errorf("socket %d: event %d, want %d", i, seq, next)
					return
				}
				next++
			}
			got[i] = next
		}()
	}
	wg.Wait()
	for i := range got {
		require.Equal(t, n, got[i], "socket %d received every event", i)
	}
	_, pl = e.plugins(admin)
	require.Equal(t, uint64(0), pl.Plugins[0].Fails)
	t.Logf("%d events × %d sockets delivered across %d reloads, 0 lost, 0 connections dropped", n, len(socks), reloads)
}

func TestPluginsAPIAndRejection(t *testing.T) {
	dir := t.TempDir()
	wasm, cfg := echoPlugin(t)
	writeRename(t, dir, "filter.user.wasm", wasm)
	e := startGateway(t, func(c *gateway.Config) {
		c.Plugins = dir
		c.PluginConfig = map[string]gateway.PluginConfig{"filter.user": {Config: cfg}}
	})
	<-e.gw.PluginsReady()
	code, _ := e.plugins(e.userToken("alice:alice-demo"))
	require.Equal(t, http.StatusForbidden, code)
	code, _ = e.plugins("nope")
	require.Equal(t, http.StatusUnauthorized, code)
	admin := e.userToken("admin:admin-demo")
	code, pl := e.plugins(admin)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "active", pl.Plugins[0].State)
	good := pl.Plugins[0].Hash

	// A hostile file replaces it: rejected, the good version keeps serving.
	bad, err := os.ReadFile("internal/pluginhost/testdata/inittrap.wasm")
	require.NoError(t, err)
	writeRename(t, dir, "filter.user.wasm", bad)
	var body []byte
	require.Eventually(t, func() bool {
		_, body = e.do(http.MethodGet, "/api/plugins", nil, map[string]string{"Authorization": "OpenTera " + admin})
		return strings.Contains(string(body), "last_rejection")
	}, 10*time.Second, 10*time.Millisecond)
	_, pl = e.plugins(admin)
	require.Equal(t, good, pl.Plugins[0].Hash)
	s := e.connect(directory.KindUser, "alice:alice-demo") // its CONNECTED passes the plugin filter
	_ = s
	// Removing the file unloads it: the native filter takes over.
	require.NoError(t, os.Remove(filepath.Join(dir, "filter.user.wasm")))
	require.Eventually(t, func() bool { _, pl := e.plugins(admin); return len(pl.Plugins) == 0 }, 10*time.Second, 10*time.Millisecond)
	_, body = e.do(http.MethodGet, "/metrics", nil, nil)
	for _, m := range []string{`teragate_plugin_loads_total{plugin="filter.user",result="rejected"} 1`, `teragate_plugin_loads_total{plugin="filter.user",result="unloaded"} 1`} {
		require.Contains(t, string(body), m)
	}
}

// TestGoFilterPluginInGateway runs the first-party filter.user Go plugin in a real gateway: the
// filter table still holds (bob does not see Pat's events, alice does).
func TestGoFilterPluginInGateway(t *testing.T) {
	path := wasmbuild.Build(t, "./plugins/filter/user")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	dir := t.TempDir()
	writeRename(t, dir, "filter.user.wasm", data)
	e := startGateway(t, func(c *gateway.Config) { c.Plugins = dir })
	<-e.gw.PluginsReady()
	admin := e.userToken("admin:admin-demo")
	_, pl := e.plugins(admin)
	require.Len(t, pl.Plugins, 1)
	require.Equal(t, "active", pl.Plugins[0].State, "%+v", pl)
	alice := e.connect(directory.KindUser, "alice:alice-demo")
	bob := e.connect(directory.KindUser, "bob:bob-demo")
	require.NoError(t, e.gw.Publish(context.Background(), userManagerEvents, seqEvent(t, directory.DemoPatUUID)))
	require.NoError(t, e.gw.Publish(context.Background(), userManagerEvents, seqEvent(t, directory.DemoPaulaUUID)))
	ev := alice.event()
	require.Contains(t, fmt.Sprint(ev), directory.DemoPatUUID)
	ev = bob.event()
	require.Contains(t, fmt.Sprint(ev), directory.DemoPaulaUUID)
	_, pl = e.plugins(admin)
	require.Positive(t, pl.Plugins[0].Calls)
}
