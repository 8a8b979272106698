package lab

import (
	"context"
	"fmt"
	"time"

	"caplab/lab/inventory"
	"caplab/nodes"
)

// ---- the consensus leader, reset and convergence ----

// Leader is the region that leads the consensus group, or "".
func (l *Lab) Leader() string { return l.cluster.Leader() }

// WaitLeader waits until a majority agrees on a leader.
func (l *Lab) WaitLeader(ctx context.Context) error {
	_, err := l.cluster.WaitLeader(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", inventory.ErrUnavailable, err)
	}
	return nil
}

// Reset makes the lab fresh: every link up at its model latency, crashed
// regions restarted, every store emptied, quorum back to W=1 R=1, breakers
// closed, history and counters cleared.
func (l *Lab) Reset(ctx context.Context) error {
	if l.gate.Closed() {
		return inventory.ErrClosed
	}
	l.time.pauses.clear() // frozen shops wake, so that the reset need not wait for them
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := l.gate.Lock(wctx)
	cancel()
	if err != nil {
		return fmt.Errorf("%w: reset: operations in flight did not finish: %v", inventory.ErrUnavailable, err)
	}
	defer l.gate.Unlock()
	if l.gate.Closed() {
		return inventory.ErrClosed
	}
	// Whatever part of the reset happens, the epochs it reached are where a
	// lab resumed on this data must look.
	defer func() { _ = saveEpochs(l.cluster, l.consensus, l.replicated, l.geo) }()
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
		return fmt.Errorf("%w: reset: %v", inventory.ErrUnavailable, err)
	}
	l.faults.awaitStreams()
	if err := l.consensus.Clear(ctx); err != nil {
		return fmt.Errorf("%w: reset: %v", inventory.ErrUnavailable, err)
	}
	if err := l.replicated.Clear(ctx); err != nil { // W=1 R=1 again
		return fmt.Errorf("%w: reset: %v", inventory.ErrUnavailable, err)
	}
	if err := l.faults.resetZones(ctx); err != nil {
		return fmt.Errorf("%w: reset: %v", inventory.ErrUnavailable, err)
	}
	if err := l.geo.Clear(ctx); err != nil {
		return fmt.Errorf("%w: reset: %v", inventory.ErrUnavailable, err)
	}
	l.breakers.Reset()
	l.history.Clear()
	l.gaps.Clear()
	l.time.clocks.Reset()
	l.recorder.start(true, l.replicated.Quorum())
	l.verdicts.Clear()
	l.counters.reset()
	l.history.SetStart(NetOf(l.State(), nil)) // the network the History starts with (replay.go)
	l.events.publishNew(Event{Type: EventReset, FirstOpID: l.history.NextID()})
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
		ok, err := l.replicated.Converged(ctx)
		if err == nil && ok && l.cluster.CaughtUp() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: replicas did not converge: %v", inventory.ErrUnavailable, ctx.Err())
		case <-t.C:
		}
	}
}
