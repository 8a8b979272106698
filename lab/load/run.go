package load

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Run states.
const (
	StateIdle     = "idle"     // no load has run
	StateStocking = "stocking" // writing the catalogue's stock into every store
	StateRunning  = "running"  // arrivals are coming
	StateDraining = "draining" // arrivals stopped; waiting for operations in flight
	StateChecking = "checking" // the checker judges the recorded history
	StateFinished = "finished" // ran its duration
	StateStopped  = "stopped"  // stopped early (Stop, a reset, or the lab closing)
	StateFailed   = "failed"   // could not start (stocking failed)
)

// catalogPrefix names the catalogue's SKUs: BF-000000 is the most popular.
const catalogPrefix = "BF-"

// Limits of what a run keeps.
const (
	keepSamples = 300 // seconds of samples per (store, region) kept for GET /api/load
	keepFaults  = 500 // fault marks
	// recordBudget is how many operations a run may add to the lab's
	// history. It bounds memory (≈ 190 B an operation in the History, more
	// in the auditor and the geo log, and about twice that in RSS, as the
	// Go heap keeps room to grow): spent within the first minute at
	// BenchmarkLoadRSS's rate, so that RSS is flat from then on — 50,000
	// kept it growing for five minutes (+28 %). What follows the budget
	// is counted and audited, not checked for linearizability, and the
	// status says from when (Status.Checked).
	recordBudget = 10_000
	readRecordPS = 50 // checked reads recorded a second per store
	stockWorkers = 16
	// A stock write that fails is tried again after 0.5, 1, … 3.5 s: 14 s
	// in all, past a breaker's cool-down (5 s at latency scale 1) and its
	// trial, so that a busy machine's few timeouts — which open the
	// breaker — do not fail the start (5 attempts, 5 s, did on a machine
	// four times oversubscribed).
	stockAttempts = 8
	stockBackoff  = 500 * time.Millisecond
	drainTimeout  = 30 * time.Second
)

// FaultMark is a fault seen during a run, for the plots' bands.
type FaultMark struct {
	T      float64 `json:"t"` // seconds since the run started
	Kind   string  `json:"kind"`
	Detail string  `json:"detail"`
}

// Run is one load: started by Start, ended by its duration or Stop.
type Run struct {
	cfg     Config
	target  Target
	regions []string
	stores  []string
	cells   [][]*cell   // [store][region]
	skus    []*skuTable // [store]
	names   []string    // SKU index → name; 0 is the doorbuster
	checked []bool      // SKU index → its operations go to the history
	onFrame func(Frame)

	ctx    context.Context // cancelled by Stop: arrivals end
	cancel context.CancelFunc
	hard   context.Context // cancelled by abort: operations in flight end too
	abort  context.CancelFunc
	ops    sync.WaitGroup // operations in flight
	done   chan struct{}

	recorded  atomic.Int64   // operations sent to the history
	spentAt   atomic.Int64   // ns after start when the last operation the budget allowed was recorded (0: not spent)
	readToken []atomic.Int64 // [store]: checked reads recorded in the current second
	stockDone atomic.Int64

	mu        sync.Mutex
	state     string
	reason    string
	start     time.Time
	ended     time.Time
	samples   [][][]Sample // [store][region] ring, oldest first
	faults    []FaultMark
	checks    map[string]*CheckSummary
	lastFrame *Frame

	pace *pacer // nil: every arrival goes (Config.Pace false); pace.go
}

// Frame is what subscribers get once a second: the status without the
// sample history, with this second's samples in Latest.
type Frame = Status

// newRun prepares a run; cfg must be normalized against target.
func newRun(cfg Config, target Target, onFrame func(Frame)) *Run {
	r := &Run{cfg: cfg, target: target, regions: target.Regions(), stores: cfg.Stores, onFrame: onFrame,
		done: make(chan struct{}), state: StateStocking, checks: map[string]*CheckSummary{}}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.hard, r.abort = context.WithCancel(context.Background())
	if cfg.Pace == nil || *cfg.Pace {
		r.pace = &pacer{}
	}
	r.names = make([]string, cfg.SKUs+1)
	r.checked = make([]bool, cfg.SKUs+1)
	levels := make([]int64, cfg.SKUs+1)
	r.names[0], r.checked[0], levels[0] = cfg.Doorbuster, true, int64(*cfg.DoorbusterStock)
	for i := 1; i <= cfg.SKUs; i++ {
		r.names[i] = fmt.Sprintf("%s%06d", catalogPrefix, i-1)
		levels[i] = int64(*cfg.Stock)
	}
	for i := range *cfg.SampleSKUs {
		r.checked[1 + i*cfg.SKUs / *cfg.SampleSKUs] = true // ranks spread over the catalogue, the hottest first
	}
	r.readToken = make([]atomic.Int64, len(r.stores))
	r.samples = make([][][]Sample, len(r.stores))
	for si, s := range r.stores {
		r.skus = append(r.skus, newSKUTable(slices.Clone(levels)))
		row := make([]*cell, len(r.regions))
		for ri, reg := range r.regions {
			row[ri] = newCell(s, reg)
		}
		r.cells = append(r.cells, row)
		r.samples[si] = make([][]Sample, len(r.regions))
	}
	return r
}

