package guard

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"caplab/lab/inventory"
)

// Gate lets operations run concurrently and lets a reset or Close wait
// until none is in flight while keeping new ones out. An operation enters
// and leaves with one atomic add each — no lock that every operation
// shares; only while an exclusive holder is in or coming in do operations
// wait (on a channel, honouring their deadline). Once closed it admits
// nothing. Safe for concurrent use.
type Gate struct {
	state  atomic.Int64  // operations in flight, + gateExclusive while held exclusively
	excl   chan struct{} // one exclusive holder at a time
	closed atomic.Bool

	wakeMu sync.Mutex
	wake   chan struct{} // closed when the exclusive holder leaves
}

const gateExclusive = int64(1) << 40

// NewGate returns an open Gate with nothing in flight.
func NewGate() *Gate {
	return &Gate{excl: make(chan struct{}, 1), wake: make(chan struct{})}
}

func (g *Gate) wakeChan() chan struct{} {
	g.wakeMu.Lock()
	defer g.wakeMu.Unlock()
	return g.wake
}

// Enter admits one operation, waiting while the gate is held exclusively
// until ctx ends.
func (g *Gate) Enter(ctx context.Context) error {
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

// TryEnter admits one operation unless the gate is held exclusively.
func (g *Gate) TryEnter() bool {
	if g.state.Add(1) < gateExclusive {
		return true
	}
	g.state.Add(-1)
	return false
}

// Leave ends an operation that entered.
func (g *Gate) Leave() { g.state.Add(-1) }

// Lock keeps new operations out and waits until those in flight left, or
// until ctx ends (then the gate is as before).
func (g *Gate) Lock(ctx context.Context) error {
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
			g.Unlock()
			return ctx.Err()
		}
	}
	return nil
}

// Unlock lets operations in again.
func (g *Gate) Unlock() {
	g.state.Add(-gateExclusive)
	g.wakeMu.Lock()
	close(g.wake)
	g.wakeMu.Unlock()
	<-g.excl
}

// Close makes every later EnterWithin fail with ErrClosed (operations in
// flight are not stopped). Safe to call twice.
func (g *Gate) Close() { g.closed.Store(true) }

// Closed reports whether Close was called.
func (g *Gate) Closed() bool { return g.closed.Load() }

// EnterWithin admits one operation, waiting at most d for an exclusive
// holder (a reset) to leave: it fails with inventory.ErrUnavailable ("the
// lab is being reset") when the wait runs out, and with
// inventory.ErrClosed once the gate is closed.
func (g *Gate) EnterWithin(ctx context.Context, d time.Duration) error {
	if g.closed.Load() {
		return inventory.ErrClosed
	}
	if !g.TryEnter() {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		if err := g.Enter(ctx); err != nil {
			return fmt.Errorf("%w: the lab is being reset", inventory.ErrUnavailable)
		}
	}
	if g.closed.Load() {
		g.Leave()
		return inventory.ErrClosed
	}
	return nil
}
