package guard

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"caplab/lab/inventory"
)

// DefaultMaxInFlight is the most requests a region's gateway lets into one
// store at once (the adaptive limit's ceiling).
const DefaultMaxInFlight = 32

// Adaptive limit bounds and start (per region gateway and store).
const (
	minInFlight     = 4
	initialInFlight = 24
)

// Admission bounds the requests each region's gateway has in flight per
// store, with a limit that adapts to latency (additive increase,
// multiplicative decrease, in the spirit of Netflix's concurrency-limits).
// The gateway keeps a moving average of its answers' latency (weight 1/16
// for the newest): while it is under the latency target, every limit's
// worth of answers lets the limit grow by one, up to the ceiling; while it
// is over, the limit loses a tenth, at most once per target interval, down
// to minInFlight. One slow answer does not cut it; a queue building up
// does. The target is a quarter of the request deadline, so admitted
// requests finish well within it and the breakers never see a queue's
// timeouts.
//
// A request past the limit is answered at once with outcome overloaded:
// it reaches no store and no breaker. Admitting and finishing take a few
// atomic operations on the (region, store) gateway — no lock.
type Admission struct {
	target time.Duration
	gates  map[gatewayKey]*Slot // fixed at construction
	place  func(region string) string
}

// gatewayKey names one region's gateway to one store.
type gatewayKey struct {
	region string
	store  inventory.Store
}

// Slot is one region's gateway to one store: Admit hands it out as a
// request's slot, Done gives the slot back.
type Slot struct {
	inFlight atomic.Int64
	ceiling  atomic.Int64 // the limit's ceiling (SetCeiling)
	limit    atomic.Int64
	credit   atomic.Int64 // fast answers since the limit last grew
	cutAt    atomic.Int64 // unix ns of the last decrease
	avgNs    atomic.Int64 // moving average of answers' latency
}

// NewAdmission returns the gateways of regions to every store, each with
// the limit's ceiling and latency target given; place names a region for
// a person in an overloaded answer ("Singapore (ap-southeast-1)").
func NewAdmission(regions []string, ceiling int, target time.Duration, place func(region string) string) *Admission {
	a := &Admission{target: target, gates: map[gatewayKey]*Slot{}, place: place}
	for _, r := range regions {
		for _, s := range inventory.Stores {
			g := &Slot{}
			g.ceiling.Store(int64(ceiling))
			g.limit.Store(min(int64(initialInFlight), int64(ceiling)))
			a.gates[gatewayKey{r, s}] = g
		}
	}
	return a
}

// Admit takes a slot of (region, store)'s gateway, or returns nil when it
// is at its limit (or the region is not one of the gateways'). The caller
// passes the slot to Done.
func (a *Admission) Admit(region string, store inventory.Store) *Slot {
	g, ok := a.gates[gatewayKey{region, store}]
	if !ok { // regions are checked before we get here
		return nil
	}
	if g.inFlight.Add(1) > g.limit.Load() {
		g.inFlight.Add(-1)
		return nil
	}
	return g
}

// Done frees the slot and adapts the limit to how the request went.
func (a *Admission) Done(g *Slot, took time.Duration, out inventory.Kind) {
	g.inFlight.Add(-1)
	if out == inventory.Unavailable && took >= a.target {
		took = max(took, 4*a.target) // a timeout weighs like a long queue
	}
	var avg int64
	for {
		old := g.avgNs.Load()
		avg = old + (int64(took)-old)/16
		if old == 0 {
			avg = int64(took)
		}
		if g.avgNs.CompareAndSwap(old, avg) {
			break
		}
	}
	if avg > int64(a.target) {
		now := time.Now().UnixNano()
		last := g.cutAt.Load()
		if now-last < int64(a.target) || !g.cutAt.CompareAndSwap(last, now) {
			return // one cut per target interval
		}
		for {
			l := g.limit.Load()
			n := max(minInFlight, min(l-1, l*9/10))
			if g.limit.CompareAndSwap(l, n) {
				break
			}
		}
		g.credit.Store(0)
		return
	}
	l := g.limit.Load()
	if l >= g.ceiling.Load() {
		return
	}
	if g.credit.Add(1) >= l && g.limit.CompareAndSwap(l, l+1) {
		g.credit.Store(0)
	}
}

// SetCeiling sets the ceiling of every region's gateway to store (the
// limit then grows to it, or is cut to it at once). The consensus store
// with group commit on takes more: its queued buys go many to a Txn.
func (a *Admission) SetCeiling(store inventory.Store, ceiling int) {
	for k, g := range a.gates {
		if k.store != store {
			continue
		}
		g.ceiling.Store(int64(ceiling))
		for {
			l := g.limit.Load()
			if l <= int64(ceiling) || g.limit.CompareAndSwap(l, int64(ceiling)) {
				break
			}
		}
	}
}

// Limits reports the current limit and requests in flight of (region,
// store).
func (a *Admission) Limits(region string, store inventory.Store) (limit, inFlight int) {
	if g, ok := a.gates[gatewayKey{region, store}]; ok {
		return int(g.limit.Load()), int(g.inFlight.Load())
	}
	return 0, 0
}

// Overloaded is the answer to a request the gateway had no room for.
func (a *Admission) Overloaded(op inventory.Operation) inventory.Outcome {
	limit, _ := a.Limits(op.Region, op.Store)
	return inventory.Outcome{Outcome: inventory.Overloaded, AnsweredBy: []string{},
		Message: fmt.Sprintf("Overloaded: %s's gateway already has %d %s requests in flight (its limit now), so this one was not sent — nothing changed; try again in a moment. Shedding the excess keeps the store fast for the requests it takes.",
			a.place(op.Region), limit, op.Store)}
}

// Hold fills (region, store)'s gateway as requests in flight at its limit
// would, until release is called: what tests use to see overloaded
// answers without a queue.
func (a *Admission) Hold(region string, store inventory.Store) (release func()) {
	g, ok := a.gates[gatewayKey{region, store}]
	if !ok {
		return func() {}
	}
	n := g.limit.Load()
	g.inFlight.Add(n)
	var once sync.Once
	return func() { once.Do(func() { g.inFlight.Add(-n) }) }
}