// CheckedSKUs names the SKUs whose every operation goes to the history.
func (r *Run) CheckedSKUs() []string {
	var out []string
	for i, c := range r.checked {
		if c {
			out = append(out, r.names[i])
		}
	}
	return out
}

// Done is closed when the run has ended (finished, stopped or failed).
func (r *Run) Done() <-chan struct{} { return r.done }

// Stop ends the arrivals; operations in flight finish (within the
// target's deadline). It returns at once; wait on Done.
func (r *Run) Stop(reason string) {
	r.mu.Lock()
	if r.reason == "" && reason != "" {
		r.reason = reason
	}
	r.mu.Unlock()
	r.cancel()
}

// abortNow ends arrivals and operations in flight.
func (r *Run) abortNow(reason string) {
	r.Stop(reason)
	r.abort()
}

// over reports whether the run's state is final (finished, stopped,
// failed): Done follows at once.
func (r *Run) over() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state == StateFinished || r.state == StateStopped || r.state == StateFailed
}

func (r *Run) setState(s string) {
	r.mu.Lock()
	r.state = s
	r.mu.Unlock()
}

// main runs the whole life of a run.
func (r *Run) main() {
	defer close(r.done)
	defer r.abort()
	if err := r.stockAll(); err != nil {
		r.mu.Lock()
		r.state, r.reason, r.ended = StateFailed, err.Error(), time.Now()
		r.mu.Unlock()
		r.emit()
		return
	}
	if s, ok := r.target.(interface{ Settle(context.Context) }); ok {
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		s.Settle(ctx)
		cancel()
	}
	var events <-chan Event
	if ev, ok := r.target.(Events); ok {
		ch, stop := ev.Events()
		defer stop()
		events = ch
	}
	r.mu.Lock()
	if r.ctx.Err() == nil {
		r.state = StateRunning
	}
	r.start = time.Now()
	r.mu.Unlock()
	end := r.start.Add(time.Duration(r.cfg.Duration))
	runCtx, cancelRun := context.WithDeadline(r.ctx, end)
	defer cancelRun()

	var arrivals sync.WaitGroup
	for ri, reg := range r.regions {
		arrivals.Add(1)
		go func() {
			defer arrivals.Done()
			r.arrivals(runCtx, ri, r.cfg.RatePerRegion[reg])
		}()
	}
	if r.pace != nil {
		arrivals.Go(func() { r.pace.run(runCtx) })
	}
	if r.cfg.RestockEvery > 0 {
		arrivals.Add(1)
		go func() {
			defer arrivals.Done()
			r.restocker(runCtx)
		}()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	second := 0
	for running := true; running; {
		select {
		case <-runCtx.Done():
			running = false
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			r.fault(ev)
			if ev.Reset {
				r.Stop("the lab was reset")
			}
		case <-tick.C:
			second++
			r.sample(float64(second))
		}
	}
	arrivals.Wait()
	r.setState(StateDraining)
	drained := make(chan struct{})
	go func() { r.ops.Wait(); close(drained) }()
	timeout := time.NewTimer(drainTimeout)
	defer timeout.Stop()
	for waiting := true; waiting; {
		select {
		case <-drained:
			waiting = false
		case <-timeout.C:
			r.abort()
			<-drained
			waiting = false
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			r.fault(ev)
		case <-tick.C:
			second++
			r.sample(float64(second))
		}
	}
	// The last (partial) second.
	r.sample(math.Round(time.Since(r.start).Seconds()*10) / 10)
	if c, ok := r.target.(Checker); ok && r.hard.Err() == nil {
		r.setState(StateChecking)
		r.emit()
		for _, s := range r.stores {
			sum, err := c.Check(s, "")
			if err != nil {
				sum = CheckSummary{Explanation: "the checker could not run: " + err.Error()}
			}
			sum.SKU = strings.Join(r.CheckedSKUs(), ",")
			r.mu.Lock()
			r.checks[s] = &sum
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	r.ended = time.Now()
	if r.reason != "" {
		r.state = StateStopped
	} else {
		r.state = StateFinished
	}
	r.mu.Unlock()
	r.emit()
}

// stockAll writes every SKU's stock into every store from the first
// region, with stockWorkers at once.
func (r *Run) stockAll() error {
	type job struct{ store, sku int }
	jobs := make(chan job)
	var failed atomic.Value
	var wg sync.WaitGroup
	region := r.writeRegion()
	for range stockWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				t := r.skus[j.store]
				t.stocked[j.sku].Store(t.level[j.sku])
				var res Result
				for attempt := range stockAttempts { // a stock is a set: repeating it is harmless
					if attempt > 0 { // back off past a breaker's cool-down
						select {
						case <-r.ctx.Done():
						case <-time.After(time.Duration(attempt) * stockBackoff):
						}
					}
					res = r.target.Stock(r.hard, r.stores[j.store], r.names[j.sku], region, int(t.level[j.sku]), r.checked[j.sku])
					if r.checked[j.sku] {
						r.recorded.Add(1)
					}
					if res.Kind == KindOK || r.ctx.Err() != nil {
						break
					}
				}
				if res.Kind != KindOK {
					failed.CompareAndSwap(nil, fmt.Sprintf("could not stock %s in the %s store from %s: it answered %s", r.names[j.sku], r.stores[j.store], region, res.Kind))
				}
				r.stockDone.Add(1)
			}
		}()
	}
	stop := false
	for si := range r.stores {
		for i := range r.names {
			if stop = r.ctx.Err() != nil || failed.Load() != nil; stop {
				break
			}
			jobs <- job{si, i}
		}
	}
	close(jobs)
	wg.Wait()
	if msg, ok := failed.Load().(string); ok {
		return fmt.Errorf("%s; nothing was sent after that — heal the lab and start again", msg)
	}
	if r.ctx.Err() != nil {
		return fmt.Errorf("stopped while stocking")
	}
	return nil
}

