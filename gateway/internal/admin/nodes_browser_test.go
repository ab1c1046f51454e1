package admin_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/testutil"
)

// TestChartModule runs the page's chart module (chart.js) in headless Chromium: its round ticks,
// its labels, and the polylines it draws for known series (points outside the span left out).
func TestChartModule(t *testing.T) {
	alloc := browser(t)
	e := startGateway(t, true)
	p := openPage(t, alloc, e.base+gateway.AdminPath)

	ticks := []struct {
		min, max float64
		n        int
		want     string
	}{
		{0, 97, 5, "[0,20,40,60,80,100]"},
		{0, 1, 4, "[0,0.5,1]"},
		{0, 0.3, 4, "[0,0.1,0.2,0.3]"},
		{0, 12345, 4, "[0,5000,10000,15000]"},
		{0, 0, 4, "[0,0.5,1]"}, // an empty range is drawn as 0…1
		{10, 40, 3, "[10,20,30,40]"},
	}
	for _, tc := range ticks {
		got := eval[string](p, fmt.Sprintf(`JSON.stringify(TeragateChart.ticks(%v, %v, %d))`, tc.min, tc.max, tc.n))
		require.Equal(t, tc.want, got, "ticks(%v, %v, %d)", tc.min, tc.max, tc.n)
	}
	labels := map[string]string{"0": "0", "12": "12", "0.25": "0.25", "1.0/3": "0.33", "12000": "12k", "2500000": "2.5M"}
	for in, want := range labels {
		require.Equal(t, want, eval[string](p, `TeragateChart.label(`+in+`)`), "label(%s)", in)
	}

	// Span 10 s ending at t = 10000: x runs from 52 (t = 0) to 628 (t = 10000); the largest value,
	// 12, gives ticks 0…15, so y(v) = 174 − v × 164 / 15.
	got := eval[map[string]any](p, `(() => {
		const d = document.createElement('div');
		document.body.appendChild(d);
		const c = TeragateChart.create(d, { span: 10000, title: 'test' });
		const n = c.update([
			{ name: 'a', points: [[0, 0], [5000, 5], [10000, 10]] },
			{ name: 'b', points: [[-1, 3], [10000, 2], [10001, 99]] },
			{ name: 'total', total: true, points: [[10000, 12]] },
		], 10000);
		const lines = {};
		for (const l of d.querySelectorAll('polyline')) lines[l.dataset.series] = [l.getAttribute('points'), l.dataset.points, l.getAttribute('stroke-dasharray') || ''];
		const svg = d.querySelector('svg');
		return { n, lines, points: svg.dataset.points, series: svg.dataset.series,
			yLabels: [...svg.querySelectorAll('.grid text')].map((t) => t.textContent).filter((s) => !s.endsWith('s') && s !== 'now'),
			legend: [...svg.querySelectorAll('.legend text')].map((t) => t.textContent), title: svg.querySelector('title').textContent };
	})()`)
	require.Equal(t, float64(5), got["n"])
	require.Equal(t, "5", got["points"])
	require.Equal(t, "3", got["series"])
	require.Equal(t, map[string]any{
		"a":     []any{"52.0,174.0 340.0,119.3 628.0,64.7", "3", ""},
		"b":     []any{"628.0,152.1", "1", ""},
		"total": []any{"628.0,42.8", "1", "6 3"},
	}, got["lines"])
	require.Equal(t, []any{"0", "5", "10", "15"}, got["yLabels"])
	require.Equal(t, []any{"a", "b", "total"}, got["legend"])
	require.Equal(t, "test", got["title"])
}

