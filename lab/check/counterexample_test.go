package check

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"caplab/lab/inventory"
)

// Tests of the smallest counterexample (counterexample.go), both ways: it
// is found, small and named for the anomalies a learner meets, and it
// never claims a proof in a history a correct store could have produced.

// ceOp is a recorded operation at ms offsets from checkEpoch.
func ceOp(id int, region string, op inventory.Op, qty int, out inventory.Kind, left, callMs, retMs int) inventory.Operation {
	return inventory.Operation{ID: id, Store: inventory.Replicated, SKU: "X", Region: region, Op: op, Qty: qty, Outcome: out, Quantity: left,
		Call: checkEpoch.Add(time.Duration(callMs) * time.Millisecond), Return: checkEpoch.Add(time.Duration(retMs) * time.Millisecond)}
}

func ids(ops []inventory.Operation) []int {
	out := make([]int, len(ops))
	for i, o := range ops {
		out[i] = o.ID
	}
	return out
}

func TestCounterexampleNamesTheTwoBuys(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ops      []inventory.Operation
		want     []int // the proof's operation IDs, by call
		restock  int   // the restock shown beside it (0: none)
		anomaly  Anomaly
		sentence []string
	}{
		{"both sides sold the last unit during a cut", []inventory.Operation{
			ceOp(1, "us-east-1", inventory.OpStock, 1, inventory.OK, 1, 0, 10),
			ceOp(2, "ap-southeast-1", inventory.OpBuy, 1, inventory.OK, 0, 100, 110),
			ceOp(3, "us-east-1", inventory.OpBuy, 1, inventory.OK, 0, 200, 210),
		}, []int{2, 3}, 1, AnomalyDoubleSale, []string{"ap-southeast-1 and us-east-1 both read 1 left and both sold", "2 units went out of 1", "the same unit sold twice"}},
		{"concurrent buys, reads and refusals around them", []inventory.Operation{
			ceOp(1, "us-east-1", inventory.OpStock, 1, inventory.OK, 1, 0, 10),
			ceOp(2, "eu-west-1", inventory.OpRead, 0, inventory.OK, 1, 20, 30),
			ceOp(3, "ap-southeast-1", inventory.OpBuy, 1, inventory.OK, 0, 100, 300),
			ceOp(4, "us-east-1", inventory.OpBuy, 1, inventory.OK, 0, 150, 250),
			ceOp(5, "eu-west-1", inventory.OpBuy, 1, inventory.Unavailable, 0, 160, 2000),
			ceOp(6, "eu-west-1", inventory.OpBuy, 1, inventory.SoldOut, 0, 400, 410),
		}, []int{3, 4}, 1, AnomalyDoubleSale, []string{"both read 1 left and both sold"}},
		{"a lost update: both read 2, each left 1", []inventory.Operation{
			ceOp(1, "us-east-1", inventory.OpStock, 2, inventory.OK, 2, 0, 10),
			ceOp(2, "ap-southeast-1", inventory.OpBuy, 1, inventory.OK, 1, 100, 110),
			ceOp(3, "us-east-1", inventory.OpBuy, 1, inventory.OK, 1, 200, 210),
		}, []int{2, 3}, 1, AnomalyLostUpdate, []string{"both read 2 left", "lost update"}},
		{"a stale read after a sale", []inventory.Operation{
			ceOp(1, "us-east-1", inventory.OpStock, 5, inventory.OK, 5, 0, 10),
			ceOp(2, "us-east-1", inventory.OpBuy, 1, inventory.OK, 4, 100, 110),
			ceOp(3, "ap-southeast-1", inventory.OpRead, 0, inventory.OK, 5, 200, 210),
		}, []int{2, 3}, 1, AnomalyStaleRead, []string{"us-east-1 sold and left 4; after that ap-southeast-1 read 5", "stale read"}},
		{"a sale past the restock needs the restock", []inventory.Operation{
			ceOp(1, "us-east-1", inventory.OpStock, 1, inventory.OK, 1, 0, 10),
			ceOp(2, "ap-southeast-1", inventory.OpBuy, 2, inventory.OK, 0, 100, 110),
		}, []int{1, 2}, 0, AnomalyDoubleSale, []string{"After us-east-1 stocked 1, ap-southeast-1 sold 2 units: more than was there."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Judge(Recorded{Operations: tc.ops}, inventory.Replicated, "X", time.Minute)
			if res.Linearizable {
				t.Fatalf("the checker judged it linearizable: %s", res.Explanation)
			}
			ce := res.Counterexample
			if ce == nil {
				t.Fatalf("no counterexample; unplaced %+v", res.Unplaced)
			}
			if got := ids(ce.Operations); !slices.Equal(got, tc.want) {
				t.Errorf("proof %v, want %v (%s)", got, tc.want, ce.Sentence)
			}
			if got := 0; ce.Restock != nil {
				if got = ce.Restock.ID; got != tc.restock {
					t.Errorf("restock #%d, want #%d", got, tc.restock)
				}
			} else if tc.restock != 0 {
				t.Errorf("no restock, want #%d", tc.restock)
			}
			if ce.Anomaly != tc.anomaly {
				t.Errorf("anomaly %q, want %q", ce.Anomaly, tc.anomaly)
			}
			for _, s := range tc.sentence {
				if !strings.Contains(ce.Sentence, s) {
					t.Errorf("sentence %q does not say %q", ce.Sentence, s)
				}
			}
			last := ce.Operations[len(ce.Operations)-1].Return
			for _, o := range ce.Operations {
				last = maxTime(last, o.Return)
			}
			if !ce.At.Equal(last) {
				t.Errorf("at %v, want the last answer's return %v", ce.At, last)
			}
		})
	}
}