// writeRegion is where stock is written from: the consensus leader's
// region when the target knows it (a write there needs no forwarding and
// works while a minority is cut off), else the first region.
func (r *Run) writeRegion() string {
	if t, ok := r.target.(interface{ Leader() string }); ok {
		if l := t.Leader(); slices.Contains(r.regions, l) {
			return l
		}
	}
	return r.regions[0]
}

// arrivals is one region's Poisson process until ctx ends.
func (r *Run) arrivals(ctx context.Context, ri int, buysPerSecond float64) {
	seed := r.cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	rng := rand.New(rand.NewPCG(seed, uint64(ri)+1))
	zipf := rand.NewZipf(rng, r.cfg.Zipf, 1, uint64(r.cfg.SKUs-1))
	mix := *r.cfg.ReadsPerBuy
	rate := buysPerSecond * (1 + mix)
	pBuy := 1 / (1 + mix)
	share := *r.cfg.DoorbusterShare
	next := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next = next.Add(time.Duration(rng.ExpFloat64() / rate * float64(time.Second)))
		if d := time.Until(next); d > time.Millisecond {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		sku := 0
		if rng.Float64() >= share {
			sku = 1 + int(zipf.Uint64())
		}
		r.dispatch(next, ri, sku, rng.Float64() >= pBuy)
	}
}

// dispatch sends one arrival to every store, each with the same intended
// time.
func (r *Run) dispatch(at time.Time, ri, sku int, read bool) {
	if r.pace != nil && !r.pace.admit() { // the machine is busy: held back for every store (pace.go)
		for si := range r.stores {
			c := r.cells[si][ri]
			c.arrive(read)
			c.answer(read, KindShed, -1, false)
		}
		return
	}
	for si := range r.stores {
		c := r.cells[si][ri]
		c.arrive(read)
		if c.inflight.Add(1) > int64(r.cfg.MaxInFlight) {
			c.inflight.Add(-1)
			c.answer(read, KindShed, -1, false)
			continue
		}
		r.ops.Add(1)
		go r.exec(at, si, ri, sku, read)
	}
}

