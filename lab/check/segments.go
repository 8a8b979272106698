package check

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"caplab/lab/inventory"
)

// The verdict behind GET /api/check and the page's verdict panel is kept
// fast on long histories by checking one SKU's history in segments cut at
// restocks, and by remembering each segment's verdict.
//
// A restock S (a stock answered ok) is a clean cut when no other operation
// that returned overlaps it: every one returned before S was called or was
// called after S returned. An operation answered unavailable belongs to
// the segment of the last restock that returned before it was called (one
// called while a restock ran belongs before that restock). Then:
//
//   - every segment linearizable on its own ⇒ the whole history is: join
//     the segments' orders of events at their restocks (S sets the count
//     absolutely, so what came before is forgotten); each
//     operation answered unavailable stays where its segment put it —
//     after everything it must follow, and what it did is overwritten by
//     the next restock;
//   - a segment not linearizable while no earlier segment holds an
//     unavailable operation ⇒ the whole history is not (that segment, with
//     its restock first, is exactly the whole history's order restricted
//     to it);
//   - otherwise (an earlier unavailable write might have landed late and
//     explain it) the whole history is checked at once, as before.
//
// Segments that no longer change (everything after a later restock) are
// judged once: their verdicts are remembered by the operations they hold
// (Memo).

// segmentKey names one segment's content.
type segmentKey struct {
	store       inventory.Store
	sku         string
	first, last int // operation IDs
	n           int
	ids         uint64 // a hash of every operation ID in it
}

// Memo remembers the verdicts of segments that no longer change, so that a
// long history is judged in the time its newest segment takes. The lab
// keeps one and clears it at a reset; the zero Memo is empty and ready.
// Safe for concurrent use.
type Memo struct {
	mu sync.Mutex
	m  map[segmentKey]segmentVerdict
}

// segmentVerdict is one segment's verdict and, when it failed, the
// answer the search could not place.
type segmentVerdict struct {
	ok       bool
	unplaced *Unplaced
}

const maxRememberedVerdicts = 10_000

func (v *Memo) get(k segmentKey) (segmentVerdict, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	sv, found := v.m[k]
	return sv, found
}

func (v *Memo) put(k segmentKey, sv segmentVerdict) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxRememberedVerdicts {
		v.m = map[segmentKey]segmentVerdict{}
	}
	v.m[k] = sv
}

// Clear forgets every remembered verdict.
func (v *Memo) Clear() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.m = nil
}

// segment is a run of one SKU's operations between clean restocks.
type segment struct {
	ops           []inventory.Operation
	indeterminate bool // holds an operation answered unavailable
}

// splitAtRestocks cuts one SKU's operations (of one store) into segments
// at clean restocks, each segment in call order.
func splitAtRestocks(ops []inventory.Operation) []segment {
	type entry struct {
		op    inventory.Operation
		indet bool
	}
	var in []entry
	for _, op := range ops {
		if enters, indet := entersCheck(op); enters {
			in = append(in, entry{op, indet})
		}
	}
	slices.SortStableFunc(in, func(a, b entry) int {
		return cmp.Or(a.op.Call.Compare(b.op.Call), cmp.Compare(a.op.ID, b.op.ID))
	})
	// A restock at i is a clean cut when every determinate operation
	// before it (by call) returned before its call, and every determinate
	// operation after it was called after it returned (the latter is the
	// earliest later call, since in is sorted by call).
	var maxRet time.Time // latest return of determinate operations before i
	cuts := []int{0}
	for i, e := range in {
		if i > 0 && !e.indet && e.op.Op == inventory.OpStock && e.op.Outcome == inventory.OK && maxRet.Before(e.op.Call) {
			clean := true
			for j := i + 1; j < len(in); j++ { // the first determinate operation after it
				if !in[j].indet {
					clean = in[j].op.Call.After(e.op.Return)
					break
				}
			}
			if clean {
				cuts = append(cuts, i)
			}
		}
		if !e.indet && e.op.Return.After(maxRet) {
			maxRet = e.op.Return
		}
	}
	cuts = append(cuts, len(in))
	var segs []segment
	for c := 0; c+1 < len(cuts); c++ {
		var s segment
		for _, e := range in[cuts[c]:cuts[c+1]] {
			s.ops = append(s.ops, e.op)
			s.indeterminate = s.indeterminate || e.indet
		}
		if len(s.ops) > 0 {
			segs = append(segs, s)
		}
	}
	// An unavailable operation called during a restock sorts after it but
	// belongs before it: move such operations back to the earlier segment.
	for c := 1; c < len(segs); c++ {
		s := segs[c].ops[0] // the restock
		var keep []inventory.Operation
		for _, op := range segs[c].ops {
			if _, indet := entersCheck(op); indet && !op.Call.After(s.Return) && op.ID != s.ID {
				segs[c-1].ops = append(segs[c-1].ops, op)
				segs[c-1].indeterminate = true
				continue
			}
			keep = append(keep, op)
		}
		segs[c].ops = keep
		segs[c].indeterminate = slices.ContainsFunc(keep, func(op inventory.Operation) bool { _, i := entersCheck(op); return i })
	}
	return segs
}