// TestNoCounterexampleWhereAnswersCanBeTrue: histories a correct shelf
// gives — a restock between the two sales, a sale whose unit another
// buy answered unavailable for, overlapping sales that each left what
// the other did not take — hold no proof, and a proof never leans on a
// restock that could fall between its answers.
func TestNoCounterexampleWhereAnswersCanBeTrue(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []inventory.Operation
		u    int // an answer to start from (0: none)
	}{
		{"a restock between the sales", []inventory.Operation{
			ceOp(1, "us-east-1", inventory.OpStock, 1, inventory.OK, 1, 0, 10),
			ceOp(2, "ap-southeast-1", inventory.OpBuy, 1, inventory.OK, 0, 100, 110),
			ceOp(3, "us-east-1", inventory.OpStock, 1, inventory.OK, 1, 150, 160),
			ceOp(4, "us-east-1", inventory.OpBuy, 1, inventory.OK, 0, 200, 210),
		}, 4},
		{"a restock answered unavailable may have landed between them", []inventory.Operation{
			ceOp(1, "us-east-1", inventory.OpStock, 1, inventory.OK, 1, 0, 10),
			ceOp(2, "ap-southeast-1", inventory.OpBuy, 1, inventory.OK, 0, 100, 110),
			ceOp(3, "us-east-1", inventory.OpStock, 1, inventory.Unavailable, 0, 120, 5000),
			ceOp(4, "us-east-1", inventory.OpBuy, 1, inventory.OK, 0, 200, 210),
		}, 4},
		{"a restock overlapping the second sale", []inventory.Operation{
			ceOp(1, "us-east-1", inventory.OpStock, 1, inventory.OK, 1, 0, 10),
			ceOp(2, "ap-southeast-1", inventory.OpBuy, 1, inventory.OK, 0, 100, 110),
			ceOp(3, "us-east-1", inventory.OpStock, 1, inventory.OK, 1, 190, 260),
			ceOp(4, "us-east-1", inventory.OpBuy, 1, inventory.OK, 0, 200, 250),
		}, 4},
		{"overlapping sales, each after the other", []inventory.Operation{
			ceOp(1, "us-east-1", inventory.OpStock, 2, inventory.OK, 2, 0, 10),
			ceOp(2, "ap-southeast-1", inventory.OpBuy, 1, inventory.OK, 0, 100, 300),
			ceOp(3, "us-east-1", inventory.OpBuy, 1, inventory.OK, 1, 150, 250),
			ceOp(4, "eu-west-1", inventory.OpRead, 0, inventory.OK, 1, 160, 170),
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var u *Unplaced
			if tc.u != 0 {
				u = &Unplaced{SKU: "X", ID: tc.u}
			}
			if ce := SmallestCounterexample(tc.ops, "X", u); ce != nil {
				t.Fatalf("claimed a proof in a history a correct shelf gives: %v %s", ids(ce.Operations), ce.Sentence)
			}
		})
	}
}

