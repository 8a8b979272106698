package check

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"caplab/lab/history"
	"caplab/lab/inventory"
)

// Tests that the verdict can be trusted whatever bounds recording: a
// correct store is never accused, and an anomaly is caught and named.
// The executions are simulated: each operation of one SKU gets a
// linearization point inside [call, return] (a write answered unavailable
// may apply any time after its call, or never), and the inventory model
// applied in that order gives every answer — a history a correct,
// linearizable store could produce. Truncating it the way the lab's
// recording is bounded, and feeding the lab's own gap ledger with the
// calls and returns of what went unrecorded, must leave a verdict of
// "linearizable".

// simOp is one simulated operation and its linearization point.
type simOp struct {
	op inventory.Operation
	at time.Time // linearization point; zero: an unavailable write that never applied
}

// simConfig shapes a simulated execution.
type simConfig struct {
	n          int     // operations
	stock      int     // the first stock's quantity
	pRestock   float64 // chance an operation is a restock (to stock)
	pRead      float64 // chance an operation is a read
	pUnavail   float64 // chance a write answers unavailable
	pSerial    float64 // chance a read is serializable
	gapMeanUs  float64 // mean time between calls
	durMaxUs   int     // longest operation
	cleanFirst bool    // nothing overlaps the first stock
}

var simRegions = []string{"us-east-1", "eu-west-1", "ap-southeast-1"}

// simulate returns a correct execution of one SKU "X" on the consensus
// store, operations numbered by return order (as the History numbers
// them), and their linearization points.
func simulate(rng *rand.Rand, c simConfig) []simOp {
	t := checkEpoch
	ops := make([]simOp, 0, c.n)
	for i := range c.n {
		t = t.Add(time.Duration(rng.ExpFloat64()*c.gapMeanUs) * time.Microsecond)
		if i == 1 && c.cleanFirst {
			t = ops[0].op.Return.Add(time.Microsecond)
		}
		dur := time.Duration(1+rng.IntN(c.durMaxUs)) * time.Microsecond
		o := inventory.Operation{Store: inventory.Consensus, SKU: "X", Region: simRegions[rng.IntN(len(simRegions))], Call: t, Return: t.Add(dur)}
		r := rng.Float64()
		switch {
		case i == 0:
			o.Op, o.Qty = inventory.OpStock, c.stock
		case r < c.pRestock:
			o.Op, o.Qty = inventory.OpStock, c.stock
		case r < c.pRestock+c.pRead:
			o.Op, o.Consistency = inventory.OpRead, inventory.Linearizable
			if rng.Float64() < c.pSerial {
				o.Consistency = inventory.Serializable
			}
		default:
			o.Op, o.Qty = inventory.OpBuy, 1+rng.IntN(2)/1 // mostly 1, sometimes 2
			if rng.IntN(4) > 0 {
				o.Qty = 1
			}
		}
		at := t.Add(time.Duration(rng.Int64N(int64(dur) + 1)))
		if o.Op != inventory.OpRead && i > 0 && rng.Float64() < c.pUnavail {
			o.Outcome = inventory.Unavailable
			switch rng.IntN(3) {
			case 0:
				at = time.Time{} // never applied
			case 1:
				at = t.Add(time.Duration(rng.Int64N(int64(3*dur) + 1))) // applied, maybe after it answered
			}
		}
		ops = append(ops, simOp{op: o, at: at})
	}
	// Apply in linearization order.
	order := make([]int, 0, len(ops))
	for i := range ops {
		if !ops[i].at.IsZero() {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return ops[a].at.Compare(ops[b].at) })
	q, rev := 0, int64(0)
	var past []struct {
		at  time.Time
		q   int
		rev int64
	}
	for _, i := range order {
		o := &ops[i].op
		switch o.Op {
		case inventory.OpStock:
			q, rev = o.Qty, rev+1
			o.Version = inventory.Version{Wall: rev}
			if o.Outcome != inventory.Unavailable {
				o.Outcome, o.Quantity = inventory.OK, q
			}
		case inventory.OpBuy:
			base := rev
			if q >= o.Qty {
				q, rev = q-o.Qty, rev+1
				if o.Outcome != inventory.Unavailable {
					o.Outcome, o.Quantity = inventory.OK, q
					o.Version, o.BaseVersion = inventory.Version{Wall: rev}, inventory.Version{Wall: base}
				}
			} else if o.Outcome != inventory.Unavailable {
				o.Outcome, o.Quantity, o.Version = inventory.SoldOut, q, inventory.Version{Wall: rev}
			}
		case inventory.OpRead:
			o.Outcome, o.Quantity, o.Version = inventory.OK, q, inventory.Version{Wall: rev}
			if o.Consistency == inventory.Serializable && len(past) > 0 { // any older value is within its contract
				p := past[rng.IntN(len(past))]
				o.Quantity, o.Version = p.q, inventory.Version{Wall: p.rev}
			}
		}
		past = append(past, struct {
			at  time.Time
			q   int
			rev int64
		}{ops[i].at, q, rev})
	}
	// Number by return order, like the History.
	slices.SortStableFunc(ops, func(a, b simOp) int { return a.op.Return.Compare(b.op.Return) })
	for i := range ops {
		ops[i].op.ID = i + 1
	}
	return ops
}

