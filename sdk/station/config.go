package station

import (
	"crypto/x509"
	"errors"
	"net"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config configures an [Agent].
type Config struct {
	// URL is the gateway's base URL, e.g. https://127.0.0.1:4040. Required.
	URL string
	// Token is the station device's token. Required.
	Token string
	// InsecureSkipVerify accepts any TLS certificate (a self-signed development gateway).
	InsecureSkipVerify bool
	// RootCAs are the certificates to trust; nil means the system's.
	RootCAs *x509.CertPool
	// StateDir holds the applied role config (roles.json), the role plugin cache and the
	// compilation cache. Required.
	StateDir string
	// CacheDir is wazero's on-disk compilation cache (safe to share between agents). Empty
	// means StateDir/wasm-cache.
	CacheDir string
	// Hostname, MAC and IP describe the station; empty means detected from the machine.
	Hostname, MAC, IP string
	// BlockedRoles are roles this station refuses whatever the manager says.
	BlockedRoles []string
	// Programs is the "programs" capability: program name → executable path a role may run.
	// Empty means roles may run nothing.
	Programs map[string]string
	// TickInterval is the time between role ticks. Zero value means 1s.
	TickInterval time.Duration
	// CallTimeout bounds every call into a role plugin. Zero value means 2s.
	CallTimeout time.Duration
	// MemoryPages caps each role instance's memory in 64 KiB pages. Zero value means 1024.
	MemoryPages uint32
	// MinBackoff and MaxBackoff bound the reconnection delay. Zero values mean 1s and 5s.
	MinBackoff, MaxBackoff time.Duration
	// Logger is the agent's logger. Nil means no logging.
	Logger hclog.Logger
}

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("station: invalid config")

func (c Config) withDefaults() (Config, error) {
	if c.URL == "" || c.Token == "" || c.StateDir == "" {
		return c, errors.Join(ErrConfig, errors.New("URL, Token and StateDir are required"))
	}
	if c.TickInterval <= 0 {
		c.TickInterval = time.Second
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 2 * time.Second
	}
	if c.MemoryPages == 0 {
		c.MemoryPages = 1024
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(5*time.Second, c.MinBackoff)
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
		if c.Hostname == "" {
			c.Hostname = "Unknown-Hostname"
		}
	}
	if c.MAC == "" || c.IP == "" {
		mac, ip := detectInterface()
		if c.MAC == "" {
			c.MAC = mac
		}
		if c.IP == "" {
			c.IP = ip
		}
	}
	return c, nil
}

// detectInterface returns the MAC and first IPv4 of the first up, non-loopback interface with a
// hardware address (the reference's `ifdata -ph eth0` / `-pa`), or its fallbacks.
func detectInterface() (mac, ip string) {
	mac, ip = "AA:BB:CC:DD:EE:FF", "Unknown-IP"
	ifs, err := net.Interfaces()
	if err != nil {
		return
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 || len(i.HardwareAddr) == 0 {
			continue
		}
		mac = i.HardwareAddr.String()
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				return mac, n.IP.String()
			}
		}
		return mac, ip
	}
	return
}

// Running is one role instance of the agent.
type Running struct {
	// Role and UUID name the instance; Script is its plugin's hash.
	Role, UUID, Script string
	// State is "running" or "failed: <reason>".
	State string
	// Status is its last status (JSON text), "" if none.
	Status string
}

// Stats are counters of an agent, for tests and the command's log.
type Stats struct {
	// Registrations counts successful registrations (a reconnect adds one).
	Registrations int
	// Updates counts configuration pushes applied.
	Updates int
	// Swaps counts role instances swapped to a new plugin version; LastSwap is how long the last
	// swap took (stop on the old instance to start done on the new one, the new module already
	// compiled).
	Swaps    int
	LastSwap time.Duration
	// Restarts counts instances started again after a failed call.
	Restarts int
}
