package lab

import (
	"slices"
	"sync/atomic"
	"time"
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
	l.tally = newTally()
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
	a := l.tally
	ops, cur, fresh := l.history.SinceShared(a.cursor)
	if fresh && a.cursor != (HistoryCursor{}) { // a Clear came in between
		a = newTally()
		l.tally = a
	}
	a.cursor = cur
	for _, op := range ops {
		a.add(op)
	}
	// SKUs whose count says oversold are confirmed by the linearizability
	// search, outside the lock (it may take auditCheckTimeout).
	type pending struct {
		s   *skuTally
		ops []Operation
		n   int
	}
	var confirm []pending
	for s := range a.dirty {
		s.settle()
		// geo: per-region histories, checked by checkGeo; its count stands.
		if s.oversold > 0 && s.checkedAt != len(s.ops) && s.store != Geo {
			confirm = append(confirm, pending{s, derefOps(s.ops), len(s.ops)})
		}
	}
	clear(a.dirty)
	l.tallyMu.Unlock()

	results := make([]int, len(confirm))
	for i, p := range confirm {
		// Cut at the SKU's recording gaps (read after its operations): a
		// restock the lab left unrecorded must not look like an oversale.
		rec := Recorded{Operations: p.ops, Gaps: l.gaps.Snapshot(p.s.store, p.s.sku)}
		r := judge(rec, p.s.store, p.s.sku, auditCheckTimeout, &verdicts{})
		results[i] = r.Oversold // after the check: 0 when one order of events explains all
	}

	l.tallyMu.Lock()
	defer l.tallyMu.Unlock()
	if l.tally != a { // a reset happened meanwhile: these counts are stale
		return false
	}
	for i, p := range confirm {
		p.s.checkedAt, p.s.confirmed = p.n, results[i]
	}
	changed := false
	for _, store := range Stores {
		oversold, stale := 0, 0
		for _, s := range a.skus[store] {
			oversold += s.effectiveOversold()
			stale += s.staleReads
		}
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

// audit is the tally's incremental view of the history: the operations
// per store and SKU, with each SKU's counts kept up to date as operations
// come in.
type tally struct {
	cursor HistoryCursor
	read   int // operations read from the history (work done, for tests)
	skus   map[Store]map[string]*skuTally
	dirty  map[*skuTally]struct{} // touched since the last recount
}

func newTally() *tally {
	return &tally{skus: map[Store]map[string]*skuTally{}, dirty: map[*skuTally]struct{}{}}
}

func (a *tally) add(op *Operation) {
	a.read++
	m := a.skus[op.Store]
	if m == nil {
		m = map[string]*skuTally{}
		a.skus[op.Store] = m
	}
	s := m[op.SKU]
	if s == nil {
		s = &skuTally{store: op.Store, sku: op.SKU, restock: -1}
		m[op.SKU] = s
	}
	s.add(op)
	a.dirty[s] = struct{}{}
}

// skuTally counts one store's SKU by the rules of countWindow (see Check),
// incrementally: an operation that cannot change what was already counted
// is added in O(log n); one that can (an ok stock, which may move the
// window, or a write that returned before something already counted) marks
// the SKU for a recount from its operations at the next settle.
type skuTally struct {
	store Store
	sku   string
	// ops point into the History's slots, which never change once
	// written: the counting goroutine holds 8 bytes per operation, not a copy of it.
	ops []*Operation // in history order

	stale bool // a recount is due

	restock       int // index in ops of the window's stock; -1 when none
	sold          int
	bases         map[Version]int
	staleReads    int
	oversold      int
	writes        []*Operation // ok buys and stocks, by return time
	newestBy      []Version    // newestBy[i]: max Version of writes[:i+1]
	lastReadCall  time.Time    // latest call of a read counted
	checkedAt     int          // len(ops) when the oversold count was last confirmed
	confirmed     int          // oversold after that confirmation
	indeterminate int
}

func (s *skuTally) add(op *Operation) {
	s.ops = append(s.ops, op)
	if s.stale {
		return
	}
	isWrite := op.Outcome == OK && (op.Op == OpBuy || op.Op == OpStock)
	switch {
	case op.Op == OpStock && op.Outcome == OK:
		s.stale = true // it may start a new window
		return
	case isWrite && len(s.writes) > 0 && op.Return.Before(s.writes[len(s.writes)-1].Return),
		isWrite && op.Return.Before(s.lastReadCall):
		s.stale = true // out of order: reads already judged may change
		return
	}
	s.apply(op, len(s.ops)-1)
}

// apply counts op (at index i of ops), whose write, if any, returned after
// every write already counted.
func (s *skuTally) apply(op *Operation, i int) {
	if op.Outcome == OK && (op.Op == OpBuy || op.Op == OpStock) {
		v := op.Version
		if n := len(s.newestBy); n > 0 && v.Less(s.newestBy[n-1]) {
			v = s.newestBy[n-1]
		}
		s.writes = append(s.writes, op)
		s.newestBy = append(s.newestBy, v)
	}
	s.count(op, i)
}

// settle recounts the SKU if due and updates oversold.
func (s *skuTally) settle() {
	if s.stale {
		s.stale = false
		s.restock = -1
		for i, op := range s.ops {
			if op.Op == OpStock && op.Outcome == OK && (s.restock < 0 || !op.Call.Before(s.ops[s.restock].Call)) {
				s.restock = i
			}
		}
		s.sold, s.staleReads, s.indeterminate = 0, 0, 0
		s.bases = nil
		s.lastReadCall = time.Time{}
		// Writes by return time first (reads are judged against all of
		// them), then the window's counts in history order.
		s.writes = s.writes[:0]
		for _, op := range s.ops {
			if op.Outcome == OK && (op.Op == OpBuy || op.Op == OpStock) {
				s.writes = append(s.writes, op)
			}
		}
		slices.SortStableFunc(s.writes, func(a, b *Operation) int { return a.Return.Compare(b.Return) })
		s.newestBy = s.newestBy[:0]
		for i, w := range s.writes {
			v := w.Version
			if i > 0 && v.Less(s.newestBy[i-1]) {
				v = s.newestBy[i-1]
			}
			s.newestBy = append(s.newestBy, v)
		}
		for i, op := range s.ops {
			s.count(op, i)
		}
	}
	left := 0
	if s.restock >= 0 {
		left = s.ops[s.restock].Qty
	}
	s.oversold = max(0, s.sold-left)
}

// count adds op (at index i of ops) to the window's counts; the writes it
// is judged against are in place.
func (s *skuTally) count(op *Operation, i int) {
	if s.restock >= 0 && (i == s.restock || !op.Call.After(s.ops[s.restock].Return)) {
		return // not in the window
	}
	switch {
	case op.Op == OpBuy && op.Outcome == OK:
		s.sold += op.Qty
		if !op.BaseVersion.IsZero() {
			if s.bases == nil {
				s.bases = map[Version]int{}
			}
			s.bases[op.BaseVersion]++
		}
	case (op.Op == OpBuy || op.Op == OpStock) && op.Outcome == Unavailable:
		s.indeterminate++
	case op.Op == OpRead && op.Outcome == OK:
		n, _ := slices.BinarySearchFunc(s.writes, op.Call, func(w *Operation, t time.Time) int {
			if w.Return.Before(t) {
				return -1
			}
			return 1
		})
		if n > 0 && op.Version.Less(s.newestBy[n-1]) {
			s.staleReads++
		}
		if op.Call.After(s.lastReadCall) {
			s.lastReadCall = op.Call
		}
	}
}

// effectiveOversold is the oversold count the counters show: the counted
// one, unless the linearizability search has since cleared it.
func (s *skuTally) effectiveOversold() int {
	if s.oversold > 0 && s.checkedAt == len(s.ops) {
		return s.confirmed
	}
	return s.oversold
}

// derefOps copies the operations ops point to.
func derefOps(ops []*Operation) []Operation {
	out := make([]Operation, len(ops))
	for i, op := range ops {
		out[i] = *op
	}
	return out
}
