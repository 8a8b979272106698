package check

import (
	"cmp"
	"slices"
	"time"

	"caplab/lab/inventory"
)

// Cutting a SKU's recorded history at its recording gaps (history.Gaps), so
// that what the checker judges is a history some correct store could have
// produced. Pure functions over recorded data.
//
// Let a gap start at F, the earliest call of a write the lab did not
// record. Take any correct execution and its order of events: every
// unrecorded write of the gap comes after F, so the events before F are a
// valid history on their own, and they hold
//
//   - every recorded operation that returned before F: judged as answered;
//   - some of those in flight at F: a write that applied (answered ok) is
//     judged as "may have applied" (like one answered unavailable); a
//     read or a refused write in flight is left out (removing an
//     operation that changed nothing keeps a history valid);
//
// and recorded operations called after F are left out. A write answered
// unavailable stays in wherever it was called: it may apply at any time.
//
// Judging resumes after a gap that ended (every unrecorded write in it
// returned with a definite answer, so none applies later) at the first
// clean restock called after it: a stock answered ok that no other
// recorded answer overlaps. It sets the count outright, so what the gap
// did is forgotten; operations from then on to the next gap are judged as
// above. The judged pieces join into one history with the same verdict as
// judging them apart (the argument of segments.go: a clean restock is a
// cut; a write that may have applied may still apply after it).

// Cut says where the checker stopped judging one SKU because writes
// on it went unrecorded, and whether it resumed.
type Cut struct {
	SKU    string              `json:"sku"`
	Reason inventory.GapReason `json:"reason"`
	// At is the gap's start: the earliest call of an unrecorded write.
	At time.Time `json:"at"`
	// JudgedS: seconds of the SKU's recorded history judged before At,
	// from its first recorded call.
	JudgedS float64 `json:"judgedS"`
	// Resumed is the call of the clean restock judging resumed at (zero:
	// it did not resume).
	Resumed time.Time `json:"resumed,omitzero"`
	// Writes: unrecorded writes in the gap that may have applied.
	Writes int `json:"writes"`
	// LeftOut: recorded operations not judged because of this gap;
	// InFlight: recorded writes in flight at At that applied, judged as
	// "may have applied".
	LeftOut  int `json:"leftOut"`
	InFlight int `json:"inFlight"`
}

// cutItem is one recorded operation or geo call as the cut sees it.
type cutItem struct {
	call, ret time.Time
	// write: may change the state; unknown: answered "may or may not have
	// applied"; applied: a write known to have changed the state (ok);
	// restock: sets the state outright, known to have applied; counts: a
	// determinate answer that enters the linearizability search (a clean
	// restock overlaps none).
	write, unknown, applied, restock, counts bool
}

type fate uint8

const (
	fateKeep      fate = iota // judged as answered
	fateUncertain             // judged as "may have applied"
	fateLeftOut               // not judged
)

// gapSpan is one stretch without a record: [from, to], to zero = never
// ended. reason and writes describe it; idx is the Cut it feeds.
type gapSpan struct {
	from, to time.Time
	reason   inventory.GapReason
	writes   int
}

func (g gapSpan) ended() bool { return !g.to.IsZero() }

// mergeGaps keeps the gaps that can change something, merged where they
// overlap, in time order.
func mergeGaps(gaps []inventory.RecordingGap) []gapSpan {
	var spans []gapSpan
	for _, g := range gaps {
		if g.Harmless() {
			continue
		}
		spans = append(spans, gapSpan{from: g.From, to: g.To, reason: g.Reason, writes: g.Writes})
	}
	slices.SortFunc(spans, func(a, b gapSpan) int { return a.from.Compare(b.from) })
	var out []gapSpan
	for _, s := range spans {
		if n := len(out); n > 0 && (!out[n-1].ended() || !s.from.After(out[n-1].to)) {
			last := &out[n-1]
			if !last.ended() || !s.ended() {
				last.to = time.Time{}
			} else if s.to.After(last.to) {
				last.to = s.to
			}
			last.writes += s.writes
			continue
		}
		out = append(out, s)
	}
	return out
}