// simGaps feeds the lab's gap ledger with the execution's calls and
// returns in time order — recorded operations announce themselves at
// their call, unrecorded writes begin at their call and end at their
// return — and returns the recorded operations and the gaps.
func simGaps(ops []simOp, unrecorded func(i int) bool, why inventory.GapReason) ([]inventory.Operation, []inventory.RecordingGap) {
	g := history.NewGaps(nil)
	type ev struct {
		at   time.Time
		end  bool
		i    int
		call bool
	}
	var evs []ev
	toks := make([]history.GapToken, len(ops))
	var recorded []inventory.Operation
	for i, s := range ops {
		if unrecorded(i) {
			if s.op.Op == inventory.OpRead {
				continue
			}
			evs = append(evs, ev{at: s.op.Call, i: i}, ev{at: s.op.Return, end: true, i: i})
			continue
		}
		recorded = append(recorded, s.op)
		evs = append(evs, ev{at: s.op.Call, i: i, call: true})
	}
	slices.SortStableFunc(evs, func(a, b ev) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		if a.end != b.end { // a call at the instant of a return is after it
			if a.end {
				return -1
			}
			return 1
		}
		return 0
	})
	for _, e := range evs {
		op := ops[e.i].op
		switch {
		case e.call:
			g.RecordedBegin(op.Store, op.SKU, op.Op, op.Call)
		case !e.end:
			toks[e.i] = g.Begin(op.Store, op.SKU, op.Call, why)
		default:
			wrote, mayLand := history.MayWrite(op)
			g.End(toks[e.i], op.Return, wrote, mayLand)
		}
	}
	slices.SortStableFunc(recorded, func(a, b inventory.Operation) int { return cmp.Compare(a.ID, b.ID) })
	return recorded, g.Snapshot(inventory.Consensus, "X")
}

// simTruncations are the ways recording is bounded, each a choice of the
// operations left unrecorded.
var simTruncations = []struct {
	name string
	why  inventory.GapReason
	pick func(rng *rand.Rand, ops []simOp) func(i int) bool
}{
	{"load budget (decided a moment before the call)", inventory.GapSkipped, func(rng *rand.Rand, ops []simOp) func(int) bool {
		return firstK(rng, ops, func(o inventory.Operation) time.Time {
			return o.Call.Add(-time.Duration(rng.IntN(3000)) * time.Microsecond)
		})
	}},
	{"history cap (reserved at the call)", inventory.GapHistoryFull, func(rng *rand.Rand, ops []simOp) func(int) bool {
		return firstK(rng, ops, func(o inventory.Operation) time.Time {
			return o.Call.Add(time.Duration(rng.IntN(50)) * time.Microsecond)
		})
	}},
	{"decided at the return", inventory.GapHistoryFull, func(rng *rand.Rand, ops []simOp) func(int) bool {
		return firstK(rng, ops, func(o inventory.Operation) time.Time { return o.Return })
	}},
	{"bursts left out", inventory.GapSkipped, func(rng *rand.Rand, ops []simOp) func(int) bool {
		out := map[int]bool{}
		for range 1 + rng.IntN(3) {
			from := rng.IntN(len(ops))
			for i := from; i < min(len(ops), from+1+rng.IntN(len(ops)/4+1)); i++ {
				out[i] = true
			}
		}
		return func(i int) bool { return out[i] }
	}},
}

