package lab

import (
	"sync/atomic"
	"time"

	"caplab/lab/check"
)

// storeCounts are one store's outcome counters since the last reset. Every
// operation adds to one of them atomically; the counting goroutine sets oversold and
// staleReads.
type storeCounts struct {
	ok, soldOut, unavailable, failFast, conflict, overloaded atomic.Int64
	oversold, staleReads                                     atomic.Int64
}

func (c *storeCounts) snapshot(store Store) StoreCounter {
	return StoreCounter{
		Store: store, OK: int(c.ok.Load()), SoldOut: int(c.soldOut.Load()),
		Unavailable: int(c.unavailable.Load()), FailFast: int(c.failFast.Load()),
		Conflict: int(c.conflict.Load()), Overloaded: int(c.overloaded.Load()),
		Oversold: int(c.oversold.Load()), StaleReads: int(c.staleReads.Load()),
	}
}

func (c *storeCounts) zero() {
	for _, n := range []*atomic.Int64{&c.ok, &c.soldOut, &c.unavailable, &c.failFast, &c.conflict, &c.overloaded, &c.oversold, &c.staleReads} {
		n.Store(0)
	}
}

// count updates the outcome counters at once; oversold and stale reads
// follow from the counting goroutine.
func (l *Lab) count(op Operation) {
	c := l.counters[op.Store]
	switch op.Outcome {
	case OK:
		c.ok.Add(1)
	case SoldOut:
		c.soldOut.Add(1)
	case Unavailable:
		c.unavailable.Add(1)
	case FailFast:
		c.failFast.Add(1)
	case Conflict:
		c.conflict.Add(1)
	case Overloaded:
		c.overloaded.Add(1)
	}
	l.version.Add(1)
}

// resetCounters zeroes the counters and the tally's state (Reset, with
// no operation in flight).
func (l *Lab) resetCounters() {
	l.tallyMu.Lock()
	defer l.tallyMu.Unlock()
	l.tally, l.tallyCursor = check.NewTally(), HistoryCursor{}
	for _, c := range l.counters {
		c.zero()
	}
	l.version.Add(1)
}

// auditCheckTimeout bounds the tally's linearizability search.
const auditCheckTimeout = 2 * time.Second

// AuditEvery is how often the counting goroutine recounts oversold units and stale
// reads from the history when operations have come in.
const AuditEvery = 200 * time.Millisecond

// counting recounts oversold units and stale reads per store with the
// checker's counting rules, at most every AuditEvery. A change shows in
// the next coalesced state.
func (l *Lab) counting() {
	t := time.NewTicker(AuditEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.recount()
	}
}

// recount reads the operations recorded since its last look, updates the
// counts of the SKUs they touched, and refreshes the oversold and
// stale-read counters; it reports whether they changed. Its work is
// proportional to what is new (plus, rarely, one SKU's history: a restock
// or an operation returning out of order), never to the whole history.
func (l *Lab) recount() bool {
	l.tallyMu.Lock()
	t := l.tally
	ops, cur, fresh := l.history.SinceShared(l.tallyCursor)
	if fresh && l.tallyCursor != (HistoryCursor{}) { // a Clear came in between
		t = check.NewTally()
		l.tally = t
	}
	l.tallyCursor = cur
	for _, op := range ops {
		t.Add(op)
	}
	// SKUs whose count says oversold are confirmed by the linearizability
	// search, outside the lock (it may take auditCheckTimeout).
	confirm := t.Settle()
	l.tallyMu.Unlock()

	results := make([]int, len(confirm))
	for i, u := range confirm {
		// Cut at the SKU's recording gaps (read after its operations): a
		// restock the lab left unrecorded must not look like an oversale.
		rec := check.Recorded{Operations: u.Operations, Gaps: l.gaps.Snapshot(u.Store, u.SKU)}
		r := check.Judge(rec, u.Store, u.SKU, auditCheckTimeout)
		results[i] = r.Oversold // after the check: 0 when one order of events explains all
	}

	l.tallyMu.Lock()
	defer l.tallyMu.Unlock()
	if l.tally != t { // a reset happened meanwhile: these counts are stale
		return false
	}
	for i, u := range confirm {
		t.Confirm(u, results[i])
	}
	changed := false
	for _, store := range Stores {
		oversold, stale := t.Counts(store)
		c := l.counters[store]
		if c.oversold.Swap(int64(oversold)) != int64(oversold) {
			changed = true
		}
		if c.staleReads.Swap(int64(stale)) != int64(stale) {
			changed = true
		}
	}
	if changed {
		l.version.Add(1)
	}
	return changed
}
