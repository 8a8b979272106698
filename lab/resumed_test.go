package lab_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// TestResumedLabJudgesFromRestock: a lab started again on its data
// directory holds stock its History never saw. A buy on it is not judged
// (a correct store is never accused of selling what "was never stocked");
// after a restock the SKU is judged again — and the replicated store's
// oversale under a cut is still caught.
func TestResumedLabJudgesFromRestock(t *testing.T) {
	dir := t.TempDir()
	cfg := lab.Config{TickMs: 50, ElectionMs: 500, DataDir: dir}
	start := func() *lab.Lab {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		l, err := lab.New(ctx, cfg)
		if err != nil {
			t.Fatalf("lab: %v", err)
		}
		t.Cleanup(func() { _ = l.Close() })
		return l
	}
	l := start()
	stock(t, l, inventory.Consensus, "us-east-1", 10)
	stock(t, l, inventory.Geo, "us-east-1", 9) // 3 units in each region's allocation
	buy(t, l, inventory.Geo, "eu-west-1")
	if o := buy(t, l, inventory.Consensus, "eu-west-1"); o.Outcome != inventory.OK || o.Quantity != 9 {
		t.Fatalf("first run's buy: %+v", o)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = start()
	if !l.Cluster().Resumed() {
		t.Fatal("the second lab on the same data dir did not resume")
	}
	if o := buy(t, l, inventory.Consensus, "eu-west-1"); o.Outcome != inventory.OK || o.Quantity != 8 {
		t.Fatalf("the resumed lab's buy: %+v, want ok with 8 left (the first run's stock kept)", o)
	}
	r, err := l.Check(inventory.Consensus, "IPHONE")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Linearizable || r.Oversold != 0 || r.NotJudged != 1 || !strings.Contains(r.Explanation, "restock IPHONE to judge it again") {
		t.Fatalf("resumed lab, buy without a restock: %+v — a correct store must not be accused, and the verdict must say what it covers", r)
	}

	if o := buy(t, l, inventory.Geo, "eu-west-1"); o.Outcome != inventory.OK {
		t.Fatalf("the resumed lab's geo buy: %+v", o)
	}
	if r, _ := l.Check(inventory.Geo, "IPHONE"); !r.Linearizable || r.Oversold != 0 {
		t.Errorf("resumed lab, geo buy without a restock: %+v — a correct store must not be accused", r)
	}

	stock(t, l, inventory.Consensus, "us-east-1", 3)
	buy(t, l, inventory.Consensus, "ap-southeast-1")
	if r, _ = l.Check(inventory.Consensus, "IPHONE"); !r.Linearizable || r.Operations != 2 {
		t.Errorf("after a restock: %+v, want linearizable over the restock and the buy", r)
	}

	// Nothing weaker: W=1 under a cut still oversells, and is caught.
	stock(t, l, inventory.Replicated, "us-east-1", 1)
	if err := l.WaitConverged(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := l.Faults().Isolate("ap-southeast-1"); err != nil {
		t.Fatal(err)
	}
	a, b := buy(t, l, inventory.Replicated, "us-east-1"), buy(t, l, inventory.Replicated, "ap-southeast-1")
	if a.Outcome != inventory.OK || b.Outcome != inventory.OK {
		t.Fatalf("W=1 buys on both sides of a cut: %s, %s", a.Outcome, b.Outcome)
	}
	if r, _ = l.Check(inventory.Replicated, "IPHONE"); r.Linearizable || r.Oversold != 1 {
		t.Errorf("replicated W=1 oversold under a cut after a resume: %+v, want not linearizable with 1 oversold", r)
	}
}
