package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// Lab is the domain: one inventory in two stores over a cluster of regions,
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

	consensus  *consensusStore
	replicated *replicatedStore
	geo        *geoStore // geo_lab.go

	// gate: operations and the background replication enter it, Reset
	// and Close hold it exclusively, so a reset never interleaves with a
	// store call. Waiting for it honours the caller's deadline: a buy
	// during a reset answers unavailable instead of waiting the reset out.
	gate      *gate
	closed    atomic.Bool
	admission *admission

	quorum   atomic.Pointer[QuorumState]
	counters map[Store]*storeCounts // fixed at New; the counts are atomic
	version  atomic.Int64           // bumped by every change viewers see
	auditMu  sync.Mutex             // the auditor's recount against Reset
	audit    *audit                 // the auditor's own state (under auditMu)
	recorder recorder               // what Recording exports (recording.go)
	clocks   *nodes.Clocks          // per-region wall clocks (time.go)
	pauses   pauses                 // paused shops (reserve.go)

	snap     atomic.Pointer[State] // the newest State published; operation events carry it
	verdicts verdicts              // the checker's remembered segment verdicts (Check)

	subMu  sync.RWMutex
	subs   map[chan Event]*atomic.Int64 // each subscriber's events missed since its last delivery
	missed atomic.Int64                 // events lost by any subscriber, ever (MissedEvents)

	recorders  recorders                // auditlog.go: hooks that miss no operation, fault or reset
	unrecorded unrecordedWrites         // ownwrites.go: writes left out of the History, for the outside-write watcher
	gaps       *recordingGaps           // gaps.go: where writes went unrecorded, per (store, SKU), for the checker
	merges     mergeWatch               // merge.go: the replicated store's merges told after heals
	netStart   atomic.Pointer[FaultNet] // replay.go: the network when the History started

	stop      chan struct{}
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New starts the regions and both stores. Close it when done.
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
		gate:  newGate(),
		audit: newAudit(),
	}
	l.quorum.Store(new(GlobalTables(len(cfg.Regions))))
	l.admission = newAdmission(l.regions, cfg.MaxInFlight, cfg.RequestTimeout/4)
	l.counters = map[Store]*storeCounts{}
	for _, s := range Stores {
		l.counters[s] = &storeCounts{}
	}
	l.recorder.start(true, l.Quorum())
	bs := cfg.Breaker
	bs.OnChange = func(region string, store Store, from, to string) { l.publishState() }
	l.breakers = NewBreakers(l.regions, bs)
	l.consensus = &consensusStore{cluster: cl, maxRetries: cfg.MaxRetries}
	l.clocks = nodes.NewClocks(l.regions)
	l.replicated = newReplicatedStore(cl, l.regions, l.clocks)
	l.geo = newGeoStore(cl, l.regions, cfg.MaxRetries, cfg.RequestTimeout)
	l.gaps = newRecordingGaps(func(g RecordingGap) { l.recorders.call(Event{Type: EventGap, Gap: &g}) })
	l.geo.gaps = l.gaps
	l.geo.onCall = func(c GeoCall) { l.recorders.call(Event{Type: EventGeoCall, GeoCall: &c}) }
	if err := l.resumeEpochs(); err != nil {
		l.replicated.close()
		_ = cl.Close()
		return nil, fmt.Errorf("lab: %w", err)
	}
	if cl.Resumed() {
		// The stores hold what the earlier run wrote; the History starts
		// empty: judge each SKU from its first restock (gaps.go).
		l.gaps.resumed(Stores, time.Now())
	}
	if _, err := cl.WaitLeader(ctx); err != nil {
		l.replicated.close()
		_ = cl.Close()
		return nil, fmt.Errorf("lab: %w", err)
	}
	snaps, cancel := cl.Subscribe()
	st := l.State()
	l.snap.Store(&st)
	l.history.startedAt() // the History starts here, with the network now (replay.go)
	l.netStart.Store(NetOf(st, nil))
	l.bg.Add(4)
	go func() {
		defer l.bg.Done()
		l.auditor()
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
	l.startGeo() // geo_lab.go
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
		drained := l.gate.lock(ctx) == nil
		cancel()
		l.closed.Store(true)
		if drained {
			l.gate.unlock()
		}
		close(l.stop)
		l.replicated.close()
		l.geo.close()
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

// ---- names and input ----

var skuPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// CheckRegion returns an error naming the valid regions unless name is one.
func (l *Lab) CheckRegion(name string) error {
	if slices.Contains(l.regions, name) {
		return nil
	}
	return fmt.Errorf("%w: region %s is not in this lab (regions: %s)", ErrUnknownRegion, Echo(name), strings.Join(l.regions, ", "))
}

// ParseStore checks a store name.
func ParseStore(name string) (Store, error) {
	switch s := Store(name); s {
	case Consensus, Replicated, Geo:
		return s, nil
	}
	return "", fmt.Errorf("%w: store %s does not exist (stores: consensus, replicated, geo)", ErrUnknownStore, Echo(name))
}

// CheckSKU checks a SKU against ^[A-Za-z0-9._-]{1,64}$.
func CheckSKU(sku string) error {
	if skuPattern.MatchString(sku) {
		return nil
	}
	return fmt.Errorf("%w: SKU %s must be 1 to 64 letters, digits, '.', '_' or '-'", ErrBadInput, Echo(sku))
}

// CheckQty checks a buy quantity (1..1000).
func CheckQty(qty int) error {
	if qty >= 1 && qty <= 1000 {
		return nil
	}
	return fmt.Errorf("%w: qty must be a whole number from 1 to 1000 (got %d)", ErrBadInput, qty)
}

// MaxStock bounds a stock level.
const MaxStock = 1_000_000

func (l *Lab) checkOp(store Store, sku, region string) error {
	if _, err := ParseStore(string(store)); err != nil {
		return err
	}
	if err := l.CheckRegion(region); err != nil {
		return err
	}
	return CheckSKU(sku)
}

// wrapNodes maps a nodes error to the lab's sentinels.
func wrapNodes(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nodes.ErrBadOperation): // region names are checked before nodes is called
		msg := strings.TrimPrefix(err.Error(), "nodes: ")
		return fmt.Errorf("%w: %s", ErrBadInput, cleanNodesMsg(msg))
	case errors.Is(err, nodes.ErrClosed):
		return ErrClosed
	case errors.Is(err, nodes.ErrRegionDown), errors.Is(err, nodes.ErrRegionUp):
		return fmt.Errorf("%w: %s", ErrConflict, strings.TrimPrefix(err.Error(), "nodes: "))
	case errors.Is(err, nodes.ErrNoLeader):
		return fmt.Errorf("%w: %s", ErrUnavailable, strings.TrimPrefix(err.Error(), "nodes: "))
	}
	return fmt.Errorf("%w: %s", ErrUnavailable, strings.TrimPrefix(err.Error(), "nodes: "))
}