// Relevant reports whether op can change Check's verdict or counts:
// it enters the linearizability check or is a read answered ok (stale
// reads). Answers that changed nothing — fail_fast, overloaded, conflict,
// unavailable reads — do not, and during an outage they can be most of
// the history: the checker does not even copy them.
func Relevant(op *inventory.Operation) bool {
	enters, _ := entersCheck(*op)
	return enters || (op.Op == inventory.OpRead && op.Outcome == inventory.OK)
}

// linearizable runs the linearizability search on ops alone and, when it
// fails, names the answer it could not place.
//
// Operations answered unavailable make the search slow: they may apply at
// any moment after their call, so it tries each of them at every point
// (a partition's hundred unavailable buys in a couple of thousand
// operations took seconds). Usually none of them applied — writes from a
// cut-off minority never commit — so the search first runs without them:
// if that history is linearizable, so is the whole one (put every
// unavailable operation at the very end, after everything anyone saw).
// Only if it is not does the full search run.
func linearizable(ops []inventory.Operation, store inventory.Store, sku string, timeout time.Duration) (porcupine.CheckResult, *Unplaced) {
	search := func(ops []inventory.Operation, verbose bool) (porcupine.CheckResult, *Unplaced) {
		in, _, _ := prepareCheck(ops, store, sku)
		model := inventoryModel(rankIndeterminate(in))
		pops := toPorcupine(in)
		if !verbose {
			return porcupine.CheckOperationsTimeout(model, pops, timeout), nil
		}
		res, info := porcupine.CheckOperationsVerbose(model, pops, timeout)
		if res != porcupine.Illegal {
			return res, nil
		}
		return res, unplacedOp(in, pops, model, info, sku)
	}
	determinate := slices.DeleteFunc(slices.Clone(ops), func(op inventory.Operation) bool {
		_, indet := entersCheck(op)
		return indet
	})
	if len(determinate) < len(ops) {
		if res, _ := search(determinate, false); res == porcupine.Ok {
			return porcupine.Ok, nil
		}
	}
	return search(ops, true)
}

// checkSegmented is Check's verdict for one store and SKU ("" = every
// SKU, each on its own), computed segment by segment with remembered
// Memo; the counts are Check's.
func checkSegmented(ops []inventory.Operation, store inventory.Store, sku string, timeout time.Duration, memo *Memo) Result {
	bySKU := map[string][]inventory.Operation{}
	var order []string
	for _, op := range ops {
		if op.Store != store || (sku != "" && op.SKU != sku) {
			continue
		}
		if _, ok := bySKU[op.SKU]; !ok {
			order = append(order, op.SKU)
		}
		bySKU[op.SKU] = append(bySKU[op.SKU], op)
	}
	r := Result{Store: store, SKU: sku, Linearizable: true}
	deadline := time.Now().Add(timeout)
	for _, s := range order {
		mine := bySKU[s]
		for _, op := range mine {
			if enters, _ := entersCheck(op); enters {
				r.Operations++
			}
		}
		left := time.Until(deadline)
		if timeout > 0 && left <= 0 {
			r.Linearizable, r.TimedOut = false, true
			break
		}
		if timeout == 0 {
			left = 0
		}
		res, unplaced := skuVerdict(mine, store, s, left, memo)
		switch res {
		case porcupine.Illegal:
			r.Linearizable = false
			if r.Unplaced == nil && unplaced != nil {
				u := *unplaced
				if sku == "" { // name the SKU: the sentence was written for one
					describeUnplacedOf(&u, s)
				}
				r.Unplaced = &u
			}
		case porcupine.Unknown:
			r.Linearizable, r.TimedOut = false, true
		}
	}
	countWindow(&r, ops, store, sku)
	if r.Linearizable {
		r.Oversold = 0
	}
	r.Explanation = explainCheck(r)
	return r
}

// skuVerdict judges one SKU's operations by segments (see above).
func skuVerdict(ops []inventory.Operation, store inventory.Store, sku string, timeout time.Duration, memo *Memo) (porcupine.CheckResult, *Unplaced) {
	segs := splitAtRestocks(ops)
	earlierIndeterminate := false
	for _, seg := range segs {
		k := segmentKey{store: store, sku: sku, first: seg.ops[0].ID, last: seg.ops[len(seg.ops)-1].ID, n: len(seg.ops)}
		for _, op := range seg.ops {
			id := uint64(op.ID) << 1
			if op.Outcome == inventory.Unavailable { // a cut may have made it so (cut.go)
				id |= 1
			}
			k.ids = (k.ids^id)*1099511628211 + 0x9e3779b97f4a7c15
		}
		sv, found := memo.get(k)
		if !found {
			res, unplaced := linearizable(seg.ops, store, sku, timeout)
			if res == porcupine.Unknown {
				return res, nil
			}
			sv = segmentVerdict{ok: res == porcupine.Ok, unplaced: unplaced}
			memo.put(k, sv)
		}
		if !sv.ok {
			if !earlierIndeterminate {
				return porcupine.Illegal, sv.unplaced
			}
			return linearizable(ops, store, sku, timeout) // an earlier unavailable write may explain it
		}
		earlierIndeterminate = earlierIndeterminate || seg.indeterminate
	}
	return porcupine.Ok, nil
}
