package lab

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"caplab/lab/check"
	"caplab/lab/guard"
	"caplab/lab/history"
	"caplab/nodes"
)

// Config describes a lab. The zero value is three default regions with no
// added latency (LatencyScale 0); main passes 1 for real round-trip times.
type Config struct {
	// Regions to run; empty means us-east-1, eu-west-1, ap-southeast-1.
	Regions []string
	// LatencyScale multiplies every link delay (1 = real RTTs, 0 = none).
	LatencyScale float64
	// DataDir keeps the etcd data; empty means a temporary directory. A
	// lab started again on the same DataDir resumes from it (Resumed).
	DataDir string
	// Fsync makes every server sync its writes to disk (nodes.Config.Fsync).
	Fsync bool
	// Logger receives the lab's messages; nil discards them.
	Logger *slog.Logger
	// RequestTimeout bounds every store call; default 2 s × latency scale,
	// at least 1 s (API.md).
	RequestTimeout time.Duration
	// Breaker configures the circuit breakers; the default cooldown is
	// 5 s × latency scale, at least 1 s.
	Breaker BreakerSettings
	// MaxRetries bounds a consensus buy's optimistic-lock retries (default 5).
	MaxRetries int
	// MaxInFlight is the ceiling of each region gateway's adaptive limit of
	// requests in flight per store (default DefaultMaxInFlight); a request
	// past the limit is answered at once with outcome overloaded and
	// reaches no store.
	MaxInFlight int
	// SyncInterval is the replicated store's background replication period
	// (default 100 ms, or the largest scaled RTT if larger).
	SyncInterval time.Duration
	// TickMs, ElectionMs and EtcdLogLevel pass through to nodes.Config.
	TickMs, ElectionMs uint
	EtcdLogLevel       string
	// Zones per region (1 to 3, 0 = 3): members of each regional group, the
	// geo store's home (nodes.Config.Zones).
	Zones int
}

func (c *Config) validate() error {
	if c.LatencyScale < 0 || math.IsNaN(c.LatencyScale) || c.LatencyScale > 100 {
		return fmt.Errorf("%w: latency scale must be between 0 and 100 (got %v)", ErrBadInput, c.LatencyScale)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = max(time.Second, time.Duration(2*c.LatencyScale*float64(time.Second)))
	}
	if c.Breaker.Cooldown <= 0 {
		c.Breaker.Cooldown = max(time.Second, time.Duration(5*c.LatencyScale*float64(time.Second)))
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 5
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = 100 * time.Millisecond
		maxRTT := 0.0
		for _, a := range c.Regions {
			for _, b := range c.Regions {
				rtt, _ := nodes.ModelRTT(a, b)
				maxRTT = max(maxRTT, rtt)
			}
		}
		c.SyncInterval = max(c.SyncInterval, time.Duration(maxRTT*c.LatencyScale*float64(time.Millisecond)))
	}
	return nil
}

