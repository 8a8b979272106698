package nodes

import "fmt"

// The network's speed: a presenter makes every link faster than the lab
// started with (for a demo) and back, live. Raft's timers were derived
// from the start's latency scale (DeriveTiming), so a link may get faster
// than that, never slower: a factor of at most 1.

// SetSpeed makes every link's one-way delay factor × what its round trip
// and the latency scale give (0 < factor ≤ 1; 1 is the start). Later
// latency changes keep the factor.
func (f *Fabric) SetSpeed(factor float64) error {
	if !(factor > 0 && factor <= 1) { // also catches NaN
		return fmt.Errorf("nodes: set speed: %w: the speed factor must be more than 0 and at most 1 (got %v): Raft's timers were set for the start's delays, so links can only get faster", ErrBadOperation, factor)
	}
	f.mu.Lock()
	f.speed = factor
	for _, l := range f.links {
		l.mu.Lock()
		rtt := l.rttMs
		l.mu.Unlock()
		l.setRTT(rtt, f.effectiveScale())
	}
	f.mu.Unlock()
	f.changed()
	return nil
}

// Speed is the factor SetSpeed set (1 at the start).
func (f *Fabric) Speed() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.speed == 0 {
		return 1
	}
	return f.speed
}

// effectiveScale is the latency scale times the speed factor. Hold f.mu.
func (f *Fabric) effectiveScale() float64 {
	if f.speed == 0 {
		return f.scale
	}
	return f.scale * f.speed
}
