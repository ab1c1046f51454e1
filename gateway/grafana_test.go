package gateway_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/gateway/internal/testutil"
)

// dashboardPath is the Grafana dashboard of examples/grafana.
const dashboardPath = "../examples/grafana/teragate-dashboard.json"

// prometheusMade are the series Prometheus adds to every scrape itself: a dashboard may query
// them though no gateway exposes them.
var prometheusMade = []string{"up"}

// dashboardQueries returns every PromQL query of a Grafana dashboard: the panels' targets (rows'
// nested panels included) and the query variables (label_values(<selector>, <label>) contributes
// its selector).
func dashboardQueries(t *testing.T, raw []byte) []string {
	t.Helper()
	type target struct {
		Expr string `json:"expr"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Type    string   `json:"type"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal(raw, &d))
	var out []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" {
				require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				require.NotEmpty(t, strings.TrimSpace(tg.Expr), "panel %q has an empty query", p.Title)
				out = append(out, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^\s*label_values\(\s*(.+),\s*[a-zA-Z_]\w*\s*\)\s*$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if json.Unmarshal(v.Query, &q) != nil {
			var obj struct {
				Query string `json:"query"`
			}
			require.NoError(t, json.Unmarshal(v.Query, &obj))
			q = obj.Query
		}
		if m := labelValues.FindStringSubmatch(q); m != nil {
			q = m[1]
		}
		out = append(out, q)
	}
	return out
}

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promVariables = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	promTokens    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*|[0-9][0-9a-zA-Z.]*(?:[eE][+-]?[0-9]+)?|\S`)
	promKeywords  = []string{"and", "or", "unless", "offset", "bool", "inf", "nan", "by", "without", "on", "ignoring", "group_left", "group_right", "atan2"}
)

// promMetrics returns the metric names a PromQL query reads: its identifiers that are not
// functions or aggregations (followed by "("), keywords, label names (in matchers and groupings),
// strings, numbers, durations or Grafana variables.
func promMetrics(q string) []string {
	q = promStrings.ReplaceAllString(q, `""`)
	q = promMatchers.ReplaceAllString(q, " ")
	q = promRanges.ReplaceAllString(q, " ")
	q = promGrouping.ReplaceAllString(q, " ")
	q = promVariables.ReplaceAllString(q, " ")
	toks := promTokens.FindAllStringIndex(q, -1)
	var out []string
	for i, loc := range toks {
		tok := q[loc[0]:loc[1]]
		if c := tok[0]; !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			continue
		}
		if i+1 < len(toks) && q[toks[i+1][0]:toks[i+1][1]] == "(" {
			continue // a function or an aggregation
		}
		if slices.Contains(promKeywords, strings.ToLower(tok)) || slices.Contains(out, tok) {
			continue
		}
		out = append(out, tok)
	}
	return out
}

// TestPromMetrics: the metric names of a PromQL query, and nothing else.
func TestPromMetrics(t *testing.T) {
	tests := []struct {
		q    string
		want []string
	}{
		{`teragate_connections`, []string{"teragate_connections"}},
		{`sum by (kind) (teragate_connections{instance=~"$instance", kind!="by(x)"})`, []string{"teragate_connections"}},
		{`sum(rate(teragate_deliveries_total[$__rate_interval])) by (instance)`, []string{"teragate_deliveries_total"}},
		{`histogram_quantile(0.99, sum by (le, kind) (rate(teragate_filter_duration_seconds_bucket{job="teragate"}[5m])))`, []string{"teragate_filter_duration_seconds_bucket"}},
		{`time() - max(teragate_directory_last_reload_timestamp_seconds)`, []string{"teragate_directory_last_reload_timestamp_seconds"}},
		{`a_total / on (instance) group_left(kind) b_info * 1e3 > bool 2`, []string{"a_total", "b_info"}},
		{`count(up{job="teragate"} == 1) or vector(0)`, []string{"up"}},
		{`topk(10, sum by (route) (rate(teragate_http_requests_total offset 5m [1h:1m])))`, []string{"teragate_http_requests_total"}},
		{`rate(x_total{a="}"}[5m]) unless y_total`, []string{"x_total", "y_total"}},
		{`{__name__="teragate_connections"}`, nil},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, promMetrics(tc.q), tc.q)
	}
}

// exposedMetrics returns the sample names of a Prometheus text exposition (histogram series
// included: name_bucket, name_sum, name_count).
func exposedMetrics(t *testing.T, text string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			out[line[:i]] = true
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// missingMetrics returns the metrics the queries read that the exposition lacks.
func missingMetrics(queries []string, exposed map[string]bool) []string {
	var missing []string
	for _, q := range queries {
		for _, m := range promMetrics(q) {
			if !exposed[m] && !slices.Contains(prometheusMade, m) && !slices.Contains(missing, m) {
				missing = append(missing, m+" (in "+q+")")
			}
		}
	}
	return missing
}

// TestGrafanaDashboardMetrics: every metric the Grafana dashboard of examples/grafana queries is
// exposed by a running gateway's /metrics, once it has seen the traffic of an ordinary day: a
// gateway with Redis and its built-in plugins, logins (one account locked by wrong passwords),
// websockets of every kind receiving events, RPC calls, a configuration reload and a Redis
// restart. A panel querying a metric that does not exist fails the test.
func TestGrafanaDashboardMetrics(t *testing.T) {
	raw, err := os.ReadFile(dashboardPath)
	require.NoError(t, err)
	queries := dashboardQueries(t, raw)
	require.GreaterOrEqual(t, len(queries), 20, "the dashboard's queries")

	srv := testutil.StartRedis(t)
	plugins := t.TempDir()
	wasm, pcfg := echoPlugin(t)
	writeRename(t, plugins, "filter.user.wasm", wasm)
	var cfg gateway.Config
	e := startGateway(t, func(c *gateway.Config) {
		c.Redis = srv.URL
		c.RedisNodeTTL = gateway.Duration(1500 * time.Millisecond)
		c.MaxFailedLogins = 2
		c.Plugins = plugins // a user filter plugin: plugin calls, loads and versions
		c.PluginConfig = map[string]gateway.PluginConfig{"filter.user": {Config: pcfg, Timeout: gateway.Duration(5 * time.Second)}}
		cfg = *c
	})

	// Logins, a lockout, websockets of every kind with events delivered, RPC calls, a device
	// status, a reload, and a Redis restart (the bus resubscribes).
	<-e.gw.PluginsReady()
	obs := e.connect(directory.KindUser, "admin:admin-demo")
	e.connect(directory.KindParticipant, "pat:pat-demo")
	e.connect(directory.KindDevice, demoToken(directory.KindDevice, directory.DemoRobot1UUID))
	obs.expectType("PARTICIPANT_CONNECTED")
	for range 3 {
		code, _ := e.login(directory.KindUser, "bob:wrong-password", "")
		require.NotEqual(t, http.StatusOK, code)
	}
	require.Equal(t, `["`+directory.DemoAdminUUID+`"]`, e.returnValue("online_users"))
	code, body := e.rpcCall(serviceToken, presence.Module, `{"method": "no_such_method"}`)
	require.NotEqual(t, http.StatusOK, code, body)
	code, status := e.do(http.MethodPost, "/api/device/status", strings.NewReader(`{"status": {"battery": 50}, "timestamp": 1732145425}`),
		map[string]string{"Authorization": "OpenTera " + demoToken(directory.KindDevice, directory.DemoRobot1UUID), "Content-Type": "application/json"})
	require.Equal(t, http.StatusOK, code, string(status))
	_, err = e.gw.Reload(cfg)
	require.NoError(t, err)
	srv.Restart(t)

	// The bus's reconnect is counted once it resubscribed: poll a little.
	var missing []string
	var exposition string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, b := e.do(http.MethodGet, "/metrics", nil, nil)
		require.Equal(t, http.StatusOK, code)
		exposition = string(b)
		missing = missingMetrics(queries, exposedMetrics(t, exposition))
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	require.Empty(t, missing, "the dashboard queries metrics /metrics lacks")

	// The check itself: a panel with a metric no gateway has is caught.
	var d map[string]any
	require.NoError(t, json.Unmarshal(raw, &d))
	d["panels"] = append(d["panels"].([]any), map[string]any{"type": "timeseries", "title": "typo",
		"targets": []any{map[string]any{"expr": `sum(rate(teragate_deliverys_total[5m]))`}}})
	bad, err := json.Marshal(d)
	require.NoError(t, err)
	require.Equal(t, []string{"teragate_deliverys_total (in sum(rate(teragate_deliverys_total[5m])))"},
		missingMetrics(dashboardQueries(t, bad), exposedMetrics(t, exposition)))
}
