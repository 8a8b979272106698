package check

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"caplab/lab/inventory"
)

// The smallest counterexample, Jepsen-style: when a history is not
// linearizable, two or three of its answers that cannot all be true of
// one correct shelf, whatever else happened — the proof a learner can
// check on a mini-timeline. Pure functions over the judged operations.
//
// Why a few answers can prove the whole history wrong. Take any correct
// execution of the whole history and its order of events, and keep only
// the chosen answers S in that order. Between two of them the other
// operations did one of: nothing to the count (reads, refusals, sold
// out), or took units (buys, answered or not). So S must fit a relaxed
// shelf whose count may drop by any amount between two answers — never
// rise — provided no restock of the history can fall between S's
// answers: every stock write that may have applied (answered ok or
// unavailable) outside S ended before S's first call or began after its
// last return. The relaxed shelf starts with any count if one ended
// before, else empty, as the checker's shelf starts. If no order of S
// that keeps real time (a answered before b was called ⇒ a first) fits
// the relaxed shelf, no order of the whole history fits the real one:
// the history is not linearizable, and S says why. Writes the History did
// not record need no more: the checker judges a SKU only up to a
// recording gap and again from a clean restock after it (cut.go), so an
// unrecorded write lies after every answer before the gap and before the
// restock, which S must then hold or lie after.
//
// The relaxed shelf cannot prove what needs every sale counted (units
// that vanished, "sold out" with units left): then there is no
// counterexample this small, and the verdict's unplaced answer says why.

// Counterexample is the smallest set of recorded answers on one SKU that
// cannot all be true of one correct shelf.
type Counterexample struct {
	SKU string `json:"sku"`
	// Operations are the proof, by call time: two or three answers.
	Operations []inventory.Operation `json:"operations"`
	// Restock is the stock write the proof's answers follow, for the
	// reader (the proof does not need it); nil when none or when it is
	// one of Operations.
	Restock  *inventory.Operation `json:"restock,omitempty"`
	Anomaly  Anomaly              `json:"anomaly"`
	Sentence string               `json:"sentence"`
	// At is the moment that proves it: when the last of them answered.
	At time.Time `json:"at"`
}

// Bounds of the search: answers tried beside the unplaced one (pairs,
// triples), and, without one, how far apart two answers may be.
const (
	counterPairs   = 400
	counterTriples = 120
	counterSpan    = 64
)

// relaxedOp is one answer in the relaxed shelf's terms.
type relaxedOp struct {
	op        *inventory.Operation
	call, ret int64 // ns; ret ≥ call
}

// SmallestCounterexample finds, among judged (the operations the checker
// judged, as cut.go left them), the fewest answers (two, else three) on
// one SKU that prove the history is not linearizable, preferring those
// with u (the answer the search could not place; it names the SKU) and
// those closest to it. sku names the SKU when u is nil. nil when there
// is none that small.
func SmallestCounterexample(judged []inventory.Operation, sku string, u *Unplaced) *Counterexample {
	if u != nil {
		sku = u.SKU
	}
	if sku == "" {
		return nil
	}
	var cands []relaxedOp
	var stocks []relaxedOp // stock writes that may have applied
	for i := range judged {
		op := &judged[i]
		if op.SKU != sku {
			continue
		}
		enters, indet := entersCheck(*op)
		if !enters {
			continue
		}
		r := relaxedOp{op: op, call: op.Call.UnixNano(), ret: max(op.Call.UnixNano(), op.Return.UnixNano())}
		if indet {
			r.ret = math.MaxInt64
		}
		if op.Op == inventory.OpStock {
			stocks = append(stocks, r)
		}
		if !indet {
			cands = append(cands, r)
		}
	}
	slices.SortStableFunc(cands, func(a, b relaxedOp) int { return cmp.Or(cmp.Compare(a.call, b.call), cmp.Compare(a.op.ID, b.op.ID)) })
	proves := func(s []relaxedOp) bool {
		ok, before := restocksOutside(s, stocks)
		return ok && !relaxedFits(s, before)
	}
	var found []relaxedOp
	anchor := -1
	if u != nil && u.ID != 0 {
		anchor = slices.IndexFunc(cands, func(r relaxedOp) bool { return r.op.ID == u.ID })
	}
	if anchor >= 0 {
		a := cands[anchor]
		var near []relaxedOp // answers that may come before it or overlap it, nearest first
		for i := len(cands) - 1; i >= 0 && len(near) < counterPairs; i-- {
			if i != anchor && cands[i].call <= a.ret {
				near = append(near, cands[i])
			}
		}
		for _, x := range near {
			if s := []relaxedOp{x, a}; proves(s) {
				found = s
				break
			}
		}
		for i := 0; found == nil && i < min(len(near), counterTriples); i++ {
			for j := i + 1; j < min(len(near), counterTriples); j++ {
				if s := []relaxedOp{near[j], near[i], a}; proves(s) {
					found = s
					break
				}
			}
		}
	}
	for i := 0; found == nil && i < len(cands); i++ { // no unplaced answer to start from: pairs close in time
		for j := i + 1; j < min(len(cands), i+1+counterSpan); j++ {
			if s := []relaxedOp{cands[i], cands[j]}; proves(s) {
				found = s
				break
			}
		}
	}
	if found == nil {
		return nil
	}
	return describeCounterexample(sku, found, stocks, u)
}