// firstK records the first K operations by key (K random) and none after.
func firstK(rng *rand.Rand, ops []simOp, key func(inventory.Operation) time.Time) func(int) bool {
	idx := make([]int, len(ops))
	keys := make([]time.Time, len(ops))
	for i := range ops {
		idx[i], keys[i] = i, key(ops[i].op)
	}
	slices.SortStableFunc(idx, func(a, b int) int { return keys[a].Compare(keys[b]) })
	k := len(ops)/4 + rng.IntN(len(ops)*3/4+1)
	out := map[int]bool{}
	for _, i := range idx[k:] {
		out[i] = true
	}
	return func(i int) bool { return out[i] }
}

// TestTruncatedCorrectHistoriesAreLinearizable: correct executions,
// truncated every way the lab bounds recording, are always judged
// linearizable — and judged with the gaps ignored they are not always, so
// the executions do hold the hazard.
func TestTruncatedCorrectHistoriesAreLinearizable(t *testing.T) {
	configs := []simConfig{
		{n: 80, stock: 1_000_000, pRead: 0.3, gapMeanUs: 300, durMaxUs: 2000},
		{n: 60, stock: 20, pRestock: 0.05, pRead: 0.3, pSerial: 0.3, pUnavail: 0.1, gapMeanUs: 500, durMaxUs: 3000},
		{n: 60, stock: 5, pRead: 0.2, gapMeanUs: 200, durMaxUs: 1500},
	}
	for _, tr := range simTruncations {
		t.Run(tr.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(18, uint64(len(tr.name))))
			naiveFails, cut := 0, 0
			for run := range 150 {
				c := configs[run%len(configs)]
				ops := simulate(rng, c)
				recorded, gaps := simGaps(ops, tr.pick(rng, ops), tr.why)
				res := Judge(Recorded{Operations: recorded, Gaps: gaps}, inventory.Consensus, "X", time.Minute)
				if !res.Linearizable {
					t.Fatalf("run %d: a correct store's truncated history judged not linearizable: %s\ngaps %+v\n%s", run, res.Explanation, gaps, ckDumpOps(recorded))
				}
				if len(res.Cuts) > 0 {
					cut++
				}
				if naive := Judge(Recorded{Operations: recorded}, inventory.Consensus, "X", time.Minute); !naive.Linearizable {
					naiveFails++
				}
			}
			t.Logf("%d of 150 histories cut; judged without their gaps, %d would have been called not linearizable", cut, naiveFails)
			if cut == 0 {
				t.Error("no history was cut: the truncation left nothing out")
			}
		})
	}
}

// TestUnsampledSKUClickedLater: a SKU the lab drove unrecorded (a load's
// unsampled SKU) and then a learner restocks and buys, recorded: the
// verdict is linearizable and judges what came after the restock.
func TestUnsampledSKUClickedLater(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 2))
	for run := range 200 {
		a := simulate(rng, simConfig{n: 40, stock: 50, pRead: 0.3, pUnavail: []float64{0, 0.1}[run%2], gapMeanUs: 300, durMaxUs: 2000})
		last := a[len(a)-1].op.Return
		for _, s := range a {
			if s.op.Return.After(last) {
				last = s.op.Return
			}
		}
		// The learner's part, after the load: a restock, then buys and reads.
		b := simulate(rng, simConfig{n: 30, stock: 10, pRead: 0.4, gapMeanUs: 300, durMaxUs: 2000, cleanFirst: true})
		shift := last.Sub(checkEpoch) + time.Second
		ops := slices.Clone(a)
		for _, s := range b {
			s.op.Call, s.op.Return = s.op.Call.Add(shift), s.op.Return.Add(shift)
			if !s.at.IsZero() {
				s.at = s.at.Add(shift)
			}
			ops = append(ops, s)
		}
		// An unavailable write of the load may land after the restock: the
		// learner's history then cannot be judged on its own.
		landsLate := false
		for _, s := range a {
			landsLate = landsLate || s.op.Outcome == inventory.Unavailable && s.op.Op != inventory.OpRead
		}
		for i := range ops {
			ops[i].op.ID = i + 1
		}
		recorded, gaps := simGaps(ops, func(i int) bool { return i < len(a) }, inventory.GapSkipped)
		res := Judge(Recorded{Operations: recorded, Gaps: gaps}, inventory.Consensus, "X", time.Minute)
		if !res.Linearizable {
			t.Fatalf("run %d: not linearizable: %s\n%+v\n%s", run, res.Explanation, gaps, ckDumpOps(recorded))
		}
		entering := 0
		for _, op := range recorded {
			if e, _ := entersCheck(op); e {
				entering++
			}
		}
		switch {
		case landsLate && res.Operations != 0:
			t.Fatalf("run %d: judged %d operations after a gap that may still land", run, res.Operations)
		case !landsLate && (res.Operations != entering || len(res.Cuts) != 1 || res.Cuts[0].Resumed.IsZero()):
			t.Fatalf("run %d: judged %d of %d recorded operations, cuts %+v: judging should resume at the learner's restock", run, res.Operations, entering, res.Cuts)
		}
	}
}