// exec runs one operation and counts its answer.
func (r *Run) exec(at time.Time, si, ri, sku int, read bool) {
	defer r.ops.Done()
	c := r.cells[si][ri]
	defer c.inflight.Add(-1)
	// No deadline of our own: the target has one (the lab's request
	// deadline); r.hard ends everything when the run is aborted. (A timer
	// per operation cost a third of the generator's CPU.)
	ctx := r.hard
	t := r.skus[si]
	g := t.genSold[sku].Load()
	record := r.checked[sku] && r.recordable(si, read)
	var res Result
	if read {
		consistency := r.cfg.Consistency
		if r.stores[si] != "consensus" {
			consistency = "" // the others read their own way (cached is the consensus store's)
		}
		res = r.target.Read(ctx, r.stores[si], r.names[sku], r.regions[ri], consistency, record)
	} else {
		res = r.target.Buy(ctx, r.stores[si], r.names[sku], r.regions[ri], record)
	}
	latency := time.Since(at)
	stale := false
	if read {
		stale = res.Kind == KindOK && t.stale(sku, g, res.Quantity)
	} else if res.Kind == KindOK {
		t.sell(sku, g)
	}
	c.answer(read, res.Kind, latency, stale)
	if !read && res.Stranded {
		c.strand()
	}
}

// recordable decides whether a checked SKU's operation goes to the
// history: every buy (the model needs them all) and up to readRecordPS
// reads a second per store (any subset of reads is still a valid
// history), while the run's budget lasts.
func (r *Run) recordable(si int, read bool) bool {
	if read && r.readToken[si].Add(1) > readRecordPS {
		return false
	}
	return r.record()
}

// record takes one operation from the budget: false once it is spent.
func (r *Run) record() bool {
	n := r.recorded.Add(1)
	if n == recordBudget {
		r.mu.Lock()
		start := r.start
		r.mu.Unlock()
		at := int64(1) // spent while stocking, before the run's clock started
		if !start.IsZero() {
			at = max(1, int64(time.Since(start)))
		}
		r.spentAt.Store(at)
	}
	return n <= recordBudget
}

// restocker sets the doorbuster and the RestockTop hottest SKUs back to
// their stock every RestockEvery.
func (r *Run) restocker(ctx context.Context) {
	t := time.NewTicker(time.Duration(r.cfg.RestockEvery))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		idx := []int{0}
		for i := 1; i <= min(r.cfg.RestockTop, r.cfg.SKUs); i++ {
			idx = append(idx, i)
		}
		var wg sync.WaitGroup
		for si := range r.stores {
			for _, i := range idx {
				wg.Add(1)
				r.ops.Add(1)
				go func() {
					defer wg.Done()
					defer r.ops.Done()
					tab := r.skus[si]
					tab.restocking(i)
					record := r.checked[i] && r.record()
					r.target.Stock(r.hard, r.stores[si], r.names[i], r.writeRegion(), int(tab.level[i]), record)
					tab.restocked(i)
				}()
			}
		}
		wg.Wait()
	}
}

// fault keeps a fault mark.
func (r *Run) fault(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.faults) >= keepFaults {
		return
	}
	t := 0.0
	if !r.start.IsZero() {
		t = math.Round(ev.At.Sub(r.start).Seconds()*100) / 100
	}
	r.faults = append(r.faults, FaultMark{T: t, Kind: ev.Kind, Detail: ev.Detail})
}

// sample cuts one second of every cell and tells the subscriber.
func (r *Run) sample(t float64) {
	for si := range r.stores {
		r.readToken[si].Store(0)
	}
	latest := make([]Sample, 0, len(r.stores)*len(r.regions))
	for si := range r.stores {
		over, _, _ := r.skus[si].oversold()
		for ri := range r.regions {
			s := r.cells[si][ri].cut(t, r.cfg.SLOP99Ms, over)
			latest = append(latest, s)
		}
	}
	r.mu.Lock()
	for _, s := range latest {
		si, ri := slices.Index(r.stores, s.Store), slices.Index(r.regions, s.Region)
		ring := append(r.samples[si][ri], s)
		if len(ring) > keepSamples {
			ring = slices.Delete(ring, 0, len(ring)-keepSamples)
		}
		r.samples[si][ri] = ring
	}
	r.mu.Unlock()
	r.emit(latest...)
}

// emit sends the current status with latest as this second's samples.
func (r *Run) emit(latest ...Sample) {
	st := r.status(false)
	if latest != nil {
		st.Latest = latest
	}
	r.mu.Lock()
	r.lastFrame = &st
	r.mu.Unlock()
	if r.onFrame != nil {
		r.onFrame(st)
	}
}