// Lab is the domain: one inventory in three stores over a cluster of regions,
// a circuit breaker per (region, store), the history of every operation and
// fault, and the checker. Every action — a click, a lesson step, a script's
// request — goes through these methods, so there is one command path and
// one event stream.
type Lab struct {
	cfg      Config
	cluster  *nodes.Cluster
	regions  []string
	history  *History
	breakers *Breakers

	// The three stores, by their own types for what only one of them does,
	// and behind storeAPI (store.go) for what every operation does.
	consensus  *consensusStore
	replicated *replicatedStore
	geo        *geoStore
	stores     map[Store]storeSlot // fixed at New

	// gate: operations and the background replication enter it, Reset
	// and Close hold it exclusively, so a reset never interleaves with a
	// store call. Waiting for it honours the caller's deadline: a buy
	// during a reset answers unavailable instead of waiting the reset out.
	gate      *guard.Gate
	admission *guard.Admission

	counters    map[Store]*storeCounts // fixed at New; the counts are atomic
	version     atomic.Int64           // bumped by every change viewers see
	tallyMu     sync.Mutex             // the counting goroutine's recount against Reset
	tally       *check.Tally           // the counting goroutine's own state (under tallyMu)
	tallyCursor HistoryCursor          // how far the tally has read the History (under tallyMu)
	actions     recorder               // what Recording exports (recording.go)
	clocks      *nodes.Clocks          // per-region wall clocks (time.go)
	pauses      pauses                 // paused shops (reserve.go)

	snap     atomic.Pointer[State] // the newest State published; operation events carry it
	verdicts check.Memo            // the checker's remembered segment verdicts (Check)

	subMu  sync.RWMutex
	subs   map[chan Event]*atomic.Int64 // each subscriber's events missed since its last delivery
	missed atomic.Int64                 // events lost by any subscriber, ever (MissedEvents)

	hooks     hooks            // auditlog.go: hooks that miss no operation, fault or reset
	ownWrites unrecordedWrites // ownwrites.go: writes left out of the History, for the outside-write watcher
	gaps      *history.Gaps    // gaps.go: where writes went unrecorded, per (store, SKU), for the checker

	// reserveBudget is a reservation's deadline: the longest pause, the
	// lock wait (three lease TTLs, as the flow allows) and three request
	// deadlines (grant, read, write).
	reserveBudget time.Duration

	stop      chan struct{}
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New starts the regions and the three stores. Close it when done.
func New(ctx context.Context, cfg Config) (*Lab, error) {
	if len(cfg.Regions) == 0 {
		cfg.Regions = append([]string(nil), nodes.DefaultRegions...)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cl, err := nodes.Start(ctx, nodes.Config{
		Regions: cfg.Regions, LatencyScale: cfg.LatencyScale, DataDir: cfg.DataDir, Fsync: cfg.Fsync,
		TickMs: cfg.TickMs, ElectionMs: cfg.ElectionMs, EtcdLogLevel: cfg.EtcdLogLevel,
		Logger: cfg.Logger, Zones: cfg.Zones,
	})
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	l := &Lab{
		cfg: cfg, cluster: cl, regions: cl.Regions(), history: NewHistory(),
		subs:  map[chan Event]*atomic.Int64{},
		stop:  make(chan struct{}),
		gate:  guard.NewGate(),
		tally: check.NewTally(),
	}
	l.admission = guard.NewAdmission(l.regions, cfg.MaxInFlight, cfg.RequestTimeout/4, cityOf)
	l.counters = map[Store]*storeCounts{}
	for _, s := range Stores {
		l.counters[s] = &storeCounts{}
	}
	bs := cfg.Breaker
	bs.OnChange = func(region string, store Store, from, to string) { l.publishState() }
	l.breakers = NewBreakers(l.regions, bs)
	l.consensus = &consensusStore{cluster: cl, regions: l.regions, maxRetries: cfg.MaxRetries}
	l.clocks = nodes.NewClocks(l.regions)
	l.replicated = newReplicatedStore(cl, l.regions, l.clocks)
	l.geo = newGeoStore(cl, l.regions, cfg.MaxRetries, cfg.RequestTimeout, l.breakers)
	l.stores = map[Store]storeSlot{}
	for s, api := range map[Store]storeAPI{Consensus: l.consensus, Replicated: l.replicated, Geo: l.geo} {
		_, guarded := api.(selfGuarded)
		l.stores[s] = storeSlot{api: api, selfGuarded: guarded}
	}
	l.actions.start(true, l.Quorum())
	l.reserveBudget = MaxPause + 3*time.Duration(reserveTTL(cl.Timing()))*time.Second + 3*cfg.RequestTimeout
	l.gaps = history.NewGaps(func(g RecordingGap) { l.hooks.call(Event{Type: EventGap, Gap: &g}) })
	l.geo.gaps = l.gaps
	l.geo.onCall = func(c GeoCall) { l.hooks.call(Event{Type: EventGeoCall, GeoCall: &c}) }
	if err := l.resumeEpochs(); err != nil {
		l.replicated.Close()
		_ = cl.Close()
		return nil, fmt.Errorf("lab: %w", err)
	}
	if _, err := cl.WaitLeader(ctx); err != nil {
		l.replicated.Close()
		_ = cl.Close()
		return nil, fmt.Errorf("lab: %w", err)
	}
	snaps, cancel := cl.Subscribe()
	st := l.State()
	l.snap.Store(&st)
	l.bg.Add(4)
	go func() {
		defer l.bg.Done()
		l.counting()
	}()
	go func() {
		defer l.bg.Done()
		defer cancel()
		l.forwardSnapshots(snaps)
	}()
	go func() {
		defer l.bg.Done()
		l.replicate()
	}()
	go func() {
		defer l.bg.Done()
		l.coalesceState()
	}()
	l.bg.Add(1)
	go func() { // outside.go: flag writes no operation of the lab made
		defer l.bg.Done()
		l.watchOutside()
	}()
	l.startGeo() // the geo store's transfer recovery
	return l, nil
}

// closeWait bounds how long Close waits for operations in flight.
const closeWait = 10 * time.Second

// Close stops, in order: new operations (those in flight may finish, for
// at most closeWait), the background replication and writes, the regions
// (which ends the snapshot stream), then the subscriptions. Operations
// after Close fail with ErrClosed. Safe to call twice.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		l.pauses.clear() // frozen shops wake and finish
		ctx, cancel := context.WithTimeout(context.Background(), closeWait)
		drained := l.gate.Lock(ctx) == nil
		cancel()
		l.gate.Close()
		if drained {
			l.gate.Unlock()
		}
		close(l.stop)
		l.replicated.Close()
		l.geo.Close()
		l.closeErr = l.cluster.Close() // closes the snapshot channel too
		l.bg.Wait()
		l.subMu.Lock()
		for ch := range l.subs {
			close(ch)
		}
		clear(l.subs)
		l.subMu.Unlock()
	})
	return l.closeErr
}

// Regions lists the lab's regions in order.
func (l *Lab) Regions() []string { return slices.Clone(l.regions) }

// RequestTimeout is the deadline of every store call.
func (l *Lab) RequestTimeout() time.Duration { return l.cfg.RequestTimeout }

// LatencyScale is the factor every delay is multiplied by.
func (l *Lab) LatencyScale() float64 { return l.cfg.LatencyScale }

// Cluster is the underlying cluster (for benchmarks and tests).
func (l *Lab) Cluster() *nodes.Cluster { return l.cluster }
