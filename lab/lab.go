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
	"caplab/lab/inventory"
	"caplab/lab/store"
	"caplab/lab/store/consensus"
	"caplab/lab/store/geo"
	"caplab/lab/store/replicated"
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
	Breaker guard.BreakerSettings
	// MaxRetries bounds a consensus buy's optimistic-lock retries (default 5).
	MaxRetries int
	// GroupCommitOff starts the consensus store with group commit off
	// (Faults.SetGroupCommit switches it later); by default it is on:
	// docs/benchmarks.md, "Doorbuster at the limit", says why.
	GroupCommitOff bool
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
	// Remote, Token and RegionListen put regions on other hosts, under
	// region agents (nodes.Config.Remote: region → agent address).
	Remote       map[string]string
	Token        string
	RegionListen string
}

func (c *Config) validate() error {
	if c.LatencyScale < 0 || math.IsNaN(c.LatencyScale) || c.LatencyScale > 100 {
		return fmt.Errorf("%w: latency scale must be between 0 and 100 (got %v)", inventory.ErrBadInput, c.LatencyScale)
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
		c.MaxInFlight = guard.DefaultMaxInFlight
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

// Lab is the domain: one inventory in three stores over a cluster of
// regions, and everything around them. It is a facade over rooms with one
// job each: the commands (Stock, Buy, Read, StockSplit, Reserve) run
// through do, the one command path; faults and configuration belong to
// Faults(), clocks and shop pauses to Time(), the geo store's reads that
// are not operations to Geo(), the lesson recording to Recorder(). Every
// action — a click, a lesson step, a script's request — goes through these,
// so there is one command path and one event stream.
type Lab struct {
	cfg     Config
	cluster *nodes.Cluster
	regions []string

	// The three stores, by their own types for what only one of them does,
	// and behind store.Store (package lab/store) for what every operation does.
	consensus  *consensus.Store
	replicated *replicated.Store
	geo        *geo.Store
	stores     map[inventory.Store]storeSlot // fixed at New

	// The request path (package guard). gate: operations and the
	// background loops enter it, Reset and Close hold it exclusively, so a
	// reset never interleaves with a store call; waiting for it honours the
	// caller's deadline.
	gate      *guard.Gate
	admission *guard.Admission
	breakers  *guard.Breakers

	// What is recorded: the History, the geo call log and the gaps between
	// them (records); the lab's own writes left out of the History, for
	// the outside-write watcher (ownWrites); the remembered verdicts of
	// segments that no longer change (verdicts).
	history   *history.History
	geoLog    *history.GeoLog
	gaps      *history.Gaps
	records   records
	ownWrites unrecordedWrites
	verdicts  check.Memo

	// The rooms.
	faults   *Faults
	time     *Time
	geoRoom  *GeoStore
	recorder *Recorder
	events   *events
	counters *storeCounters
	outside  *outsideWatcher
	hooks    hooks       // hooks.go: recorders that miss no operation, fault or reset
	merges   *mergeWatch // merge.go: the replicated store's merges told after heals

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
		Remote: cfg.Remote, Token: cfg.Token, RegionListen: cfg.RegionListen,
	})
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	regions := cl.Regions()
	l := &Lab{cfg: cfg, cluster: cl, regions: regions, stop: make(chan struct{}),
		gate: guard.NewGate(), history: history.New(), geoLog: &history.GeoLog{}}
	l.admission = guard.NewAdmission(regions, cfg.MaxInFlight, cfg.RequestTimeout/4, cityOf)
	l.events = &events{cluster: cl, hooks: &l.hooks, stop: l.stop, subs: map[chan Event]*atomic.Int64{}}
	bs := cfg.Breaker
	bs.OnChange = func(region string, store inventory.Store, from, to string) { l.events.publishState() }
	l.breakers = guard.NewBreakers(regions, bs)
	l.gaps = history.NewGaps(func(g inventory.RecordingGap) { l.hooks.call(Event{Type: EventGap, Gap: &g}) })
	l.records = records{history: l.history, geoLog: l.geoLog, gaps: l.gaps, regions: regions}

	// The stores.
	clocks := nodes.NewClocks(regions)
	l.consensus = consensus.New(cl, regions, cfg.MaxRetries, cfg.RequestTimeout)
	l.replicated = replicated.New(cl, regions, clocks)
	l.geo = geo.New(geo.Config{Cluster: cl, Regions: regions, MaxRetries: cfg.MaxRetries, Timeout: cfg.RequestTimeout,
		Breakers: l.breakers, Log: l.geoLog, Gaps: l.gaps,
		OnCall:   func(c inventory.GeoCall) { l.hooks.call(Event{Type: EventGeoCall, GeoCall: &c}) },
		Unlogged: func(ctx context.Context) bool { return opRecordingOf(ctx).SkipHistory }})
	l.stores = map[inventory.Store]storeSlot{}
	for s, api := range map[inventory.Store]store.Store{inventory.Consensus: l.consensus, inventory.Replicated: l.replicated, inventory.Geo: l.geo} {
		_, guarded := api.(store.SelfGuarded)
		l.stores[s] = storeSlot{api: api, selfGuarded: guarded}
	}
	l.reserveBudget = inventory.MaxPause + 3*time.Duration(consensus.ReserveTTL(cl.Timing()))*time.Second + 3*cfg.RequestTimeout

	// The rooms. Each gets what it needs, and faultHappened to report a
	// change; none sees the Lab.
	l.counters = newStoreCounters(l.history, l.gaps, &l.events.version, l.stop)
	l.events.breakers, l.events.clocks, l.events.counters = l.breakers, clocks, l.counters
	l.events.replicated, l.events.geo, l.events.consensus = l.replicated, l.geo, l.consensus
	l.faults = &Faults{cluster: cl, regions: regions, timeout: cfg.RequestTimeout, logger: cfg.Logger,
		replicated: l.replicated, consensus: l.consensus, geo: l.geo, happened: l.faultHappened,
		admission: l.admission, maxInFlight: cfg.MaxInFlight}
	l.faults.applyGroupCommit(!cfg.GroupCommitOff) // recorded as no fault: the lab starts so
	l.merges = &mergeWatch{gate: l.gate, bg: &l.bg, stop: l.stop, timeout: cfg.RequestTimeout, history: l.history,
		converge: l.WaitConverged, happened: l.faultHappened}
	l.faults.healed = l.merges.watch
	l.time = &Time{clocks: clocks, regions: regions, stop: l.stop, happened: l.faultHappened}
	l.geoRoom = &GeoStore{gate: l.gate, store: l.geo, regions: regions, timeout: cfg.RequestTimeout}
	l.recorder = &Recorder{regions: regions, latencyScale: cfg.LatencyScale, breaker: cfg.Breaker,
		quorum: l.replicated.Quorum, check: l.Check}
	l.recorder.start(true, l.replicated.Quorum())
	l.outside = &outsideWatcher{cluster: cl, regions: regions, consensus: l.consensus, history: l.history,
		ownWrites: &l.ownWrites, settle: cfg.RequestTimeout + time.Second, stop: l.stop, happened: l.faultHappened}

	if err := loadEpochs(cl, l.consensus, l.replicated, l.geo); err != nil {
		l.replicated.Close()
		_ = cl.Close()
		return nil, fmt.Errorf("lab: %w", err)
	}
	if cl.Resumed() {
		// The stores hold what the earlier run wrote; the History starts
		// empty: judge each SKU from its first restock (history.Gaps.Resumed).
		l.gaps.Resumed(inventory.Stores, time.Now())
	}
	if _, err := cl.WaitLeader(ctx); err != nil {
		l.replicated.Close()
		_ = cl.Close()
		return nil, fmt.Errorf("lab: %w", err)
	}
	// Ready means a first buy from any region goes through: every member
	// the leader reaches has heard from it (a member that lost the
	// election knows its leader only from the leader's first message, and
	// until then etcd answers a write through it "no leader" — a buy right
	// after "ready" answered 503 in .ci/run). Bounded: a lab whose member
	// cannot hear the leader still starts, and says so in its state.
	hctx, hcancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	_ = cl.AwaitLeaderHeard(hctx, regions)
	hcancel()
	// The outside-write watcher judges every write from here on, including
	// those made before its first watch is up.
	rctx, rcancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	l.outside.from = startRevision(rctx, cl, regions)
	rcancel()
	snaps, cancel := cl.Subscribe()
	st := l.State()
	l.events.snap.Store(&st)
	l.history.SetStart(NetOf(st, nil)) // the History starts with the network now (replay.go)
	// The consensus store's regional caches (cached reads).
	for _, r := range regions {
		l.bg.Add(1)
		go func() {
			defer l.bg.Done()
			l.consensus.RunCache(r, l.stop)
		}()
	}
	l.bg.Add(6)
	go func() {
		defer l.bg.Done()
		l.counters.run()
	}()
	go func() {
		defer l.bg.Done()
		defer cancel()
		l.events.forward(snaps, l.consensus.LeaderChanged)
	}()
	go func() {
		defer l.bg.Done()
		replicate(l.stop, l.gate, l.replicated, cfg.SyncInterval, cfg.RequestTimeout)
	}()
	go func() {
		defer l.bg.Done()
		l.events.coalesce()
	}()
	go func() { // outside.go: flag writes no operation of the lab made
		defer l.bg.Done()
		l.outside.run()
	}()
	go func() { // the geo store's transfer recovery
		defer l.bg.Done()
		recoverTransfers(l.stop, l.gate, l.geo, cfg.RequestTimeout)
	}()
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
		l.time.pauses.clear() // frozen shops wake and finish
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
		l.consensus.Close()
		l.closeErr = l.cluster.Close() // closes the snapshot channel too
		l.bg.Wait()
		l.events.closeAll()
	})
	return l.closeErr
}

// Regions lists the lab's regions in order.
func (l *Lab) Regions() []string { return slices.Clone(l.regions) }

// RequestTimeout is the deadline of every store call.
func (l *Lab) RequestTimeout() time.Duration { return l.cfg.RequestTimeout }

// Cluster is the underlying cluster (for benchmarks, tests and the
// things a lab's user may ask of the regions themselves: its latency
// scale, whether it resumed an earlier run's data).
func (l *Lab) Cluster() *nodes.Cluster { return l.cluster }