// cleanNodesMsg drops the "bad operation: " inside a nodes message.
func cleanNodesMsg(msg string) string {
	return strings.Replace(msg, nodes.ErrBadOperation.Error()+": ", "", 1)
}

// ---- network and region faults ----

// Partition splits the regions into groups (every region in exactly one).
func (l *Lab) Partition(groups [][]string) error {
	for _, g := range groups {
		for _, r := range g {
			if err := l.CheckRegion(r); err != nil {
				return err
			}
		}
	}
	if err := l.cluster.Fabric().Partition(groups); err != nil {
		return wrapNodes(err)
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = strings.Join(g, ",")
	}
	l.fault(FaultPartition, nil, strings.Join(parts, " | "))
	l.recorder.add(RecordedAction{Kind: ActPartition, Groups: groups})
	l.awaitStreams()
	return nil
}

// awaitStreams gives etcd's peer streams over links that just came up a
// moment to reconnect (bounded), so that the next write through a follower
// does not fall into the gap and wait out its deadline. See
// nodes.Cluster.AwaitStreams.
func (l *Lab) awaitStreams() {
	ctx, cancel := context.WithTimeout(context.Background(), max(2*time.Second, l.cfg.RequestTimeout))
	defer cancel()
	if err := l.cluster.AwaitStreams(ctx); err != nil {
		l.cfg.Logger.Warn("links came up but raft streams are slow to reconnect", "err", err)
	}
}

// HealAll brings every link up; latencies are kept.
func (l *Lab) HealAll() error {
	l.cluster.Fabric().HealAll()
	l.healZoneLinks() // geo_lab.go
	l.fault(FaultHeal, nil, "all links up")
	l.recorder.add(RecordedAction{Kind: ActHeal})
	l.awaitStreams()
	l.watchMerge() // merge.go
	return nil
}