// TestAdminPageNodes: two gateways on one redis-server; the admin page of node A lists both
// nodes with their addresses, states and connections, and after traffic on both its live graphs
// (connections, deliveries per second) have a series per node and the total, with points; when
// node B stops, its row shows it down, then goes.
//
// With TERAGATE_ADMIN_SCREENSHOT=<file.png> it also keeps traffic going for 100 s and
// saves a screenshot of the page (docs/admin-live.png is made so).
func TestAdminPageNodes(t *testing.T) {
	alloc := browser(t)
	srv := testutil.StartRedis(t)
	cluster := func(c *gateway.Config) {
		c.Redis = srv.URL
		c.JWTKey = "admin-nodes-test-key-0123456789"
		c.RedisNodeTTL = gateway.Duration(1500 * time.Millisecond)
	}
	a := startGatewayWith(t, true, cluster)
	b := startGatewayWith(t, true, cluster)
	ids := []string{a.g.NodeID(), b.g.NodeID()}
	require.NotEqual(t, ids[0], ids[1])

	p := openPage(t, alloc, a.base+gateway.AdminPath)
	p.signIn("admin", "admin-demo")
	p.waitFor("the dashboard", `!document.getElementById("dash").hidden`)
	for i, n := range []*gw{a, b} {
		r := fmt.Sprintf(`#nodes-table tr[data-node=%q]`, ids[i])
		p.waitFor("node "+ids[i]+" up", text(r+" td.state")+` === "up"`)
		require.Equal(t, n.g.Addr().String(), eval[string](p, text(r+" td.addr")))
		self := eval[string](p, text(r+" td.id"))
		require.Equal(t, i == 0, self == ids[i]+" (this node)", self)
	}

	// Traffic: alice on A (the admin's own websocket is there too), pat and robot1 on B.
	a.connect(directory.KindUser, "alice:alice-demo")
	b.connect(directory.KindParticipant, "pat:pat-demo")
	b.connect(directory.KindDevice, "0yk0trSpcgU0i26iDTiliB_jqVhOPJD0E0hllOq5")
	rowB := fmt.Sprintf(`#nodes-table tr[data-node=%q]`, ids[1])
	p.waitFor("node B's two connections", text(rowB+" td.connections")+` === "2"`)
	for _, id := range ids {
		r := fmt.Sprintf(`#nodes-table tr[data-node=%q]`, id)
		p.waitFor("deliveries on node "+id, `parseFloat(`+text(r+" td.deliveries")+`) > 0`)
	}
	p.waitFor("the total of connections", text("#nodes-summary")+`.startsWith("2 of 2 node(s) up, 4 connection(s)")`)

	// The graphs: one series per node and the total, each with several points.
	for _, chart := range []string{"#chart-connections", "#chart-deliveries"} {
		for _, series := range append(ids, "total") {
			p.waitFor(chart+" points of "+series,
				fmt.Sprintf(`+((document.querySelector('%s polyline[data-series=%q]') || {dataset: {}}).dataset.points || 0) >= 3`, chart, series))
		}
		require.GreaterOrEqual(t, eval[int](p, `+document.querySelector("`+chart+` svg").dataset.points`), 9)
	}
	// The total's latest connections point is at 4 on the y scale: above the per-node ones.
	require.True(t, eval[bool](p, `(() => {
		const last = (s) => +document.querySelector('#chart-connections polyline[data-series="' + s + '"]').getAttribute('points').split(' ').pop().split(',')[1];
		return last('total') < last(`+fmt.Sprintf("%q", ids[0])+`) && last('total') < last(`+fmt.Sprintf("%q", ids[1])+`);
	})()`), "the total is drawn above each node (smaller y)")

	if out := os.Getenv("TERAGATE_ADMIN_SCREENSHOT"); out != "" {
		screenshot(t, p, []*gw{a, b}, out)
		bounded, cancel := context.WithTimeout(p.tab, 90*time.Second)
		defer cancel()
		p = &page{t: t, ctx: bounded, tab: p.tab}
	}

	// B stops: shown down, then gone.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, b.g.Shutdown(ctx))
	p.waitFor("node B down", text(rowB+" td.state")+` === "down"`)
	require.Equal(t, "expired", eval[string](p, text(rowB+" td.heartbeat")))
	p.waitFor("node B gone", fmt.Sprintf(`document.querySelector(%q) === null`, rowB))
	p.waitFor("one node up", text("#nodes-summary")+`.startsWith("1 of 1 node(s) up")`)
}

// screenshot keeps sockets opening and closing and robot1 reporting on both nodes for 100 s (so the graphs
// have a shape), then saves a PNG of the whole page to out.
func screenshot(t *testing.T, p *page, nodes []*gw, out string) {
	creds := []struct {
		kind directory.Kind
		cred string
	}{
		{directory.KindUser, "bob:bob-demo"}, {directory.KindParticipant, "paula:paula-demo"},
		{directory.KindUser, "alice:alice-demo"}, {directory.KindParticipant, "pat:pat-demo"},
	}
	var open []*websocket.Conn
	end := time.Now().Add(100 * time.Second)
	for i := 0; time.Now().Before(end); i++ {
		c := creds[rand.IntN(len(creds))]
		open = append(open, nodes[rand.IntN(len(nodes))].connect(c.kind, c.cred))
		if len(open) > 4+(i/20)%8 {
			k := rand.IntN(len(open))
			_ = open[k].Close()
			open = append(open[:k], open[k+1:]...)
		}
		// robot1's status changes reach every socket allowed to see robot1, on both nodes.
		for range rand.IntN(1 + i%7) {
			nodes[rand.IntN(len(nodes))].do("POST", "/api/device/status", "OpenTera 0yk0trSpcgU0i26iDTiliB_jqVhOPJD0E0hllOq5",
				fmt.Sprintf(`{"status": {"battery": %d}, "timestamp": %d}`, rand.IntN(100), time.Now().Unix()))
		}
		time.Sleep(time.Duration(150+rand.IntN(400)) * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(p.tab, 30*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Sleep(1500*time.Millisecond)))
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(out, png, 0o644))
	t.Logf("screenshot saved to %s", out)
}