// TestBudgetCutWithWriteInFlight: the failing history of issue 18 in
// small. The load's recording budget is spent while a recorded buy is in
// flight; an unrecorded buy lands first, so the recorded one answers a
// count the recorded buys before it cannot explain. Judged without the
// gap it looks like a vanished unit; with it, the recorded buy counts as
// "may have applied", and what was recorded after the cut is left out.
func TestBudgetCutWithWriteInFlight(t *testing.T) {
	ops := []inventory.Operation{
		ckOp(1, inventory.OpStock, inventory.OK, 10, 10, 0, 10, ckVersion(1)),
		ckOp(2, inventory.OpBuy, inventory.OK, 1, 9, 20, 30, ckVersion(2), ckBase(1)),
		ckOp(3, inventory.OpBuy, inventory.OK, 1, 8, 32, 40, ckVersion(3), ckBase(2), ckRegion("eu-west-1")),
		// In flight when the budget ran out; the unrecorded buy below
		// (called at 55, 8 → 7) landed before it.
		ckOp(5, inventory.OpBuy, inventory.OK, 1, 6, 50, 80, ckVersion(5), ckBase(4), ckRegion("eu-west-1")),
		// Called after the unrecorded buy: sees its effect.
		ckOp(4, inventory.OpRead, inventory.OK, 0, 7, 57, 58, ckVersion(4)),
	}
	unrecorded := inventory.Operation{Store: inventory.Consensus, SKU: "X", Region: "ap-southeast-1", Op: inventory.OpBuy, Qty: 1, Outcome: inventory.OK, Quantity: 7, Call: ckMs(55), Return: ckMs(60)}

	naive := Judge(Recorded{Operations: ops}, inventory.Consensus, "X", time.Minute)
	if naive.Linearizable || naive.Unplaced == nil || naive.Unplaced.Anomaly != AnomalyVanished {
		t.Fatalf("without the gap: %+v — want the false accusation the gap prevents (a vanished unit)", naive)
	}

	g := history.NewGaps(nil)
	for _, op := range ops[:3] {
		g.RecordedBegin(op.Store, op.SKU, op.Op, op.Call)
	}
	g.RecordedBegin(inventory.Consensus, "X", inventory.OpBuy, ckMs(50))
	tok := g.Begin(inventory.Consensus, "X", unrecorded.Call, inventory.GapSkipped)
	g.RecordedBegin(inventory.Consensus, "X", inventory.OpRead, ckMs(57))
	wrote, mayLand := history.MayWrite(unrecorded)
	g.End(tok, unrecorded.Return, wrote, mayLand)
	gaps := g.Snapshot(inventory.Consensus, "X")
	if len(gaps) != 1 || !gaps[0].From.Equal(ckMs(55)) || !gaps[0].To.Equal(ckMs(60)) || gaps[0].Writes != 1 {
		t.Fatalf("gaps %+v, want one from 55 ms to 60 ms with one write", gaps)
	}
	res := Judge(Recorded{Operations: ops, Gaps: gaps}, inventory.Consensus, "X", time.Minute)
	if !res.Linearizable {
		t.Fatalf("with the gap: %s", res.Explanation)
	}
	if len(res.Cuts) != 1 || res.Cuts[0].InFlight != 1 || res.Cuts[0].LeftOut != 1 || res.NotJudged != 1 || res.Operations != 4 {
		t.Errorf("cuts %+v, not judged %d, operations %d: want the in-flight buy judged as may-have-applied and the read left out", res.Cuts, res.NotJudged, res.Operations)
	}
	if !strings.Contains(res.Explanation, "Judged X's first 0.1 s") || !strings.Contains(res.Explanation, "1 recorded operation after that was not judged") {
		t.Errorf("explanation %q does not say what it judged", res.Explanation)
	}
}

