package lab

import (
	"sync"
	"sync/atomic"
	"time"

	"caplab/lab/check"
	"caplab/lab/history"
	"caplab/lab/inventory"
)

// The counters of State: outcomes per store, counted as each operation
// returns, and oversold units and stale reads, which a goroutine recounts
// from what is new in the History with the checker's rules (check.Tally).

// storeCounts are one store's outcome counters since the last reset. Every
// operation adds to one of them atomically; the counting goroutine sets
// oversold and staleReads.
type storeCounts struct {
	ok, soldOut, unavailable, failFast, conflict, overloaded atomic.Int64
	oversold, staleReads                                     atomic.Int64
}

func (c *storeCounts) snapshot(store inventory.Store) StoreCounter {
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

// storeCounters is every store's counters and the goroutine that keeps
// their oversold and stale-read counts.
type storeCounters struct {
	m       map[inventory.Store]*storeCounts // fixed at construction; the counts are atomic
	version *atomic.Int64                    // the events' version: bumped when a count changes
	history *history.History
	gaps    *history.Gaps
	stop    <-chan struct{}

	tallyMu sync.Mutex     // the recount against a reset
	tally   *check.Tally   // under tallyMu
	cursor  history.Cursor // how far the tally has read the History (under tallyMu)
}

func newStoreCounters(h *history.History, gaps *history.Gaps, version *atomic.Int64, stop <-chan struct{}) *storeCounters {
	c := &storeCounters{m: map[inventory.Store]*storeCounts{}, version: version, history: h, gaps: gaps, stop: stop, tally: check.NewTally()}
	for _, s := range inventory.Stores {
		c.m[s] = &storeCounts{}
	}
	return c
}

// snapshot is every store's counters, in display order.
func (c *storeCounters) snapshot() []StoreCounter {
	out := make([]StoreCounter, 0, len(inventory.Stores))
	for _, store := range inventory.Stores {
		out = append(out, c.m[store].snapshot(store))
	}
	return out
}

// count updates the outcome counters at once; oversold and stale reads
// follow from the counting goroutine.
func (c *storeCounters) count(op inventory.Operation) {
	n := c.m[op.Store]
	switch op.Outcome {
	case inventory.OK:
		n.ok.Add(1)
	case inventory.SoldOut:
		n.soldOut.Add(1)
	case inventory.Unavailable:
		n.unavailable.Add(1)
	case inventory.FailFast:
		n.failFast.Add(1)
	case inventory.Conflict:
		n.conflict.Add(1)
	case inventory.Overloaded:
		n.overloaded.Add(1)
	}
	c.version.Add(1)
}

// reset zeroes the counters and the tally (a reset, with no operation in
// flight).
func (c *storeCounters) reset() {
	c.tallyMu.Lock()
	defer c.tallyMu.Unlock()
	c.tally, c.cursor = check.NewTally(), history.Cursor{}
	for _, n := range c.m {
		n.zero()
	}
	c.version.Add(1)
}

// auditCheckTimeout bounds the tally's linearizability search.
const auditCheckTimeout = 2 * time.Second

// AuditEvery is how often the counting goroutine recounts oversold units
// and stale reads from the history when operations have come in.
const AuditEvery = 200 * time.Millisecond

// run recounts oversold units and stale reads per store with the
// checker's counting rules, at most every AuditEvery, until the lab stops.
// A change shows in the next coalesced state.
func (c *storeCounters) run() {
	t := time.NewTicker(AuditEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.recount()
	}
}

// recount reads the operations recorded since its last look, updates the
// counts of the SKUs they touched, and refreshes the oversold and
// stale-read counters; it reports whether they changed. Its work is
// proportional to what is new (plus, rarely, one SKU's history: a restock
// or an operation returning out of order), never to the whole history.
func (c *storeCounters) recount() bool {
	c.tallyMu.Lock()
	t := c.tally
	ops, cur, fresh := c.history.SinceShared(c.cursor)
	if fresh && c.cursor != (history.Cursor{}) { // a Clear came in between
		t = check.NewTally()
		c.tally = t
	}
	c.cursor = cur
	for _, op := range ops {
		t.Add(op)
	}
	// SKUs whose count says oversold are confirmed by the linearizability
	// search, outside the lock (it may take auditCheckTimeout).
	confirm := t.Settle()
	c.tallyMu.Unlock()

	results := make([]int, len(confirm))
	for i, u := range confirm {
		// Cut at the SKU's recording gaps (read after its operations): a
		// restock the lab left unrecorded must not look like an oversale.
		rec := check.Recorded{Operations: u.Operations, Gaps: c.gaps.Snapshot(u.Store, u.SKU)}
		r := check.Judge(rec, u.Store, u.SKU, auditCheckTimeout)
		results[i] = r.Oversold // after the check: 0 when one order of events explains all
	}

	c.tallyMu.Lock()
	defer c.tallyMu.Unlock()
	if c.tally != t { // a reset happened meanwhile: these counts are stale
		return false
	}
	for i, u := range confirm {
		t.Confirm(u, results[i])
	}
	changed := false
	for _, store := range inventory.Stores {
		oversold, stale := t.Counts(store)
		n := c.m[store]
		if n.oversold.Swap(int64(oversold)) != int64(oversold) {
			changed = true
		}
		if n.staleReads.Swap(int64(stale)) != int64(stale) {
			changed = true
		}
	}
	if changed {
		c.version.Add(1)
	}
	return changed
}