// SetLink cuts or heals one link, both ways unless oneWay.
func (l *Lab) SetLink(from, to string, up, oneWay bool) error {
	if l.cluster.IsZone(from) || l.cluster.IsZone(to) {
		return l.setZoneLink(from, to, up, oneWay) // geo_lab.go
	}
	if err := l.CheckRegion(from); err != nil {
		return err
	}
	if err := l.CheckRegion(to); err != nil {
		return err
	}
	if err := l.cluster.Fabric().SetLink(from, to, up, oneWay); err != nil {
		return wrapNodes(err)
	}
	defer func() {
		if up {
			l.awaitStreams() // after the fault is recorded and published
			l.watchMerge()   // merge.go
		}
	}()
	l.linkFault(from, to, up, oneWay)
	l.recorder.add(RecordedAction{Kind: linkAction(up), Regions: []string{from, to}, OneWay: oneWay})
	return nil
}

// SetLatency sets the round-trip time between two regions (oneWay: only
// from → to gets rttMs/2 of one-way delay).
func (l *Lab) SetLatency(from, to string, rttMs float64, oneWay bool) error {
	if l.cluster.IsZone(from) || l.cluster.IsZone(to) {
		return l.setZoneLatency(from, to, rttMs, oneWay) // geo_lab.go
	}
	if err := l.CheckRegion(from); err != nil {
		return err
	}
	if err := l.CheckRegion(to); err != nil {
		return err
	}
	if err := l.cluster.Fabric().SetRTT(from, to, rttMs, oneWay); err != nil {
		return wrapNodes(err)
	}
	arrow := "<->"
	if oneWay {
		arrow = "->"
	}
	l.fault(FaultLatency, []string{from, to}, fmt.Sprintf("%s %s %s: %g ms round trip", from, arrow, to, rttMs))
	l.recorder.add(RecordedAction{Kind: ActLatency, Regions: []string{from, to}, RTTMs: rttMs, OneWay: oneWay})
	return nil
}

// Isolate cuts every link of one region.
func (l *Lab) Isolate(region string) error {
	return l.recorded(l.regionFault(region, l.cluster.Fabric().Isolate, FaultPartition, region+" isolated"), ActIsolate, region)
}

// Bridge leaves the other regions able to talk only through via.
func (l *Lab) Bridge(via string) error {
	return l.recorded(l.regionFault(via, l.cluster.Fabric().Bridge, FaultPartition, "bridge through "+via), ActBridge, via)
}

// Crash stops a region abruptly.
func (l *Lab) Crash(region string) error {
	return l.recorded(l.regionFault(region, l.cluster.Crash, FaultCrash, region+" crashed"), ActCrash, region)
}

// Restart brings a crashed region back from its data directory.
func (l *Lab) Restart(region string) error {
	return l.recorded(l.regionFault(region, l.cluster.Restart, FaultRestart, region+" restarted"), ActRestart, region)
}

// regionFault applies a fault to one region and records it.
func (l *Lab) regionFault(region string, apply func(string) error, kind FaultKind, detail string) error {
	zones := kind == FaultCrash || kind == FaultRestart // geo_lab.go: zones crash too
	if !zones || !l.cluster.IsZone(region) {
		if err := l.CheckRegion(region); err != nil {
			if zones {
				return l.unknownRegionOrZone(region)
			}
			return err
		}
	}
	if err := apply(region); err != nil {
		return wrapNodes(err)
	}
	l.fault(kind, []string{region}, detail)
	if kind == FaultRestart {
		l.geo.kickRecovery() // pending transfers are settled after a restart
	}
	return nil
}

// Lead moves consensus leadership to a region and returns once it leads.
// It fails with ErrUnavailable when the region cannot lead (crashed, cut
// off, no leader to hand over from). It keeps trying (the region may
// still be catching up with the leader) until ctx ends, or for
// max(5 s, 4 × RequestTimeout) when ctx has no deadline: a lesson's
// "lead" gives it the lesson's wait (30 s), which a busy machine may need
// after a reset.
func (l *Lab) Lead(ctx context.Context, region string) error {
	if err := l.CheckRegion(region); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, max(5*time.Second, 4*l.cfg.RequestTimeout))
		defer cancel()
	}
	if err := l.cluster.MoveLeader(ctx, region); err != nil {
		return fmt.Errorf("%w: %s cannot lead now: %s", ErrUnavailable, region, strings.TrimPrefix(err.Error(), "nodes: "))
	}
	l.fault(FaultLead, []string{region}, region+" leads")
	l.recorder.add(RecordedAction{Kind: ActLead, Regions: []string{region}})
	return nil
}