// simAnomaly injects one anomaly into a judged part of a correct,
// truncated execution and names what the verdict must then say.
type simAnomaly struct {
	name    string
	anomaly Anomaly
	says    string // in the explanation
	stock   int
	// inject changes recorded (judged: keep) and returns it, or nil when
	// this execution offers no place for the anomaly. before bounds the
	// returns of operations it may touch.
	inject func(rng *rand.Rand, recorded []inventory.Operation, keep map[int]bool, order []int, before time.Time) []inventory.Operation
}

var simAnomalies = []simAnomaly{
	{"a vanished unit", AnomalyVanished, "vanished", 1_000_000, func(rng *rand.Rand, rec []inventory.Operation, keep map[int]bool, order []int, before time.Time) []inventory.Operation {
		c := candidates(rec, keep, before, func(o inventory.Operation) bool {
			return o.Op == inventory.OpBuy && o.Outcome == inventory.OK && o.Quantity > 0
		})
		if len(c) == 0 {
			return nil
		}
		rec[c[rng.IntN(len(c))]].Quantity--
		return rec
	}},
	{"a double sale", AnomalyDoubleSale, "the same unit", 3, func(rng *rand.Rand, rec []inventory.Operation, keep map[int]bool, order []int, before time.Time) []inventory.Operation {
		// A "sold out" called after the last unit's sale returned: it
		// now sells a unit that was not there.
		var soldLast time.Time
		for _, o := range rec {
			if o.Op == inventory.OpBuy && o.Outcome == inventory.OK && o.Quantity == 0 && keep[o.ID] && (soldLast.IsZero() || o.Return.Before(soldLast)) {
				soldLast = o.Return
			}
		}
		c := candidates(rec, keep, before, func(o inventory.Operation) bool {
			return !soldLast.IsZero() && o.Call.After(soldLast) && o.Op == inventory.OpBuy && o.Outcome == inventory.SoldOut && o.Qty == 1 && o.Quantity == 0
		})
		if len(c) == 0 {
			return nil
		}
		o := &rec[c[rng.IntN(len(c))]]
		o.Outcome, o.Quantity = inventory.OK, 0
		return rec
	}},
	{"a stale linearizable read", AnomalyStaleRead, "a stale read", 1_000_000, func(rng *rand.Rand, rec []inventory.Operation, keep map[int]bool, order []int, before time.Time) []inventory.Operation {
		c := candidates(rec, keep, before.Add(-10*time.Microsecond), func(o inventory.Operation) bool { return o.Op == inventory.OpBuy && o.Outcome == inventory.OK })
		if len(c) == 0 {
			return nil
		}
		w := rec[c[rng.IntN(len(c))]]
		r := inventory.Operation{ID: len(rec) + 1000, Store: inventory.Consensus, SKU: "X", Region: "ap-southeast-1", Op: inventory.OpRead, Consistency: inventory.Linearizable,
			Outcome: inventory.OK, Quantity: w.Quantity + w.Qty, Version: w.BaseVersion, Call: w.Return.Add(time.Microsecond), Return: w.Return.Add(5 * time.Microsecond)}
		return append(rec, r)
	}},
	{"a lost update", AnomalyLostUpdate, "lost update", 1_000_000, func(rng *rand.Rand, rec []inventory.Operation, keep map[int]bool, order []int, before time.Time) []inventory.Operation {
		// Two buys in a row in the order of events, both judged: the
		// second answers what the first did (it wrote over the first's
		// sale), and every later answer is one unit higher.
		pos := map[int]int{}
		for k, i := range order {
			pos[i] = k
		}
		var pairs [][2]int
		for k := 0; k+1 < len(order); k++ {
			a, b := order[k], order[k+1]
			ok := func(i int) bool {
				o := rec[i]
				return keep[o.ID] && o.Op == inventory.OpBuy && o.Outcome == inventory.OK && o.Qty == 1 && o.Return.Before(before)
			}
			if ok(a) && ok(b) {
				pairs = append(pairs, [2]int{a, b})
			}
		}
		if len(pairs) == 0 {
			return nil
		}
		p := pairs[rng.IntN(len(pairs))]
		first, second := rec[p[0]], &rec[p[1]]
		second.Quantity, second.BaseVersion = first.Quantity, first.BaseVersion
		for i := range rec {
			if pk, ok := pos[i]; ok && pk > pos[p[1]] && rec[i].Outcome == inventory.OK && rec[i].Op != inventory.OpStock && rec[i].Consistency != inventory.Serializable {
				rec[i].Quantity++
			}
		}
		return rec
	}},
}

