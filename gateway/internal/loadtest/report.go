package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Report is the outcome of one bench run. Server figures are zero when no
// server pid was known; load figures are zero in idle mode.
type Report struct {
	Target   string `json:"target"`
	BareMode string `json:"bare_mode,omitempty"`
	Event    string `json:"event"`
	Format   string `json:"format"`
	Idle     bool   `json:"idle"`

	Clients      int `json:"clients"`
	Users        int `json:"users"`
	Participants int `json:"participants"`
	Devices      int `json:"devices"`
	// Projects is the number of projects in the identities (gateway only).
	Projects       int     `json:"projects,omitempty"`
	Connected      int     `json:"connected"`
	ConnectErrors  int     `json:"connect_errors"`
	ConnectSeconds float64 `json:"connect_seconds"`
	ConnectPerSec  float64 `json:"connect_per_sec"`
	// FirstThousandPerSec and LastThousandPerSec are the opens per second of the first and of
	// the last thousand opens (zero below 2,000 clients): whether the pace holds as the count
	// grows.
	FirstThousandPerSec float64 `json:"first_thousand_per_sec,omitempty"`
	LastThousandPerSec  float64 `json:"last_thousand_per_sec,omitempty"`
	// UserLogin is how users logged in ("password" or "token"; gateway
	// only); participants and devices use their static tokens. TLS is true
	// for an https server.
	UserLogin string `json:"user_login,omitempty"`
	TLS       bool   `json:"tls"`
	// ConnectServerCPUMicrosPerOpen and ConnectClientCPUMicrosPerOpen are
	// the CPU the server and the bench used while connecting, per open
	// (login + websocket); ConnectOtherCPUCores is what other processes
	// used meanwhile. SettleServerCPUMicrosPerOpen (connect-only mode) adds
	// the server CPU of the presence traffic that followed the opens.
	ConnectServerCPUMicrosPerOpen float64 `json:"connect_server_cpu_us_per_open"`
	ConnectClientCPUMicrosPerOpen float64 `json:"connect_client_cpu_us_per_open"`
	ConnectOtherCPUCores          float64 `json:"connect_other_cpu_cores"`
	SettleServerCPUMicrosPerOpen  float64 `json:"settle_server_cpu_us_per_open,omitempty"`
	Disconnected                  int     `json:"disconnected"`
	// SettleSeconds is how long the bench waited after connecting for the
	// server's own frames (presence events) to stop; SettleFrames is how
	// many arrived meanwhile. SettleTimedOut means they had not stopped.
	SettleSeconds  float64 `json:"settle_seconds"`
	SettleFrames   int64   `json:"settle_frames"`
	SettleTimedOut bool    `json:"settle_timed_out,omitempty"`

	WarmupSeconds   float64 `json:"warmup_seconds,omitempty"`
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
	IdleWaitSeconds float64 `json:"idle_wait_seconds,omitempty"`
	// Idle mode connects every tenth client first: IdleWarmClients of them, after which the
	// server's RSS was ServerRSSWarmMiB; KiBPerConnAfterWarm is the growth per connection of the
	// other clients (what one more idle connection costs, without what the first sockets set up).
	IdleWarmClients     int     `json:"idle_warm_clients,omitempty"`
	ServerRSSWarmMiB    float64 `json:"server_rss_warm_mib,omitempty"`
	KiBPerConnAfterWarm float64 `json:"kib_per_conn_after_warm,omitempty"`

	// FrameBytes is the mean payload size of the measured frames.
	FrameBytes              float64 `json:"frame_bytes"`
	RecipientsPerEvent      float64 `json:"recipients_per_event"`
	OfferedEventsPerSec     float64 `json:"offered_events_per_sec"`
	OfferedDeliveriesPerSec float64 `json:"offered_deliveries_per_sec"`
	PublishedEvents         int64   `json:"published_events"`
	PublishedPerSec         float64 `json:"published_per_sec"`
	PublishErrors           int64   `json:"publish_errors"`
	DeliveredPerSec         float64 `json:"delivered_per_sec"`
	ExpectedDeliveries      int64   `json:"expected_deliveries"`
	ReceivedDeliveries      int64   `json:"received_deliveries"`
	// LostDeliveries is expected − received (negative means duplicates).
	LostDeliveries int64 `json:"lost_deliveries"`
	// OtherFrames counts frames that were not bench events (the gateway's
	// presence events) received while publishing.
	OtherFrames      int64 `json:"other_frames"`
	UnreadableFrames int64 `json:"unreadable_frames"`

	LatencyP50ms  float64 `json:"latency_p50_ms"`
	LatencyP90ms  float64 `json:"latency_p90_ms"`
	LatencyP99ms  float64 `json:"latency_p99_ms"`
	LatencyMaxms  float64 `json:"latency_max_ms"`
	LatencyMeanms float64 `json:"latency_mean_ms"`

	ServerCPUMicrosPerDelivery float64 `json:"server_cpu_us_per_delivery"`
	ServerCPUSeconds           float64 `json:"server_cpu_seconds"`
	ServerCPUCores             float64 `json:"server_cpu_cores"`
	ServerRSSBaseMiB           float64 `json:"server_rss_base_mib"`
	ServerRSSMiB               float64 `json:"server_rss_mib"`
	KiBPerConn                 float64 `json:"server_kib_per_conn"`

	ClientCPUSeconds           float64 `json:"client_cpu_seconds"`
	ClientCPUCores             float64 `json:"client_cpu_cores"`
	ClientCPUMicrosPerDelivery float64 `json:"client_cpu_us_per_delivery"`
	// OtherCPUCores is the CPU other processes of the machine used during
	// the measurement, in cores: the figures are disturbed when it is not
	// close to zero.
	OtherCPUCores float64 `json:"other_cpu_cores"`

	// Storm holds the figures of a storm run (nil otherwise).
	Storm *StormReport `json:"storm,omitempty"`
	// Series is the run second by second (the progress lines), for plots.
	Series []Sample `json:"series,omitempty"`

	// Errors holds the first few errors seen (logins, publishes, reads).
	Errors []string `json:"errors,omitempty"`
}

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as aligned "name  value" lines.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(name, format string, args ...any) {
		_, _ = fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{name}, args...)...)
	}
	target := r.Target
	if r.BareMode != "" {
		target += " (" + r.BareMode + ")"
	}
	line("target", "%s", target)
	clients := fmt.Sprintf("%d (users %d, participants %d, devices %d)", r.Clients, r.Users, r.Participants, r.Devices)
	if r.Projects > 0 {
		clients += fmt.Sprintf(" in %d projects", r.Projects)
	}
	line("clients", "%s", clients)
	scheme := "plain HTTP/ws"
	if r.TLS {
		scheme = "TLS"
	}
	if r.UserLogin != "" {
		users := "users by password (bcrypt)"
		if r.UserLogin == string(UserLoginToken) {
			users = "users by token (JWT)"
		}
		line("login", "%s, participants and devices by static token, %s", users, scheme)
	} else {
		line("login", "none (bare /ws), %s", scheme)
	}
	line("connected", "%d in %.1fs (%.0f/s), %d failed, %d disconnected later", r.Connected, r.ConnectSeconds, r.ConnectPerSec, r.ConnectErrors, r.Disconnected)
	if r.FirstThousandPerSec > 0 {
		line("connect pace", "first 1000 at %.0f/s, last 1000 at %.0f/s", r.FirstThousandPerSec, r.LastThousandPerSec)
	}
	line("connect cpu", "server %.1f µs/open, client %.1f µs/open, other processes %.2f cores", r.ConnectServerCPUMicrosPerOpen, r.ConnectClientCPUMicrosPerOpen, r.ConnectOtherCPUCores)
	settled := ""
	if r.SettleTimedOut {
		settled = " (NOT settled: figures include them)"
	}
	line("settle", "%.1fs, %d server frames (presence)%s", r.SettleSeconds, r.SettleFrames, settled)
	if r.SettleServerCPUMicrosPerOpen > 0 {
		line("open cpu", "server %.1f µs/open with the presence traffic that followed", r.SettleServerCPUMicrosPerOpen)
	}
	line("frame format", "%s", r.Format)
	switch {
	case r.Idle:
		line("mode", "idle for %.0fs after the server's own traffic settled", r.IdleWaitSeconds)
	case r.Storm != nil:
		line("mode", "connect storm (%s)", r.Storm.Mode)
		line("event", "%s, %.0f events/s to every socket", r.Event, r.OfferedEventsPerSec)
		line("latency", "p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms", r.LatencyP50ms, r.LatencyP90ms, r.LatencyP99ms, r.LatencyMaxms)
	case r.DurationSeconds == 0:
		line("mode", "connect only")
	default:
		line("event", "%s, %.1f recipients/event", r.Event, r.RecipientsPerEvent)
		line("frame bytes", "%.0f", r.FrameBytes)
		line("duration", "%.1fs (+%.1fs warmup)", r.DurationSeconds, r.WarmupSeconds)
		line("offered", "%.1f events/s, %.0f deliveries/s", r.OfferedEventsPerSec, r.OfferedDeliveriesPerSec)
		line("published", "%.1f events/s (%d events, %d errors)", r.PublishedPerSec, r.PublishedEvents, r.PublishErrors)
		line("delivered", "%.0f msgs/s", r.DeliveredPerSec)
		line("deliveries", "expected %d, received %d, lost %d", r.ExpectedDeliveries, r.ReceivedDeliveries, r.LostDeliveries)
		line("latency", "p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms", r.LatencyP50ms, r.LatencyP90ms, r.LatencyP99ms, r.LatencyMaxms)
		line("server cpu", "%.2f µs/delivery (%.2f cores, %.1fs)", r.ServerCPUMicrosPerDelivery, r.ServerCPUCores, r.ServerCPUSeconds)
	}
	line("server rss", "%.1f MiB (base %.1f MiB), %.2f KiB/conn", r.ServerRSSMiB, r.ServerRSSBaseMiB, r.KiBPerConn)
	if r.IdleWarmClients > 0 {
		line("idle steps", "%.1f MiB after the first %d clients, then %.2f KiB/conn for the other %d",
			r.ServerRSSWarmMiB, r.IdleWarmClients, r.KiBPerConnAfterWarm, r.Connected-r.IdleWarmClients)
	}
	if !r.Idle && r.DurationSeconds > 0 {
		line("client cpu", "%.2f µs/delivery (%.2f cores, %.1fs)", r.ClientCPUMicrosPerDelivery, r.ClientCPUCores, r.ClientCPUSeconds)
		line("other cpu", "%.2f cores (other processes on the machine)", r.OtherCPUCores)
		if r.OtherFrames > 0 || r.UnreadableFrames > 0 {
			line("other frames", "%d (unreadable bench frames %d)", r.OtherFrames, r.UnreadableFrames)
		}
	}
	if r.Storm != nil {
		r.Storm.writeText(line)
	}
	for i, e := range r.Errors {
		line(fmt.Sprintf("error %d", i+1), "%s", strings.ReplaceAll(e, "\n", " "))
	}
	return tw.Flush()
}
