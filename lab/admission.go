package lab

import (
	"fmt"
	"sync/atomic"
	"time"
)

// DefaultMaxInFlight is the most requests a region's gateway lets into one
// store at once (the adaptive limit's ceiling).
const DefaultMaxInFlight = 32

// Adaptive limit bounds and start (per region gateway and store).
const (
	minInFlight     = 4
	initialInFlight = 24
)

// admission bounds the requests each region's gateway has in flight per
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
type admission struct {
	ceiling int64
	target  time.Duration
	gates   map[breakerKey]*gateway // fixed at construction
}

// gateway is one region's admission state for one store.
type gateway struct {
	inFlight atomic.Int64
	limit    atomic.Int64
	credit   atomic.Int64 // fast answers since the limit last grew
	cutAt    atomic.Int64 // unix ns of the last decrease
	avgNs    atomic.Int64 // moving average of answers' latency
}

func newAdmission(regions []string, ceiling int, target time.Duration) *admission {
	a := &admission{ceiling: int64(ceiling), target: target, gates: map[breakerKey]*gateway{}}
	for _, r := range regions {
		for _, s := range Stores {
			g := &gateway{}
			g.limit.Store(min(int64(initialInFlight), a.ceiling))
			a.gates[breakerKey{r, s}] = g
		}
	}
	return a
}

// admit takes a slot of (region, store)'s gateway, or returns nil when it
// is at its limit. The caller passes the slot to done.
func (a *admission) admit(region string, store Store) *gateway {
	g, ok := a.gates[breakerKey{region, store}]
	if !ok { // regions are checked before we get here
		return nil
	}
	if g.inFlight.Add(1) > g.limit.Load() {
		g.inFlight.Add(-1)
		return nil
	}
	return g
}

// done frees the slot and adapts the limit to how the request went.
func (a *admission) done(g *gateway, took time.Duration, out Kind) {
	g.inFlight.Add(-1)
	if out == Unavailable && took >= a.target {
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
	if l >= a.ceiling {
		return
	}
	if g.credit.Add(1) >= l && g.limit.CompareAndSwap(l, l+1) {
		g.credit.Store(0)
	}
}

// limits reports the current limit and requests in flight of (region,
// store).
func (a *admission) limits(region string, store Store) (limit, inFlight int) {
	if g, ok := a.gates[breakerKey{region, store}]; ok {
		return int(g.limit.Load()), int(g.inFlight.Load())
	}
	return 0, 0
}

// overloaded is the answer to a request the gateway had no room for.
func (a *admission) overloaded(op Operation) Outcome {
	limit, _ := a.limits(op.Region, op.Store)
	return Outcome{Outcome: Overloaded, AnsweredBy: []string{},
		Message: fmt.Sprintf("Overloaded: %s's gateway already has %d %s requests in flight (its limit now), so this one was not sent — nothing changed; try again in a moment. Shedding the excess keeps the store fast for the requests it takes.",
			cityOf(op.Region), limit, op.Store)}
}