// candidates are the indices of judged operations returned before before
// that match.
func candidates(rec []inventory.Operation, keep map[int]bool, before time.Time, match func(inventory.Operation) bool) []int {
	var out []int
	for i, o := range rec {
		if keep[o.ID] && o.Return.Before(before) && match(o) {
			out = append(out, i)
		}
	}
	return out
}

// TestInjectedAnomaliesAreCaught: the same kind of executions, truncated
// like a load's budget, with one anomaly injected where the checker
// judges: always caught, with the sentence that names it.
func TestInjectedAnomaliesAreCaught(t *testing.T) {
	for _, an := range simAnomalies {
		t.Run(an.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(18, uint64(len(an.name))))
			caught := 0
			for run := 0; caught < 60 && run < 2000; run++ {
				ops := simulate(rng, simConfig{n: 50, stock: an.stock, pRead: 0.25, gapMeanUs: 300, durMaxUs: 2000})
				trunc := simTruncations[run%2] // budget or cap
				recorded, gaps := simGaps(ops, trunc.pick(rng, ops), trunc.why)
				judged, _, _ := cutOperations(recorded, inventory.Consensus, gapsFor(gaps, inventory.Consensus, "X"))
				keep := map[int]bool{}
				before := checkEpoch.Add(1000 * time.Hour)
				for _, o := range judged {
					keep[o.ID] = o.Outcome != inventory.Unavailable
					if o.Outcome == inventory.Unavailable && o.Call.Before(before) {
						before = o.Call // a write that may have applied could explain what follows
					}
				}
				for _, gp := range gaps {
					if gp.From.Before(before) {
						before = gp.From
					}
				}
				// The order of events, as indices into recorded.
				at := map[int]time.Time{}
				for _, s := range ops {
					at[s.op.ID] = s.at
				}
				var order []int
				for i, o := range recorded {
					if !at[o.ID].IsZero() {
						order = append(order, i)
					}
				}
				slices.SortStableFunc(order, func(a, b int) int { return at[recorded[a].ID].Compare(at[recorded[b].ID]) })
				bad := an.inject(rng, slices.Clone(recorded), keep, order, before)
				if bad == nil {
					continue
				}
				caught++
				res := Judge(Recorded{Operations: bad, Gaps: gaps}, inventory.Consensus, "X", time.Minute)
				desc := fmt.Sprintf("run %d (%s): %s\n%s", run, trunc.name, res.Explanation, ckDumpOps(bad))
				switch {
				case res.Linearizable:
					t.Fatalf("%s missed: %s", an.name, desc)
				case res.Unplaced == nil || res.Unplaced.Anomaly != an.anomaly:
					t.Fatalf("%s named as %+v: %s", an.name, res.Unplaced, desc)
				case !strings.Contains(res.Explanation, an.says):
					t.Fatalf("%s: the explanation does not say %q: %s", an.name, an.says, desc)
				}
			}
			if caught < 60 {
				t.Fatalf("only %d executions had room for %s", caught, an.name)
			}
		})
	}
}