// restocksOutside reports whether every stock write that may have applied
// and is not in s lies wholly before or wholly after s's answers, and
// whether one lies before.
func restocksOutside(s, stocks []relaxedOp) (ok, before bool) {
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for _, r := range s {
		first, last = min(first, r.call), max(last, r.ret)
	}
	for _, st := range stocks {
		if slices.ContainsFunc(s, func(r relaxedOp) bool { return r.op == st.op }) {
			continue
		}
		switch {
		case st.ret < first:
			before = true
		case st.call <= last:
			return false, false
		}
	}
	return true, before
}

// relaxedFits reports whether some order of s that keeps real time fits
// the relaxed shelf: a count that may drop by any amount between answers
// and never rises but by a stock write. It starts with any count when a
// stock write came before (stocked), else with none — the checker's
// shelf starts empty.
func relaxedFits(s []relaxedOp, stocked bool) bool {
	perm := make([]int, len(s))
	for i := range perm {
		perm[i] = i
	}
	for {
		if keepsRealTime(s, perm) && relaxedRun(s, perm, stocked) {
			return true
		}
		if !nextPerm(perm) {
			return false
		}
	}
}

func keepsRealTime(s []relaxedOp, perm []int) bool {
	for i := range perm {
		for j := i + 1; j < len(perm); j++ {
			if s[perm[j]].ret < s[perm[i]].call { // the later one answered before the earlier was called
				return false
			}
		}
	}
	return true
}

// relaxedRun runs s in the order perm on the relaxed shelf; hi is the
// most the count can be.
func relaxedRun(s []relaxedOp, perm []int, stocked bool) bool {
	hi := 0
	if stocked {
		hi = math.MaxInt
	}
	for _, i := range perm {
		op := s[i].op
		switch {
		case op.Op == inventory.OpStock:
			hi = op.Qty
		case op.Op == inventory.OpBuy && op.Outcome == inventory.OK:
			if op.Quantity+op.Qty > hi {
				return false
			}
			hi = op.Quantity
		case op.Op == inventory.OpBuy && op.Outcome == inventory.SoldOut:
			hi = min(hi, op.Qty-1)
		case op.Op == inventory.OpRead:
			if op.Quantity > hi {
				return false
			}
			hi = op.Quantity
		}
	}
	return true
}

// nextPerm steps p to the next permutation in lexicographic order.
func nextPerm(p []int) bool {
	i := len(p) - 2
	for i >= 0 && p[i] >= p[i+1] {
		i--
	}
	if i < 0 {
		return false
	}
	j := len(p) - 1
	for p[j] <= p[i] {
		j--
	}
	p[i], p[j] = p[j], p[i]
	slices.Reverse(p[i+1:])
	return true
}

// describeCounterexample names what the proof s shows, in one sentence.
func describeCounterexample(sku string, s []relaxedOp, stocks []relaxedOp, u *Unplaced) *Counterexample {
	slices.SortStableFunc(s, func(a, b relaxedOp) int { return cmp.Compare(a.call, b.call) })
	c := &Counterexample{SKU: sku}
	first := int64(math.MaxInt64)
	hasStock := false
	for _, r := range s {
		c.Operations = append(c.Operations, *r.op)
		c.At = maxTime(c.At, r.op.Return)
		first = min(first, r.call)
		hasStock = hasStock || r.op.Op == inventory.OpStock
	}
	if !hasStock { // the restock they follow: the last one to end before them
		var best *relaxedOp
		for i := range stocks {
			st := &stocks[i]
			if st.op.Outcome == inventory.OK && st.ret < first && (best == nil || st.ret > best.ret) {
				best = st
			}
		}
		if best != nil {
			op := *best.op
			c.Restock = &op
		}
	}
	c.Anomaly, c.Sentence = counterSentence(c.Operations)
	if c.Anomaly == "" {
		c.Anomaly = AnomalyOrder
		if u != nil {
			c.Anomaly = u.Anomaly
		}
	}
	return c
}

