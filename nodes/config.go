package nodes

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"strings"
	"time"
)

// Config describes a cluster of regions. The zero value is usable: three
// default regions, real round-trip times, a temporary data directory.
type Config struct {
	// Regions to start, in display order; empty means DefaultRegions.
	Regions []string
	// LatencyScale multiplies every link delay: 1 = real RTTs, 0 = none.
	// Negative means 1 (so the zero Config has real latency, see Validate).
	LatencyScale float64
	// DataDir keeps the servers' data; empty means a temporary directory
	// removed by Close.
	DataDir string
	// TickMs and ElectionMs override the derived Raft timing (heartbeat ≈
	// the largest scaled RTT, floor MinTickMs; election = 10 × heartbeat).
	TickMs, ElectionMs uint
	// Fsync makes etcd sync its WAL and database to disk before it
	// acknowledges a write. Off by default: acknowledged writes then survive
	// a killed process (the page cache holds them and the kernel writes them
	// out) and a Crash, but not a machine crash or power loss; on, they
	// survive those too, at the price of slower writes.
	Fsync bool
	// BypassFabric advertises the members' real peer listeners, so consensus
	// traffic does not cross the fabric (for benchmarks only: cuts and
	// latency then do not apply to it).
	BypassFabric bool
	// ReadyTimeout bounds the wait for every member at start (default 60 s:
	// three regions start 15 etcd servers — 3 members, 3 replica servers, 9
	// zone members — in one process, and on a 2-core machine busy with
	// other work their first elections can take tens of seconds; an idle
	// machine is ready in about a second). The caller's context still
	// bounds the whole start.
	ReadyTimeout time.Duration
	// Logger receives the cluster's own messages; nil discards them.
	Logger *slog.Logger
	// Zones is how many zones each region has, each with one member of the
	// region's regional Raft group (the geo store's home): 1 to 3, 0 means
	// 3. One zone halves the etcd servers, for small machines. (zones.go)
	Zones int
	// EtcdLogLevel enables etcd's own logs at this zap level ("warn",
	// "info"); empty keeps etcd quiet.
	EtcdLogLevel string

	// Remote names regions that run on other hosts, each under a region
	// agent (caplab region, agent.go): region → the agent's address. Any
	// region not named runs in this process, under an agent of its own
	// listening on RegionListen. Empty: every region runs here, the
	// classic lab (remote.go).
	Remote map[string]string
	// Token is the lab's token; with Remote, the agents' too.
	Token string
	// RegionListen is where this process's own regions listen for the
	// agents when Remote is set (host:port; the i-th such region takes
	// port+i, 0 = any). Empty: the address this host reaches the first
	// agent from, any port.
	RegionListen string

	timingSet bool // TickMs was given, not derived (a remote lab derives it again from measured RTTs)
}

// MinTickMs is the smallest derived heartbeat. Shorter heartbeats make
// spurious elections likely on a loaded two-core machine.
const MinTickMs = 100

// Timing is the Raft timing a cluster runs with.
type Timing struct {
	TickMs, ElectionMs uint
}

// DeriveTiming follows etcd's tuning guide: heartbeat between 0.5 and 1.5
// × the largest round-trip time between members (scaled) — the low end,
// half of it, so a lab at real latencies elects its first leader in about
// a second — and election = 10 × heartbeat (5 × the largest RTT: the
// one-way delay of a heartbeat is a tenth of it).
func DeriveTiming(regions []string, scale float64) Timing {
	maxRTT := 0.0
	for _, a := range regions {
		for _, b := range regions {
			if rtt, _ := ModelRTT(a, b); rtt > maxRTT {
				maxRTT = rtt
			}
		}
	}
	tick := uint(math.Max(MinTickMs, math.Ceil(maxRTT*scale/2)))
	return Timing{TickMs: tick, ElectionMs: 10 * tick}
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if len(c.Regions) == 0 {
		c.Regions = append([]string(nil), DefaultRegions...)
	}
	if err := validateRegions(c.Regions); err != nil {
		return err
	}
	if c.LatencyScale < 0 || math.IsNaN(c.LatencyScale) {
		c.LatencyScale = 1
	}
	if c.LatencyScale > 100 {
		return fmt.Errorf("nodes: latency scale must be between 0 and 100 (got %v)", c.LatencyScale)
	}
	t := DeriveTiming(c.Regions, c.LatencyScale)
	c.timingSet = c.timingSet || c.TickMs != 0
	if c.TickMs == 0 {
		c.TickMs = t.TickMs
	}
	if c.ElectionMs == 0 {
		c.ElectionMs = 10 * c.TickMs
	}
	if c.ElectionMs < 5*c.TickMs {
		return fmt.Errorf("nodes: election timeout (%d ms) must be at least 5 × heartbeat (%d ms)", c.ElectionMs, c.TickMs)
	}
	if c.Zones == 0 { // zones (zones.go)
		c.Zones = DefaultZones
	}
	if err := checkZones(c.Zones); err != nil {
		return err
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c.validateRemote()
}

// validateRemote checks the regions on other hosts.
func (c *Config) validateRemote() error {
	if len(c.Remote) == 0 {
		return nil
	}
	for r, addr := range c.Remote {
		if !slices.Contains(c.Regions, r) {
			return fmt.Errorf("nodes: --remote names region %s, which is not in this lab (regions: %s)", r, strings.Join(c.Regions, ", "))
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("nodes: --remote %s=%s: give the agent's host:port (what it was started with as --listen)", r, addr)
		}
	}
	if len(c.Token) < 8 {
		return errors.New("nodes: regions on other hosts need the lab's token (at least 8 characters), the one their agents were started with")
	}
	if c.BypassFabric {
		return errors.New("nodes: regions on other hosts always cross the fabric (no bypass)")
	}
	if c.RegionListen != "" {
		if _, _, err := net.SplitHostPort(c.RegionListen); err != nil {
			return fmt.Errorf("nodes: --region-listen %q: give host:port", c.RegionListen)
		}
	}
	return nil
}

// DefaultReadyTimeout is Config.ReadyTimeout's default.
const DefaultReadyTimeout = 60 * time.Second
