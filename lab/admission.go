package lab

import (
	"fmt"
	"sync/atomic"
	"time"
)

// DefaultMaxInFlight is the most requests a region's gateway lets into one
// store at once (the adaptive limit's ceiling).
const DefaultMaxInFlight = 64

// Adaptive limit bounds and start (per region gateway and store).
const (
	minInFlight     = 4
	initialInFlight = 24
)

// admission bounds the requests each region's gateway has in flight per
// store, with a limit that adapts to latency (additive increase,
// multiplicative decrease, in the spirit of Netflix's concurrency-limits):
// each request answered within the latency target lets the limit grow by
// one per limit's worth of them, up to the ceiling; a request slower than
// the target — or one that ran into the deadline — cuts it by a tenth, at
// most once per target interval, down to minInFlight, but only while the
// gateway is busy: at least half its limit in flight when the request
// ends. The target is a quarter of the request deadline, so admitted
// requests finish well within it and the breakers never see a queue's
// timeouts.
//
// Why busy: a slow answer while the gateway holds a few requests says the
// slowness came from elsewhere — a machine busy with other work, a
// garbage-collector pause — not from the requests this gateway let in, and
// cutting then only sheds load the lab could carry (on a loaded 2-core
// machine, one slow answer every quarter deadline walked a gateway serving
// 30 buys a second down to a limit it then shed against). A gateway whose
// requests wait out a partition fills up within one deadline and is cut
// as before. Each (region, store) gateway adapts on its own: a cut-off
// region's slow requests never shrink another region's limit.
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
	busy := 2*g.inFlight.Add(-1)+2 >= g.limit.Load() // this one included
	if took > a.target || (out == Unavailable && took >= a.target) {
		if !busy {
			return // slow, but not from what this gateway let in
		}
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
