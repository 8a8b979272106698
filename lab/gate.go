package lab

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// gate lets operations run concurrently and lets Reset and Close wait
// until none is in flight while keeping new ones out. An operation enters
// and leaves with one atomic add each — no lock that every operation
// shares; only while an exclusive holder is in or coming in do operations
// wait (on a channel, honouring their deadline).
type gate struct {
	state atomic.Int64  // operations in flight, + gateExclusive while held exclusively
	excl  chan struct{} // one exclusive holder at a time

	wakeMu sync.Mutex
	wake   chan struct{} // closed when the exclusive holder leaves
}

const gateExclusive = int64(1) << 40

func newGate() *gate {
	return &gate{excl: make(chan struct{}, 1), wake: make(chan struct{})}
}

func (g *gate) wakeChan() chan struct{} {
	g.wakeMu.Lock()
	defer g.wakeMu.Unlock()
	return g.wake
}

// enter admits one operation, waiting while the gate is held exclusively
// until ctx ends.
func (g *gate) enter(ctx context.Context) error {
	for {
		if g.state.Add(1) < gateExclusive {
			return nil
		}
		g.state.Add(-1)
		wake := g.wakeChan()
		if g.state.Load() < gateExclusive {
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// tryEnter admits one operation unless the gate is held exclusively.
func (g *gate) tryEnter() bool {
	if g.state.Add(1) < gateExclusive {
		return true
	}
	g.state.Add(-1)
	return false
}

// leave ends an operation that entered.
func (g *gate) leave() { g.state.Add(-1) }

// lock keeps new operations out and waits until those in flight left, or
// until ctx ends (then the gate is as before).
func (g *gate) lock(ctx context.Context) error {
	select {
	case g.excl <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.wakeMu.Lock()
	g.wake = make(chan struct{}) // before the flag: whoever sees the flag waits on this one
	g.wakeMu.Unlock()
	g.state.Add(gateExclusive)
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for g.state.Load() != gateExclusive {
		select {
		case <-t.C:
		case <-ctx.Done():
			g.unlock()
			return ctx.Err()
		}
	}
	return nil
}

// unlock lets operations in again.
func (g *gate) unlock() {
	g.state.Add(-gateExclusive)
	g.wakeMu.Lock()
	close(g.wake)
	g.wakeMu.Unlock()
	<-g.excl
}