// Leader is the region that leads the consensus group, or "".
func (l *Lab) Leader() string { return l.cluster.Leader() }

// WaitLeader waits until a majority agrees on a leader.
func (l *Lab) WaitLeader(ctx context.Context) error {
	_, err := l.cluster.WaitLeader(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// SetQuorum configures the replicated store's W and R.
func (l *Lab) SetQuorum(w, r int) error {
	if err := ValidateQuorum(len(l.regions), w, r); err != nil {
		return err
	}
	l.quorum.Store(&QuorumState{N: len(l.regions), W: w, R: r})
	l.fault(FaultQuorum, nil, fmt.Sprintf("W=%d R=%d (N=%d)", w, r, len(l.regions)))
	l.recorder.add(RecordedAction{Kind: ActQuorum, W: w, R: r})
	return nil
}

// Quorum is the replicated store's configuration.
func (l *Lab) Quorum() QuorumState { return *l.quorum.Load() }

// ---- store operations ----

// Stock sets a SKU's stock in one store, as a write from region.
func (l *Lab) Stock(ctx context.Context, store Store, sku, region string, quantity int) (Outcome, error) {
	if err := l.checkOp(store, sku, region); err != nil {
		return Outcome{}, err
	}
	if quantity < 0 || quantity > MaxStock {
		return Outcome{}, fmt.Errorf("%w: quantity must be a whole number from 0 to %d (got %d)", ErrBadInput, MaxStock, quantity)
	}
	return l.do(ctx, Operation{Store: store, SKU: sku, Region: region, Op: OpStock, Qty: quantity})
}

// Buy buys qty units of a SKU from region.
func (l *Lab) Buy(ctx context.Context, store Store, sku, region string, qty int) (Outcome, error) {
	if err := l.checkOp(store, sku, region); err != nil {
		return Outcome{}, err
	}
	if err := CheckQty(qty); err != nil {
		return Outcome{}, err
	}
	return l.do(ctx, Operation{Store: store, SKU: sku, Region: region, Op: OpBuy, Qty: qty})
}

// Read reads a SKU's stock from region. Consistency applies to the
// consensus store ("" means linearizable); the replicated store reads R
// replicas.
func (l *Lab) Read(ctx context.Context, store Store, sku, region string, c Consistency) (Outcome, error) {
	if err := l.checkOp(store, sku, region); err != nil {
		return Outcome{}, err
	}
	switch c {
	case "":
		c = Linearizable
	case Linearizable, Serializable:
	default:
		return Outcome{}, fmt.Errorf("%w: consistency must be linearizable or serializable (got %s)", ErrBadInput, Echo(string(c)))
	}
	if store == Replicated || store == Geo {
		c = ""
	}
	return l.do(ctx, Operation{Store: store, SKU: sku, Region: region, Op: OpRead, Consistency: c})
}

// do runs one operation through the region's breaker and the store,
// records it and publishes it.
func (l *Lab) do(ctx context.Context, op Operation) (Outcome, error) {
	if err := l.enter(ctx); err != nil {
		if errors.Is(err, ErrClosed) {
			return Outcome{}, err
		}
		return Outcome{Outcome: Unavailable, Store: op.Store, Region: op.Region, SKU: op.SKU, Op: op.Op, AnsweredBy: []string{},
			Message: "Unavailable: the lab is being reset — try again in a moment. Nothing was sent to the store."}, nil
	}
	defer l.gate.leave()
	quorum := l.Quorum()
	op.Client = l.sessionOf(op.Region, op.Store)
	l.shareStrings(&op)
	op.Call = time.Now()
	rec := opRecordingOf(ctx) // oprecording.go: a load records and publishes less
	rr := l.beginRecord(rec, op)
	if !rr.keep && !rec.SkipHistory { // past the History's cap: its geo calls go unlogged too
		ctx = WithOpRecording(ctx, OpRecording{SkipHistory: true, SkipPublish: rec.SkipPublish})
	}
	l.pauses.hold(op.Region, l.stop) // a paused shop freezes mid-flight (reserve.go)
	execute := l.breakers.Execute
	if op.Store == Geo {
		execute = geoExecute // the geo store picks a breaker per group it calls (geo_lab.go)
	}
	var out Outcome
	// Admission before the breaker: a request the gateway has no room for
	// reaches neither the store nor the breaker, which must not take a
	// queue for a partition.
	if g := l.admission.admit(op.Region, op.Store); g == nil {
		out = l.admission.overloaded(op)
	} else {
		out = execute(op.Region, op.Store, func() Outcome {
			if !l.cluster.IsUp(op.Region) {
				return Outcome{Outcome: Unavailable, Message: fmt.Sprintf("Unavailable: %s is down (crashed) — its shop cannot serve anyone until it restarts.", cityOf(op.Region))}
			}
			// The answer comes within the deadline plus answerGrace, even
			// when the call itself overruns its context (deadline.go).
			return withinDeadline(ctx, op, l.cfg.RequestTimeout, func(ctx context.Context) Outcome {
				switch op.Store {
				case Consensus:
					return l.consensus.run(ctx, op)
				case Geo:
					return l.geo.run(ctx, op, l.breakers)
				}
				return l.replicated.run(ctx, op, quorum)
			})
		})
		l.admission.done(g, time.Since(op.Call), out.Outcome)
	}
	op.Return = time.Now()
	out.Store, out.Region, out.SKU, out.Op = op.Store, op.Region, op.SKU, op.Op
	out.Consistency = op.Consistency
	out.Qty = op.Qty
	out.LatencyMs = math.Round(float64(op.Return.Sub(op.Call).Microseconds())/10) / 100
	if out.AnsweredBy == nil {
		out.AnsweredBy = []string{}
	}
	op.Outcome, op.Quantity, op.Version, op.BaseVersion = out.Outcome, out.Quantity, out.Version, out.BaseVersion
	keepWords(&op, out, rec.SkipPublish) // sentence.go
	op, kept := l.endRecord(rr, rec, op)
	if !kept { // left out, or past the History's cap: still the lab's own write
		l.unrecorded.note(op, l.consensus.epoch.Load())
	}
	if !rec.SkipPublish { // a load's operations are no actions to record
		l.recordOp(ctx, op, quorum)
	}
	out.OpID = op.ID
	l.count(op)
	if !rec.SkipPublish {
		l.publish(Event{Type: EventOperation, Operation: &op, Outcome: &out, State: l.snap.Load()})
	} else if kept { // the audit log keeps what the History keeps
		l.recorders.call(Event{Type: EventOperation, Operation: &op})
	}
	return out, nil
}

// shareStrings points op's region, store, op and consistency at the lab's
// own strings: a request decoded from JSON carries fresh copies, which the
// history would otherwise keep, one set per operation, up to its cap.
func (l *Lab) shareStrings(op *Operation) {
	if i := slices.Index(l.regions, op.Region); i >= 0 {
		op.Region = l.regions[i]
	}
	if i := slices.Index(Stores, op.Store); i >= 0 {
		op.Store = Stores[i]
	}
	for _, o := range [...]Op{OpBuy, OpStock, OpRead} {
		if op.Op == o {
			op.Op = o
		}
	}
	for _, c := range [...]Consistency{Linearizable, Serializable} {
		if op.Consistency == c {
			op.Consistency = c
		}
	}
}

// sessionOf numbers the (region, store) gateway sessions from 0: the
// Operation.Client of the history. (The checker assigns its own client
// ids, since one gateway serves concurrent buyers.)
func (l *Lab) sessionOf(region string, store Store) int {
	return slices.Index(l.regions, region)*len(Stores) + slices.Index(Stores, store)
}

// enter takes one unit of the gate, waiting at most the request deadline
// (a reset holds the whole gate), or fails once the lab is closed.
func (l *Lab) enter(ctx context.Context) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if !l.gate.tryEnter() {
		ctx, cancel := context.WithTimeout(ctx, l.cfg.RequestTimeout)
		defer cancel()
		if err := l.gate.enter(ctx); err != nil {
			return fmt.Errorf("%w: the lab is being reset", ErrUnavailable)
		}
	}
	if l.closed.Load() {
		l.gate.leave()
		return ErrClosed
	}
	return nil
}

// ---- history, checker, counters ----

// History returns the recorded operations (of one SKU, "" for all) and
// every fault.
func (l *Lab) History(sku string) HistoryView {
	v := l.history.View(sku)
	v.StartedAt, v.Start = l.history.startedAt(), l.netStart.Load()
	v.DroppedOperations, v.DroppedFaults = l.history.Dropped()
	return v
}

// ---- reset ----

// Reset makes the lab fresh: every link up at its model latency, crashed
// regions restarted, both stores emptied, quorum back to W=1 R=1, breakers
// closed, history and counters cleared.
func (l *Lab) Reset(ctx context.Context) error {
	if l.closed.Load() {
		return ErrClosed
	}
	l.pauses.clear() // frozen shops wake, so that the reset need not wait for them
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := l.gate.lock(wctx)
	cancel()
	if err != nil {
		return fmt.Errorf("%w: reset: operations in flight did not finish: %v", ErrUnavailable, err)
	}
	defer l.gate.unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	// Whatever part of the reset happens, the epochs it reached are where a
	// lab resumed on this data must look.
	defer func() { _ = l.saveEpochs() }()
	f := l.cluster.Fabric()
	f.HealAll()
	for _, a := range l.regions {
		for _, b := range l.regions {
			if a < b {
				rtt, _ := nodes.ModelRTT(a, b)
				_ = f.SetRTT(a, b, rtt, false)
			}
		}
	}
	for _, r := range l.regions {
		if !l.cluster.IsUp(r) {
			if err := l.cluster.Restart(r); err != nil {
				return wrapNodes(err)
			}
		}
	}
	ctx, cancelReset := context.WithTimeout(ctx, 30*time.Second)
	defer cancelReset()
	if _, err := l.cluster.WaitLeader(ctx); err != nil {
		return fmt.Errorf("%w: reset: %v", ErrUnavailable, err)
	}
	l.awaitStreams()
	if err := l.consensus.clear(ctx, l.regions); err != nil {
		return fmt.Errorf("%w: reset: %v", ErrUnavailable, err)
	}
	l.replicated.inflight.Wait() // late background writes must not outlive the reset
	if err := l.replicated.clear(ctx); err != nil {
		return fmt.Errorf("%w: reset: %v", ErrUnavailable, err)
	}
	if err := l.resetGeo(ctx); err != nil { // geo_lab.go
		return fmt.Errorf("%w: reset: %v", ErrUnavailable, err)
	}
	l.quorum.Store(new(GlobalTables(len(l.regions))))
	l.breakers.Reset()
	l.history.Clear()
	l.gaps.clear()
	l.clocks.Reset()
	l.recorder.start(true, l.Quorum())
	l.verdicts.clear()
	l.resetCounters()
	st := l.State()
	l.snap.Store(&st)
	l.netStart.Store(NetOf(st, nil)) // replay.go: the network the History starts with
	l.publish(Event{Type: EventReset, State: &st, FirstOpID: l.history.current().base})
	return nil
}

// WaitConverged waits until every running replica of the replicated store
// holds the same newest value for every SKU, and every running consensus
// member follows the agreed leader and has applied all it committed (so a
// serializable read anywhere returns the latest value).
func (l *Lab) WaitConverged(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := l.replicated.converged(ctx)
		if err == nil && ok && l.cluster.CaughtUp() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: replicas did not converge: %v", ErrUnavailable, ctx.Err())
		case <-t.C:
		}
	}
}

// replicate runs the replicated store's background replication until Close.
func (l *Lab) replicate() {
	t := time.NewTicker(l.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if !l.gate.tryEnter() { // a reset or Close: skip this round
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(l.cfg.SyncInterval, l.cfg.RequestTimeout))
		l.replicated.antiEntropy(ctx)
		cancel()
		l.gate.leave()
	}
}

// linkFault records a link (region or zone) cut or healed, one way or both.
func (l *Lab) linkFault(from, to string, up, oneWay bool) {
	arrow := "<->"
	if oneWay {
		arrow = "->"
	}
	kind := FaultCut
	if up {
		kind = FaultHeal
	}
	l.fault(kind, []string{from, to}, from+" "+arrow+" "+to)
}
