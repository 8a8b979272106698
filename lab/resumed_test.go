package lab

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestKilledRunIsCutAtTheRestart: an audit log that spans a restart. A
// run that ended without a stop record was killed; a buy it had in flight
// was never recorded, so the next run's first buy answers one unit fewer
// than the recorded ones explain. Judged from the file, that is no
// accusation: the killed run is cut at the restart and the SKU judged
// again from its first restock. The same records with a stop record (a
// clean stop: the file claims to hold everything) are judged not
// linearizable — and after the restart's restock a double sale is caught.
func TestKilledRunIsCutAtTheRestart(t *testing.T) {
	opRec := func(o Operation) AuditRecord {
		return AuditRecord{Type: AuditOperation, Run: "r", At: o.Return, Operation: &o}
	}
	regions := []string{"us-east-1", "eu-west-1"}
	records := func(clean bool, after ...Operation) []AuditRecord {
		recs := []AuditRecord{
			{Type: AuditStart, Run: "r1", At: ckMs(0), Regions: regions},
			opRec(ckOp(1, OpStock, OK, 10, 10, 1, 10)),
			opRec(ckOp(2, OpBuy, OK, 1, 9, 20, 30)),
		}
		if clean {
			recs = append(recs, AuditRecord{Type: AuditStop, Run: "r1", At: ckMs(40)})
		}
		recs = append(recs,
			AuditRecord{Type: AuditStart, Run: "r2", At: ckMs(100), Regions: regions},
			opRec(ckOp(1, OpBuy, OK, 1, 7, 110, 120, ckRegion("eu-west-1")))) // 8 was sold by the lost buy
		for _, o := range after {
			recs = append(recs, opRec(o))
		}
		return recs
	}
	judge := func(recs []AuditRecord) CheckResult {
		t.Helper()
		h := &HistoryFile{}
		for _, r := range recs {
			h.add(r)
		}
		return Judge(h.Recorded(Consensus, "X"), Consensus, "X", 10*time.Second)
	}

	if r := judge(records(true)); r.Linearizable {
		t.Errorf("a clean stop claims the file holds every operation, so 9 → 7 with nothing between must be caught; got %+v", r)
	}
	r := judge(records(false))
	if !r.Linearizable || r.NotJudged == 0 || len(r.Cuts) == 0 || r.Cuts[0].Reason != GapResumed {
		t.Fatalf("a killed run must be cut at the restart, not accused: %+v", r)
	}
	if !strings.Contains(r.Explanation, "restock X to judge it again") {
		t.Errorf("explanation %q, want it to say a restock judges X again", r.Explanation)
	}

	// After the restart's restock: judged again, correct answers pass …
	restock := ckOp(2, OpStock, OK, 5, 5, 200, 210)
	good := []Operation{restock, ckOp(3, OpBuy, OK, 1, 4, 220, 230), ckOp(4, OpBuy, OK, 1, 3, 240, 250, ckRegion("eu-west-1"))}
	r = judge(records(false, good...))
	if !r.Linearizable || r.Operations != 3 || !strings.Contains(r.Explanation, "judged from its first restock since") {
		t.Errorf("after a restock: %+v, want linearizable over its 3 operations and the explanation to say so", r)
	}
	// … and a double sale is caught.
	bad := []Operation{restock, ckOp(3, OpBuy, OK, 1, 4, 220, 230), ckOp(4, OpBuy, OK, 1, 4, 240, 250, ckRegion("eu-west-1"))}
	if r = judge(records(false, bad...)); r.Linearizable {
		t.Errorf("two buys answering 4 left after a restock of 5 must be caught: %+v", r)
	}
}

// TestResumedLabJudgesFromRestock: a lab started again on its data
// directory holds stock its History never saw. A buy on it is not judged
// (a correct store is never accused of selling what "was never stocked");
// after a restock the SKU is judged again — and the replicated store's
// oversale under a cut is still caught.
func TestResumedLabJudgesFromRestock(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{TickMs: 50, ElectionMs: 500, DataDir: dir}
	start := func() *Lab {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		l, err := New(ctx, cfg)
		if err != nil {
			t.Fatalf("lab: %v", err)
		}
		t.Cleanup(func() { _ = l.Close() })
		return l
	}
	l := start()
	stock(t, l, Consensus, "us-east-1", 10)
	stock(t, l, Geo, "us-east-1", 9) // 3 units in each region's allocation
	buy(t, l, Geo, "eu-west-1")
	if o := buy(t, l, Consensus, "eu-west-1"); o.Outcome != OK || o.Quantity != 9 {
		t.Fatalf("first run's buy: %+v", o)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = start()
	if !l.Resumed() {
		t.Fatal("the second lab on the same data dir did not resume")
	}
	if o := buy(t, l, Consensus, "eu-west-1"); o.Outcome != OK || o.Quantity != 8 {
		t.Fatalf("the resumed lab's buy: %+v, want ok with 8 left (the first run's stock kept)", o)
	}
	r, err := l.Check(Consensus, "IPHONE")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Linearizable || r.Oversold != 0 || r.NotJudged != 1 || !strings.Contains(r.Explanation, "restock IPHONE to judge it again") {
		t.Fatalf("resumed lab, buy without a restock: %+v — a correct store must not be accused, and the verdict must say what it covers", r)
	}

	if o := buy(t, l, Geo, "eu-west-1"); o.Outcome != OK {
		t.Fatalf("the resumed lab's geo buy: %+v", o)
	}
	if r, _ := l.Check(Geo, "IPHONE"); !r.Linearizable || r.Oversold != 0 {
		t.Errorf("resumed lab, geo buy without a restock: %+v — a correct store must not be accused", r)
	}

	stock(t, l, Consensus, "us-east-1", 3)
	buy(t, l, Consensus, "ap-southeast-1")
	if r, _ = l.Check(Consensus, "IPHONE"); !r.Linearizable || r.Operations != 2 {
		t.Errorf("after a restock: %+v, want linearizable over the restock and the buy", r)
	}

	// Nothing weaker: W=1 under a cut still oversells, and is caught.
	stock(t, l, Replicated, "us-east-1", 1)
	if err := l.WaitConverged(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := l.Isolate("ap-southeast-1"); err != nil {
		t.Fatal(err)
	}
	a, b := buy(t, l, Replicated, "us-east-1"), buy(t, l, Replicated, "ap-southeast-1")
	if a.Outcome != OK || b.Outcome != OK {
		t.Fatalf("W=1 buys on both sides of a cut: %s, %s", a.Outcome, b.Outcome)
	}
	if r, _ = l.Check(Replicated, "IPHONE"); r.Linearizable || r.Oversold != 1 {
		t.Errorf("replicated W=1 oversold under a cut after a resume: %+v, want not linearizable with 1 oversold", r)
	}
}