// cutFates decides each item's fate given the merged gaps, and returns
// one Cut per gap (SKU and JudgedS left to the caller) and, per
// item, the gap its fate is due to (-1: none).
func cutFates(items []cutItem, spans []gapSpan) ([]fate, []Cut, []int) {
	fates := make([]fate, len(items))
	due := make([]int, len(items))
	for i := range due {
		due[i] = -1
	}
	cuts := make([]Cut, len(spans))
	for i, s := range spans {
		cuts[i] = Cut{Reason: s.reason, At: s.from, Writes: s.writes}
	}
	if len(spans) == 0 {
		return fates, cuts, due
	}
	// Windows: [start, end) judged; start zero = the beginning.
	type window struct {
		start, end time.Time
		endGap     int // the gap at end; -1 none
		restock    int // the item that opened it; -1 none
	}
	windows := []window{{end: spans[0].from, endGap: 0, restock: -1}}
	for i, s := range spans {
		if !s.ended() {
			break
		}
		var end time.Time // zero: no later gap
		endGap := -1
		if i+1 < len(spans) {
			end, endGap = spans[i+1].from, i+1
		}
		if r := cleanRestock(items, s.to, end); r >= 0 {
			windows = append(windows, window{start: items[r].call, end: end, endGap: endGap, restock: r})
			cuts[i].Resumed = items[r].call
		}
	}
	// gapAt is the gap whose span holds t (called inside no window).
	gapAt := func(t time.Time) int {
		g := 0
		for j, s := range spans {
			if !t.Before(s.from) {
				g = j
			}
		}
		return g
	}
	for i, it := range items {
		w := -1
		for j, win := range windows {
			inside := (win.start.IsZero() || !it.call.Before(win.start)) && (win.end.IsZero() || it.call.Before(win.end))
			if inside || j > 0 && i == win.restock {
				w = j
				break
			}
		}
		switch {
		case w < 0: // called where nothing is recorded
			if it.write && it.unknown {
				fates[i] = fateKeep // it may apply at any time, in a later window too
			} else {
				fates[i], due[i] = fateLeftOut, gapAt(it.call)
				cuts[due[i]].LeftOut++
			}
		case windows[w].end.IsZero() || it.ret.Before(windows[w].end):
			fates[i] = fateKeep
		default: // in flight when the next gap began
			g := windows[w].endGap
			switch {
			case it.write && it.unknown:
				fates[i] = fateKeep
			case it.applied:
				fates[i], due[i] = fateUncertain, g
				cuts[g].InFlight++
			default:
				fates[i], due[i] = fateLeftOut, g
				cuts[g].LeftOut++
			}
		}
	}
	return fates, cuts, due
}

// cleanRestock is the first item after (strictly) that restocks, returns
// before end (zero: no end) and overlaps no other item that counts; -1 if
// none.
func cleanRestock(items []cutItem, after, end time.Time) int {
	for r, it := range items {
		if !it.restock || !it.call.After(after) || (!end.IsZero() && !it.ret.Before(end)) {
			continue
		}
		clean := true
		for o, x := range items {
			if o != r && x.counts && !x.call.After(it.ret) && !x.ret.Before(it.call) {
				clean = false
				break
			}
		}
		if clean {
			return r
		}
	}
	return -1
}

// gapsFor picks the gaps that bear on store's SKU sku (its own and the
// store-wide ones).
func gapsFor(gaps []inventory.RecordingGap, store inventory.Store, sku string) []inventory.RecordingGap {
	var out []inventory.RecordingGap
	for _, g := range gaps {
		if g.Store == store && (g.SKU == sku || g.SKU == "") {
			out = append(out, g)
		}
	}
	return out
}

// opCutItem describes an operation to the cut.
func opCutItem(op inventory.Operation) cutItem {
	enters, indet := entersCheck(op)
	write := op.Op == inventory.OpStock || op.Op == inventory.OpBuy
	return cutItem{
		call: op.Call, ret: op.Return,
		write: write, unknown: write && op.Outcome == inventory.Unavailable,
		applied: write && op.Outcome == inventory.OK,
		restock: op.Op == inventory.OpStock && op.Outcome == inventory.OK,
		counts:  enters && !indet,
	}
}

