package load

import (
	"context"
	"math"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// The lab generates its own load, so it can keep room for its control
// plane — state reads, cuts and heals, the viewers' stream — which shares
// the machine's cores with the load (on a laptop: two). A pacer watches
// how long runnable goroutines wait for a core (the Go scheduler's
// latency, runtime/metrics /sched/latencies:seconds): what a request of
// the control plane would wait too, whether the load or another program
// keeps the cores busy. While the last interval's p99 is above paceTarget
// the pacer lets fewer arrivals through (a token bucket whose rate loses
// a quarter per interval); once it is below, the rate grows back (a tenth
// per interval) until no arrival is held back. An arrival held back is
// shed at the source, for every store alike (the stores still see the
// same arrivals), and counted as "shed" — the machine had no room; it says
// nothing of the store. A load offering at most paceFloor arrivals a
// second is never held back — it cannot be what starves the machine — and
// a limit never goes below paceFloor.
const (
	paceEvery  = 250 * time.Millisecond
	paceTarget = 10 * time.Millisecond // the scheduler's p99 wait the control plane can live with
	paceFloor  = 250.0                 // arrivals a second (all regions) always let through
	paceCut    = 0.75                  // the rate kept per interval over the target
	paceGrow   = 1.1                   // the rate regained per interval under it
)

// pacer is the token bucket in front of a run's arrivals.
type pacer struct {
	limit   atomic.Uint64 // math.Float64bits(arrivals a second); 0: no limit
	passed  atomic.Int64  // arrivals let through since the last adjustment
	held    atomic.Int64  // arrivals held back since the last adjustment
	heldAll atomic.Int64  // arrivals held back in the run

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// admit reports whether an arrival may go now.
func (p *pacer) admit() bool {
	bits := p.limit.Load()
	if bits == 0 {
		p.passed.Add(1)
		return true
	}
	rate := math.Float64frombits(bits)
	p.mu.Lock()
	now := time.Now()
	p.tokens = min(p.tokens+now.Sub(p.last).Seconds()*rate, max(1, rate/10)) // at most 100 ms of burst
	p.last = now
	ok := p.tokens >= 1
	if ok {
		p.tokens--
	}
	p.mu.Unlock()
	if ok {
		p.passed.Add(1)
	} else {
		p.held.Add(1)
		p.heldAll.Add(1)
	}
	return ok
}

// adjust sets the next interval's rate from the scheduler's p99 wait over
// the last one (interval: its length).
func (p *pacer) adjust(p99 time.Duration, interval time.Duration) {
	passed, held := p.passed.Swap(0), p.held.Swap(0)
	rate := math.Float64frombits(p.limit.Load())
	through := float64(passed) / interval.Seconds() // arrivals a second that went
	offered := float64(passed+held) / interval.Seconds()
	switch {
	case offered <= paceFloor:
		rate = 0 // a load this small is not what keeps the cores busy
	case p99 > paceTarget:
		if rate == 0 {
			rate = through // start from what went through
		}
		rate = max(paceFloor, rate*paceCut)
	case rate > 0 && held == 0:
		rate = 0 // nothing waits: no limit
	case rate > 0:
		rate *= paceGrow
		if rate >= offered {
			rate = 0
		}
	}
	if rate > 0 {
		p.mu.Lock()
		if p.limit.Load() == 0 { // a new limit starts with a full bucket
			p.tokens, p.last = max(1, rate/10), time.Now()
		}
		p.mu.Unlock()
		p.limit.Store(math.Float64bits(rate))
	} else {
		p.limit.Store(0)
	}
}

// run adjusts the pacer every paceEvery until ctx ends.
func (p *pacer) run(ctx context.Context) {
	lat := newSchedLatency()
	t := time.NewTicker(paceEvery)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p.adjust(lat.p99(), now.Sub(last))
			last = now
		}
	}
}

// schedLatency reads the Go scheduler's latency histogram and returns the
// p99 of the waits since the previous reading (prev: its counts).
type schedLatency struct {
	sample []metrics.Sample
	prev   []uint64
}

func newSchedLatency() *schedLatency {
	s := &schedLatency{sample: []metrics.Sample{{Name: "/sched/latencies:seconds"}}}
	s.p99() // the first reading is the baseline
	return s
}

func (s *schedLatency) p99() time.Duration {
	metrics.Read(s.sample)
	if s.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0 // not this Go: never hold back
	}
	h := s.sample[0].Value.Float64Histogram()
	delta := make([]uint64, len(h.Counts))
	var total uint64
	for i, c := range h.Counts {
		if i < len(s.prev) {
			delta[i] = c - s.prev[i]
		} else {
			delta[i] = c
		}
		total += delta[i]
	}
	s.prev = append(s.prev[:0], h.Counts...)
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(float64(total) * 0.99))
	var seen uint64
	for i, c := range delta {
		seen += c
		if seen >= want {
			up := h.Buckets[i+1] // the bucket's upper bound
			if math.IsInf(up, 1) {
				up = h.Buckets[i]
			}
			return time.Duration(up * float64(time.Second))
		}
	}
	return 0
}
