package lab

import (
	"context"
	"sync"

	"caplab/lab/inventory"
	"caplab/lab/store"
)

// Reserve is the lock-based "reserve and sell" flow of one shop in region:
// take the SKU's etcd lock (a session with a lease, concurrency.Mutex),
// read the consensus store's stock, write the sale with a plain put — the
// storage trusts the lock — and unlock. Fenced, the write carries the
// lock's revision as a fencing token and the storage (an etcd Txn
// comparing it with the newest token it has seen) refuses an older one.
// The sale is recorded as a buy of 1 on the consensus store, so the
// checker judges it. A paused shop freezes between the read and the write
// and lets its lease lapse; see ReserveAsync.
func (l *Lab) Reserve(ctx context.Context, sku, region string, fenced bool) (inventory.Outcome, error) {
	ch, err := l.ReserveAsync(ctx, sku, region, fenced)
	if err != nil {
		return inventory.Outcome{}, err
	}
	select {
	case o := <-ch:
		return o, nil
	case <-l.stop:
		return inventory.Outcome{}, inventory.ErrClosed
	}
}

// ReserveAsync starts a reservation and returns once it has finished or
// frozen in a pause holding (it believes) the lock; the channel delivers
// the outcome when it is done. Close waits for it.
//
// A reservation is an operation like any other and takes the one command
// path (do): it passes admission and the (region, store) breaker of the
// consensus store — an open breaker fails it fast, a full gateway answers
// it overloaded, and its unavailable answers count toward opening the
// breaker (a half-open breaker's one trial call may be a reservation, and
// while it waits for the lock or sits frozen, that region's other
// consensus requests fail fast) — and it is recorded like a buy: in the
// History, or, left out (WithOpRecording, the History's cap), as a gap and
// in the ledger of the lab's own unrecorded writes. Its store call has a
// deadline long enough for the lock wait and the longest pause
// (reserveBudget).
func (l *Lab) ReserveAsync(ctx context.Context, sku, region string, fenced bool) (<-chan inventory.Outcome, error) {
	if err := checkOp(l.regions, inventory.Consensus, sku, region); err != nil {
		return nil, err
	}
	// The gate is entered here, before bg.Add: that orders bg.Add before
	// Close's bg.Wait. do must then not enter again (a nested enter behind
	// a reset's Lock would wait the reset out).
	if err := l.gate.EnterWithin(ctx, l.cfg.RequestTimeout); err != nil {
		return nil, err
	}
	done := make(chan inventory.Outcome, 1)
	frozen := make(chan struct{})
	var once sync.Once
	freeze := func() { once.Do(func() { close(frozen) }) }
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		defer l.gate.Leave()
		defer freeze()
		out, _ := l.do(context.WithoutCancel(ctx), command{
			op:      inventory.Operation{Store: inventory.Consensus, SKU: sku, Region: region, Op: inventory.OpBuy, Qty: 1},
			entered: true, freezes: true, action: ActReserve, fenced: fenced, budget: l.reserveBudget,
			run: func(ctx context.Context, op inventory.Operation, _ store.Env) inventory.Outcome {
				return l.consensus.Reserve(ctx, op, fenced, shopPauses{&l.time.pauses, l.stop}, freeze)
			},
		})
		done <- out
	}()
	select {
	case <-frozen:
	case <-l.stop:
	}
	return done, nil
}
