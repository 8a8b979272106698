package load

import (
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// TestBudgetSpentMidRunStaysLinearizable is the issue-18 run in small: a
// fault-free load on the consensus store whose recording budget runs out
// mid-run, so buys of the checked SKUs go on unrecorded while recorded
// ones are still in flight. The verdict must be linearizable, and say
// where it stopped judging. (The full run — "caplab load --latency-scale 0
// --rate 1700 --mix 2 --skus 10000 --stock 1000000 --duration 20s --stores
// consensus --json", four times — is in docs/benchmarks.md.)
func TestBudgetSpentMidRunStaysLinearizable(t *testing.T) {
	l := newLab(t, lab.Config{})
	c := newController(t, l)
	if _, err := c.Start(Config{Rate: 150, ReadsPerBuy: f64(2), SKUs: 200, Stock: intp(1_000_000), DoorbusterShare: f64(0.4),
		Stores: []string{"consensus"}, Duration: Duration(4 * time.Second), Seed: 18}); err != nil {
		t.Fatal(err)
	}
	// Spend most of the budget at once: what is left runs out about a
	// second into the run (≈ 180 buys and 50 reads a second are recorded).
	c.Run().recorded.Add(recordBudget - 250)
	st := waitState(t, c, StateFinished, StateStopped, StateFailed)
	if st.State != StateFinished {
		t.Fatalf("state %s: %s", st.State, st.Reason)
	}
	if at := time.Duration(c.Run().spentAt.Load()); at <= 0 {
		t.Fatalf("the budget was not spent: the test's load is too small (%d recorded)", c.Run().recorded.Load())
	}
	check := storeOf(t, st, "consensus").Check
	if check == nil {
		t.Fatal("no verdict")
	}
	t.Logf("%d operations judged: %s", check.Operations, check.Explanation)
	if !check.Linearizable {
		t.Fatalf("a fault-free consensus store judged not linearizable: %s", check.Explanation)
	}
	cut := false // an unrecorded write got through (a busy machine may refuse them all: overloaded)
	for _, g := range l.Recorded(inventory.Consensus, "").Gaps {
		cut = cut || g.To.IsZero() || g.Writes > 0
	}
	if cut && !strings.Contains(check.Explanation, "Judged ") {
		t.Errorf("the verdict does not say where it stopped judging: %s", check.Explanation)
	}
}