// TestCounterexampleNeverAccusesACorrectStore: correct executions,
// truncated every way the lab bounds recording and cut like the checker
// cuts them, never yield a proof — starting from any answer.
func TestCounterexampleNeverAccusesACorrectStore(t *testing.T) {
	configs := []simConfig{
		{n: 60, stock: 3, pRead: 0.3, pUnavail: 0.15, gapMeanUs: 200, durMaxUs: 1500, pRestock: 0.08},
		{n: 60, stock: 1, pRead: 0.2, pUnavail: 0.1, gapMeanUs: 400, durMaxUs: 3000, pRestock: 0.15},
		{n: 80, stock: 10, pRead: 0.4, pUnavail: 0.2, pSerial: 0.3, gapMeanUs: 100, durMaxUs: 2000, pRestock: 0.05},
	}
	rng := rand.New(rand.NewPCG(22, 1))
	for run := range 600 {
		ops := simulate(rng, configs[run%len(configs)])
		var judged []inventory.Operation
		if run%2 == 0 {
			for _, s := range ops {
				judged = append(judged, s.op)
			}
		} else {
			trunc := simTruncations[run%len(simTruncations)]
			recorded, gaps := simGaps(ops, trunc.pick(rng, ops), trunc.why)
			judged, _, _ = cutOperations(recorded, inventory.Consensus, gapsFor(gaps, inventory.Consensus, "X"))
		}
		tries := []*Unplaced{nil}
		for range 5 {
			if len(judged) > 0 {
				tries = append(tries, &Unplaced{SKU: "X", ID: judged[rng.IntN(len(judged))].ID})
			}
		}
		for _, u := range tries {
			if ce := SmallestCounterexample(judged, "X", u); ce != nil {
				t.Fatalf("run %d: a proof %v (%s) in a correct execution:\n%s", run, ids(ce.Operations), ce.Sentence, ckDumpOps(judged))
			}
		}
	}
}

// TestCounterexampleOnlyWhereTheCheckerFails: in executions with an
// anomaly injected, every proof found is in a history the checker judges
// not linearizable, and the double sales, lost updates and stale reads a
// learner meets are proved with two or three answers.
func TestCounterexampleOnlyWhereTheCheckerFails(t *testing.T) {
	for _, an := range simAnomalies {
		t.Run(an.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(22, uint64(len(an.name))))
			tried, proved := 0, 0
			for run := 0; tried < 60 && run < 2000; run++ {
				ops := simulate(rng, simConfig{n: 40, stock: an.stock, pRead: 0.25, gapMeanUs: 300, durMaxUs: 2000})
				var recorded []inventory.Operation
				keep := map[int]bool{}
				for _, s := range ops {
					recorded = append(recorded, s.op)
					keep[s.op.ID] = s.op.Outcome != inventory.Unavailable
				}
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
				before := checkEpoch.Add(1000 * time.Hour)
				for _, o := range recorded {
					if o.Outcome == inventory.Unavailable && o.Call.Before(before) {
						before = o.Call
					}
				}
				bad := an.inject(rng, slices.Clone(recorded), keep, order, before)
				if bad == nil {
					continue
				}
				tried++
				res := Judge(Recorded{Operations: bad}, inventory.Consensus, "X", time.Minute)
				ce := res.Counterexample
				desc := fmt.Sprintf("run %d: %s\n%s", run, res.Explanation, ckDumpOps(bad))
				if res.Linearizable {
					t.Fatalf("missed: %s", desc)
				}
				if ce == nil {
					continue
				}
				proved++
				if n := len(ce.Operations); n < 2 || n > 3 {
					t.Fatalf("a proof of %d answers: %s", n, desc)
				}
				// Judged alone, what the proof holds (and nothing else) is not
				// linearizable either: the answers really contradict each other.
				alone := Judge(Recorded{Operations: ce.Operations}, inventory.Consensus, "X", time.Minute)
				if alone.Linearizable {
					t.Fatalf("the proof %v alone is linearizable: %s", ids(ce.Operations), desc)
				}
			}
			if tried < 30 {
				t.Fatalf("only %d executions had room for %s", tried, an.name)
			}
			t.Logf("%s: proved with 2 or 3 answers in %d of %d", an.name, proved, tried)
			if proved < tried*9/10 {
				t.Errorf("%s: proved in only %d of %d executions", an.name, proved, tried)
			}
		})
	}
}
