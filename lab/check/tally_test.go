package check

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"caplab/lab/inventory"
)

// TestAuditMatchesCountWindow: the auditor's incremental counts equal the
// checker's counting over the whole history, whatever order operations
// arrive in (returns out of order, restocks in the middle), after every
// batch.
func TestAuditMatchesCountWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	for i := range 300 {
		ops := ckSequentialRun(rng, 5+rng.IntN(60))
		// Arrival order: mostly by return, sometimes swapped neighbours.
		for j := 1; j < len(ops); j++ {
			if rng.IntN(6) == 0 {
				ops[j-1], ops[j] = ops[j], ops[j-1]
			}
		}
		a := NewTally()
		for start := 0; start < len(ops); {
			end := min(len(ops), start+1+rng.IntN(8))
			for k := start; k < end; k++ {
				a.Add(&ops[k])
			}
			start = end
			s := a.skus[inventory.Replicated]["X"]
			s.settle()
			var want Result
			countWindow(&want, ops[:end], inventory.Replicated, "X")
			if s.oversold != want.Oversold || s.staleReads != want.StaleReads || s.indeterminate != want.Indeterminate {
				t.Fatalf("history %d after %d ops: audit oversold %d stale %d indeterminate %d, countWindow %+v\n%s",
					i, end, s.oversold, s.staleReads, s.indeterminate, want, ckDumpOps(ops[:end]))
			}
		}
	}
}

// TestSegmentedVerdictMatchesCheck: judging a SKU's history segment by
// segment (cut at clean restocks) gives Check's verdict, on random
// histories with restocks, overlapping operations, unavailable writes and
// corrupted answers — remembered Memo included.
func TestSegmentedVerdictMatchesCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	cuts, agreeLin, agreeNot := 0, 0, 0
	for i := range 600 {
		ops := ckSequentialRunJitter(rng, 10+rng.IntN(50), 2+rng.IntN(30))
		for j := range ops {
			if rng.IntN(6) == 0 && (ops[j].Op == inventory.OpBuy || ops[j].Op == inventory.OpStock) {
				ops[j].Outcome = inventory.Unavailable
			}
		}
		var answers []int
		for j, o := range ops {
			if o.Outcome == inventory.OK && (o.Op == inventory.OpBuy || o.Consistency == inventory.Linearizable) {
				answers = append(answers, j)
			}
		}
		if len(answers) > 0 && rng.IntN(2) == 0 {
			j := answers[rng.IntN(len(answers))]
			ops[j].Quantity += 1 - 2*rng.IntN(2)
		}
		want, _ := Operations(ops, inventory.Replicated, "X", 30*time.Second)
		if len(splitAtRestocks(ops)) > 1 {
			cuts++
		}
		// Twice: the second time from remembered Memo (operation IDs
		// are unique in a lab, so each history has its own memory).
		var memo Memo
		for range 2 {
			got := checkSegmented(ops, inventory.Replicated, "X", 30*time.Second, &memo)
			if got.Linearizable != want.Linearizable || got.Oversold != want.Oversold || got.Operations != want.Operations {
				t.Fatalf("history %d: segmented %+v, whole %+v\n%s", i, got, want, ckDumpOps(ops))
			}
		}
		if i%10 == 0 { // as the history grows, with one memory
			for k := 1; k < len(ops); k++ {
				w, _ := Operations(ops[:k], inventory.Replicated, "X", 30*time.Second)
				if got := checkSegmented(ops[:k], inventory.Replicated, "X", 30*time.Second, &memo); got.Linearizable != w.Linearizable {
					t.Fatalf("history %d, first %d operations: segmented %+v, whole %+v\n%s", i, k, got, w, ckDumpOps(ops[:k]))
				}
			}
		}
		if want.Linearizable {
			agreeLin++
		} else {
			agreeNot++
		}
	}
	if cuts < 100 || agreeLin < 100 || agreeNot < 100 {
		t.Errorf("weak sample: %d histories with a cut, %d linearizable, %d not", cuts, agreeLin, agreeNot)
	}
}

// ckPartitionHistory is a consensus SKU after a long partition: n
// operations, every 16th a buy from the minority answered unavailable
// (never applied unless applied is set, then the first one did), the
// others ok buys and linearizable reads from the majority. broken adds a
// read no order explains.
func ckPartitionHistory(n int, applied, broken bool) []inventory.Operation {
	var ops []inventory.Operation
	add := func(o inventory.Operation) { o.ID = len(ops) + 1; ops = append(ops, o) }
	add(ckOp(0, inventory.OpStock, inventory.OK, 2*n, 2*n, 0, 10, ckVersion(1)))
	left, v := 2*n, int64(1)
	for i := range n - 1 {
		at := int64(20 + i*20)
		switch {
		case i%16 == 0:
			add(ckOp(0, inventory.OpBuy, inventory.Unavailable, 1, 0, at, at+10, ckRegion("ap-southeast-1")))
			if applied && i == 0 {
				left--
				v++
			}
		case i%2 == 0:
			left--
			v++
			add(ckOp(0, inventory.OpBuy, inventory.OK, 1, left, at+5, at+15, ckVersion(v), ckBase(v-1)))
		default:
			add(ckOp(0, inventory.OpRead, inventory.OK, 0, left, at+5, at+15, ckVersion(v)))
		}
	}
	if broken {
		add(ckOp(0, inventory.OpRead, inventory.OK, 0, 3*n, int64(20*n+100), int64(20*n+110)))
	}
	return ops
}

// TestVerdictAfterPartition: the segmented verdict agrees with the whole
// search on a long partition history — unavailable buys that never
// applied (the fast path), one that did (the full search), and a broken
// read.
func TestVerdictAfterPartition(t *testing.T) {
	for _, c := range []struct {
		applied, broken, want bool
	}{{false, false, true}, {true, false, true}, {false, true, false}} {
		ops := ckPartitionHistory(400, c.applied, c.broken)
		got := checkSegmented(ops, inventory.Consensus, "X", time.Minute, &Memo{})
		if got.Linearizable != c.want || got.TimedOut || got.Indeterminate != 25 {
			t.Errorf("applied=%v broken=%v: %+v", c.applied, c.broken, got)
		}
	}
}

// BenchmarkVerdictPartitionHistory: 1,761 operations of which 110 are
// unavailable buys (the soak of issue 9): the whole-history search against
// Lab.Check's path (segments, and first without the unavailable buys).
//
//	go test ./lab -run '^$' -bench VerdictPartitionHistory -benchtime 5x
func BenchmarkVerdictPartitionHistory(b *testing.B) {
	ops := ckPartitionHistory(1761, false, false)
	var whole, segmented []float64
	for b.Loop() {
		t0 := time.Now()
		Operations(ops, inventory.Consensus, "X", time.Minute)
		whole = append(whole, float64(time.Since(t0).Microseconds())/1000)
		t0 = time.Now()
		checkSegmented(ops, inventory.Consensus, "X", time.Minute, &Memo{})
		segmented = append(segmented, float64(time.Since(t0).Microseconds())/1000)
	}
	b.ReportMetric(median(whole), "ms-whole")
	b.ReportMetric(median(segmented), "ms-lab-check")
	b.ReportMetric(median(whole)/median(segmented), "speedup")
}

func median(f []float64) float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}