// cutOperations applies the gaps to one store's operations (any SKUs):
// the operations to judge (a write in flight at a gap's start that
// applied now answers unavailable: it may have applied), the cuts per
// SKU, and how many recorded operations were left out.
func cutOperations(ops []inventory.Operation, store inventory.Store, gaps []inventory.RecordingGap) (judged []inventory.Operation, cuts []Cut, leftOut int) {
	if len(gaps) == 0 {
		return ops, nil, 0
	}
	bySKU := map[string][]int{}
	var order []string
	for i, op := range ops {
		if _, ok := bySKU[op.SKU]; !ok {
			order = append(order, op.SKU)
		}
		bySKU[op.SKU] = append(bySKU[op.SKU], i)
	}
	fates := make([]fate, len(ops))
	for _, sku := range order {
		spans := mergeGaps(gapsFor(gaps, store, sku))
		if len(spans) == 0 {
			continue
		}
		idx := bySKU[sku]
		items := make([]cutItem, len(idx))
		first := ops[idx[0]].Call
		for k, i := range idx {
			items[k] = opCutItem(ops[i])
			if ops[i].Call.Before(first) {
				first = ops[i].Call
			}
		}
		f, skuCuts, _ := cutFates(items, spans)
		for k, i := range idx {
			fates[i] = f[k]
		}
		for _, c := range skuCuts {
			c.SKU = sku
			c.JudgedS = max(0, c.At.Round(0).Sub(first.Round(0)).Seconds()) // wall clock, as an export has it
			cuts = append(cuts, c)
		}
	}
	judged = make([]inventory.Operation, 0, len(ops))
	for i, op := range ops {
		switch fates[i] {
		case fateKeep:
			judged = append(judged, op)
		case fateUncertain:
			op.Outcome = inventory.Unavailable
			judged = append(judged, op)
		default:
			leftOut++
		}
	}
	slices.SortStableFunc(cuts, func(a, b Cut) int { return cmp.Or(cmp.Compare(a.SKU, b.SKU), a.At.Compare(b.At)) })
	return judged, cuts, leftOut
}

// geoCutItem describes a geo call to the cut.
func geoCutItem(c inventory.GeoCall) cutItem {
	write := c.Kind != inventory.GeoRead
	return cutItem{
		call: c.Call, ret: c.Return,
		write: write, unknown: c.Unknown,
		applied: write && !c.Unknown,
		restock: c.Kind == inventory.GeoSet && !c.Unknown,
		counts:  !c.Unknown,
	}
}

// cutGeoCalls applies the gaps of the geo store to its call log: per
// (SKU, region) allocation, as cutOperations does per SKU. A write call in
// flight at a gap's start that applied becomes unknown.
func cutGeoCalls(calls []inventory.GeoCall, gaps []inventory.RecordingGap) (judged []inventory.GeoCall, leftOut int) {
	if len(gaps) == 0 {
		return calls, 0
	}
	type key struct{ sku, region string }
	by := map[key][]int{}
	for i, c := range calls {
		k := key{c.SKU, c.Region}
		by[k] = append(by[k], i)
	}
	fates := make([]fate, len(calls))
	for k, idx := range by {
		spans := mergeGaps(gapsFor(gaps, inventory.Geo, k.sku))
		if len(spans) == 0 {
			continue
		}
		items := make([]cutItem, len(idx))
		for j, i := range idx {
			items[j] = geoCutItem(calls[i])
		}
		f, _, _ := cutFates(items, spans)
		for j, i := range idx {
			fates[i] = f[j]
		}
	}
	judged = make([]inventory.GeoCall, 0, len(calls))
	for i, c := range calls {
		switch fates[i] {
		case fateKeep:
			judged = append(judged, c)
		case fateUncertain:
			c.Unknown = true
			judged = append(judged, c)
		default:
			leftOut++
		}
	}
	return judged, leftOut
}
