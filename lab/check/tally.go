package check

import (
	"slices"
	"time"

	"caplab/lab/inventory"
)

// Tally is the counting rules of the checker applied incrementally: the
// operations per store and SKU, with each SKU's sold, oversold, stale-read
// and indeterminate counts kept up to date as operations come in (the
// lab's counters follow it). A SKU whose count says oversold is confirmed
// by the linearizability search (Settle hands those out, Confirm takes the
// answer), since a count alone cannot tell an oversale from a history one
// order of events explains. Not safe for concurrent use.
type Tally struct {
	read  int // operations read (work done, for tests)
	skus  map[inventory.Store]map[string]*skuTally
	dirty map[*skuTally]struct{} // touched since the last Settle
}

// NewTally returns an empty Tally.
func NewTally() *Tally {
	return &Tally{skus: map[inventory.Store]map[string]*skuTally{}, dirty: map[*skuTally]struct{}{}}
}

// Read is how many operations t has been handed.
func (t *Tally) Read() int { return t.read }

// Add counts op. op points into the History's slots, which never change
// once written: t holds 8 bytes per operation, not a copy of it.
func (t *Tally) Add(op *inventory.Operation) {
	t.read++
	m := t.skus[op.Store]
	if m == nil {
		m = map[string]*skuTally{}
		t.skus[op.Store] = m
	}
	s := m[op.SKU]
	if s == nil {
		s = &skuTally{store: op.Store, sku: op.SKU, restock: -1}
		m[op.SKU] = s
	}
	s.add(op)
	t.dirty[s] = struct{}{}
}

// Unconfirmed is one SKU whose count says oversold and whose operations
// the linearizability search has not judged yet.
type Unconfirmed struct {
	Store      inventory.Store
	SKU        string
	Operations []inventory.Operation // a copy, in history order
	s          *skuTally
	n          int
}

// Settle brings every SKU touched since the last Settle up to date and
// returns those whose oversold count needs confirming (the geo store's
// counts stand: its verdict is per region).
func (t *Tally) Settle() []Unconfirmed {
	var out []Unconfirmed
	for s := range t.dirty {
		s.settle()
		if s.oversold > 0 && s.checkedAt != len(s.ops) && s.store != inventory.Geo {
			out = append(out, Unconfirmed{Store: s.store, SKU: s.sku, Operations: derefOps(s.ops), s: s, n: len(s.ops)})
		}
	}
	clear(t.dirty)
	return out
}

// Confirm records the search's oversold count for u (0 when one order of
// events explains every answer).
func (t *Tally) Confirm(u Unconfirmed, oversold int) { u.s.checkedAt, u.s.confirmed = u.n, oversold }

// Counts is store's oversold units and stale reads, over every SKU.
func (t *Tally) Counts(store inventory.Store) (oversold, staleReads int) {
	for _, s := range t.skus[store] {
		oversold += s.effectiveOversold()
		staleReads += s.staleReads
	}
	return oversold, staleReads
}

// skuTally counts one store's SKU by the rules of countWindow (see Operations),
// incrementally: an operation that cannot change what was already counted
// is added in O(log n); one that can (an ok stock, which may move the
// window, or a write that returned before something already counted) marks
// the SKU for a recount from its operations at the next settle.
type skuTally struct {
	store inventory.Store
	sku   string
	// ops point into the History's slots, which never change once
	// written: the counting goroutine holds 8 bytes per operation, not a copy of it.
	ops []*inventory.Operation // in history order

	stale bool // a recount is due

	restock       int // index in ops of the window's stock; -1 when none
	sold          int
	bases         map[inventory.Version]int
	staleReads    int
	oversold      int
	writes        []*inventory.Operation // ok buys and stocks, by return time
	newestBy      []inventory.Version    // newestBy[i]: max Version of writes[:i+1]
	lastReadCall  time.Time              // latest call of a read counted
	checkedAt     int                    // len(ops) when the oversold count was last confirmed
	confirmed     int                    // oversold after that confirmation
	indeterminate int
}

func (s *skuTally) add(op *inventory.Operation) {
	s.ops = append(s.ops, op)
	if s.stale {
		return
	}
	isWrite := op.Outcome == inventory.OK && (op.Op == inventory.OpBuy || op.Op == inventory.OpStock)
	switch {
	case op.Op == inventory.OpStock && op.Outcome == inventory.OK:
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
func (s *skuTally) apply(op *inventory.Operation, i int) {
	if op.Outcome == inventory.OK && (op.Op == inventory.OpBuy || op.Op == inventory.OpStock) {
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
			if op.Op == inventory.OpStock && op.Outcome == inventory.OK && (s.restock < 0 || !op.Call.Before(s.ops[s.restock].Call)) {
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
			if op.Outcome == inventory.OK && (op.Op == inventory.OpBuy || op.Op == inventory.OpStock) {
				s.writes = append(s.writes, op)
			}
		}
		slices.SortStableFunc(s.writes, func(a, b *inventory.Operation) int { return a.Return.Compare(b.Return) })
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
func (s *skuTally) count(op *inventory.Operation, i int) {
	if s.restock >= 0 && (i == s.restock || !op.Call.After(s.ops[s.restock].Return)) {
		return // not in the window
	}
	switch {
	case op.Op == inventory.OpBuy && op.Outcome == inventory.OK:
		s.sold += op.Qty
		if !op.BaseVersion.IsZero() {
			if s.bases == nil {
				s.bases = map[inventory.Version]int{}
			}
			s.bases[op.BaseVersion]++
		}
	case (op.Op == inventory.OpBuy || op.Op == inventory.OpStock) && op.Outcome == inventory.Unavailable:
		s.indeterminate++
	case op.Op == inventory.OpRead && op.Outcome == inventory.OK:
		n, _ := slices.BinarySearchFunc(s.writes, op.Call, func(w *inventory.Operation, t time.Time) int {
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
func derefOps(ops []*inventory.Operation) []inventory.Operation {
	out := make([]inventory.Operation, len(ops))
	for i, op := range ops {
		out[i] = *op
	}
	return out
}