// counterSentence says what the proof's answers show together.
func counterSentence(ops []inventory.Operation) (Anomaly, string) {
	var buys, reads, stocks []inventory.Operation
	for _, op := range ops {
		switch {
		case op.Op == inventory.OpBuy && op.Outcome == inventory.OK:
			buys = append(buys, op)
		case op.Op == inventory.OpRead:
			reads = append(reads, op)
		case op.Op == inventory.OpStock:
			stocks = append(stocks, op)
		}
	}
	read := func(op inventory.Operation) int { return op.Quantity + op.Qty }
	switch {
	case len(ops) == 2 && len(buys) == 2:
		a, b := buys[0], buys[1]
		if read(a) == read(b) {
			n := read(a)
			if a.Qty+b.Qty > n {
				return AnomalyDoubleSale, fmt.Sprintf("%s and %s both read %s left and both sold: %s went out of %s — the same unit sold twice.",
					a.Region, b.Region, thousands(n), unitsPhrase(a.Qty+b.Qty), thousands(n))
			}
			return AnomalyLostUpdate, fmt.Sprintf("%s and %s both read %s left and both sold, each writing down what it alone left: one sale overwrote the other (a lost update).",
				a.Region, b.Region, thousands(n))
		}
		if a.Return.After(b.Return) {
			a, b = b, a
		}
		return AnomalyLostUpdate, fmt.Sprintf("%s sold and left %s; %s then sold as if %s were left — counts never rise without a restock, so one sale overwrote the other (a lost update).",
			a.Region, thousands(a.Quantity), b.Region, thousands(read(b)))
	case len(ops) == 2 && len(buys) == 1 && len(reads) == 1:
		b, r := buys[0], reads[0]
		if r.Quantity > b.Quantity && b.Return.Before(r.Call) {
			return AnomalyStaleRead, fmt.Sprintf("%s sold and left %s; after that %s read %s — a count from before that sale (a stale read).",
				b.Region, thousands(b.Quantity), r.Region, thousands(r.Quantity))
		}
	case len(ops) == 2 && len(reads) == 2:
		a, b := reads[0], reads[1]
		if a.Return.After(b.Return) {
			a, b = b, a
		}
		return AnomalyStaleRead, fmt.Sprintf("%s read %s; after that %s read %s — the count went up with no restock (a stale read).",
			a.Region, thousands(a.Quantity), b.Region, thousands(b.Quantity))
	case len(stocks) == 1 && len(buys) == len(ops)-1:
		sold := 0
		var who []string
		for _, b := range buys {
			sold += b.Qty
			who = append(who, b.Region)
		}
		if sold > stocks[0].Qty {
			return AnomalyDoubleSale, fmt.Sprintf("After %s stocked %s, %s sold %s: more than was there.",
				stocks[0].Region, thousands(stocks[0].Qty), strings.Join(who, " and "), unitsPhrase(sold))
		}
	}
	parts := make([]string, len(ops))
	for i, op := range ops {
		parts[i] = counterPhrase(op)
	}
	return "", strings.Join(parts, "; ") + ": no single shelf gives all these answers in any order that keeps real time."
}

// counterPhrase is one answer in a counterexample's words.
func counterPhrase(op inventory.Operation) string {
	switch {
	case op.Op == inventory.OpStock:
		return fmt.Sprintf("%s stocked %s", op.Region, thousands(op.Qty))
	case op.Op == inventory.OpBuy && op.Outcome == inventory.OK:
		return fmt.Sprintf("%s read %s left and sold %s", op.Region, thousands(op.Quantity+op.Qty), thousands(op.Qty))
	case op.Op == inventory.OpBuy:
		return fmt.Sprintf("%s was told sold out", op.Region)
	}
	return fmt.Sprintf("%s read %s", op.Region, thousands(op.Quantity))
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
