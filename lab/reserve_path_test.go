package lab_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/guard"
	"caplab/lab/history"
	"caplab/lab/inventory"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// waitOutsideFault waits until the watcher records an outside_write fault
// naming revision rev (a write the test made itself: the positive
// control), and returns every outside_write fault recorded by then. The
// watcher judges writes in revision order, so by then it has judged every
// write before rev.
func waitOutsideFault(t *testing.T, l *lab.Lab, rev int64) []inventory.Fault {
	t.Helper()
	want := "revision " + strconv.FormatInt(rev, 10) + " "
	deadline := time.Now().Add(lab.OutsideSettle(l) + 20*time.Second)
	for {
		faults := outsideFaults(l)
		for _, f := range faults {
			if strings.Contains(f.Detail, want) {
				return faults
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outside write at revision %d was never flagged (outside faults: %+v)", rev, faults)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fillHistory fills the History to its cap with reads of another SKU, as a
// long session would.
func fillHistory(l *lab.Lab) {
	for lab.HistoryOf(l).Stored() < history.MaxOperations {
		lab.HistoryOf(l).AddOperation(inventory.Operation{Store: inventory.Consensus, SKU: "FILLER", Region: "us-east-1", Op: inventory.OpRead, Outcome: inventory.OK})
	}
}

// TestReservationPastCapIsTheLabsOwn: once the History is full, a
// reservation passes the same recording rules as a buy — it gets an ID,
// counts as dropped, is counted and recorded as an action, and its writes
// (the sale, and the fencing token's) are the lab's own: the outside-write
// watcher flags only the write an outside client made.
func TestReservationPastCapIsTheLabsOwn(t *testing.T) {
	l := newLab(t, lab.Config{})
	ctx := ctxT(t, 60*time.Second)
	leadFrom(t, l, "us-east-1")
	const sku = "PASTCAP"
	if o := must(t)(l.Stock(ctx, inventory.Consensus, sku, "us-east-1", 10)); o.Outcome != inventory.OK {
		t.Fatalf("stock: %s", o.Message)
	}
	fillHistory(l)
	before, _ := lab.HistoryOf(l).Dropped()
	okBefore := l.State().Counters[0].OK
	var got []inventory.Outcome
	for _, fenced := range []bool{false, true} {
		o := must(t)(l.Reserve(ctx, sku, "us-east-1", fenced))
		if o.Outcome != inventory.OK {
			t.Fatalf("reservation (fenced %v) past the cap: %s (%s)", fenced, o.Outcome, o.Message)
		}
		got = append(got, o)
	}
	b := must(t)(l.Buy(ctx, inventory.Consensus, sku, "eu-west-1", 1))
	if b.Outcome != inventory.OK {
		t.Fatalf("buy past the cap: %s (%s)", b.Outcome, b.Message)
	}
	got = append(got, b)
	for _, o := range got {
		if o.OpID <= 0 {
			t.Errorf("%s past the cap got OpID %d, want one after every stored operation", o.Op, o.OpID)
		}
	}
	if after, _ := lab.HistoryOf(l).Dropped(); after != before+3 {
		t.Errorf("dropped %d → %d, want the two reservations and the buy (+3)", before, after)
	}
	if n := l.State().Counters[0].OK; n != okBefore+3 {
		t.Errorf("consensus ok counter %d → %d, want +3", okBefore, n)
	}
	kinds := map[lab.ActionKind]int{}
	for _, a := range l.Recorder().Recording().Actions {
		kinds[a.Kind]++
	}
	if kinds[lab.ActReserve] != 2 || kinds[lab.ActBuy] != 1 {
		t.Errorf("recorded actions %v, want 2 reservations and 1 buy", kinds)
	}

	// The positive control: a write no operation of the lab made.
	cli := outsideClient(t, l, "us-east-1", "us-east-1")
	resp, err := cli.Put(clientv3.WithRequireLeader(ctx), lab.ConsensusOf(l).Key(sku), "7")
	if err != nil {
		t.Fatal(err)
	}
	faults := waitOutsideFault(t, l, resp.Header.Revision)
	if len(faults) != 1 {
		t.Fatalf("%d outside_write faults, want only the outside client's: %+v", len(faults), faults)
	}
}

// TestReservationLeftOutIsTheLabsOwn: a reservation under
// WithOpRecording(SkipHistory) is left out of the History like a buy — no
// ID, nothing dropped — and its writes are in the ledger of the lab's own
// unrecorded writes, so the watcher flags only the outside client's.
func TestReservationLeftOutIsTheLabsOwn(t *testing.T) {
	l := newLab(t, lab.Config{})
	ctx := ctxT(t, 60*time.Second)
	leadFrom(t, l, "us-east-1")
	const sku = "SKIPPED"
	if o := must(t)(l.Stock(ctx, inventory.Consensus, sku, "us-east-1", 10)); o.Outcome != inventory.OK {
		t.Fatalf("stock: %s", o.Message)
	}
	stored := lab.HistoryOf(l).Stored()
	skip := lab.WithOpRecording(ctx, lab.OpRecording{SkipHistory: true})
	for _, fenced := range []bool{false, true} {
		o := must(t)(l.Reserve(skip, sku, "eu-west-1", fenced))
		if o.Outcome != inventory.OK || o.OpID != 0 {
			t.Fatalf("reservation (fenced %v) left out: %s, op %d (%s); want ok and no ID", fenced, o.Outcome, o.OpID, o.Message)
		}
	}
	if n := lab.HistoryOf(l).Stored(); n != stored {
		t.Errorf("the History grew from %d to %d operations; the reservations were to be left out", stored, n)
	}
	cli := outsideClient(t, l, "us-east-1", "us-east-1")
	resp, err := cli.Put(clientv3.WithRequireLeader(ctx), lab.ConsensusOf(l).Key(sku), "7")
	if err != nil {
		t.Fatal(err)
	}
	faults := waitOutsideFault(t, l, resp.Header.Revision)
	if len(faults) != 1 {
		t.Fatalf("%d outside_write faults, want only the outside client's: %+v", len(faults), faults)
	}
}

// TestReservationFailsFastBehindOpenBreaker: a reservation goes through its
// region's consensus breaker: once buys there opened it, a reservation
// fails fast, takes no lock and is counted as fail_fast; and it answers
// from a crashed region at once that the region is down.
func TestReservationFailsFastBehindOpenBreaker(t *testing.T) {
	l := newLab(t, lab.Config{Breaker: guard.BreakerSettings{Threshold: 1, Cooldown: time.Minute}})
	ctx := ctxT(t, 60*time.Second)
	const minority, sku = "ap-southeast-1", "BREAKER"
	leadFrom(t, l, "us-east-1")
	if o := must(t)(l.Stock(ctx, inventory.Consensus, sku, "us-east-1", 5)); o.Outcome != inventory.OK {
		t.Fatalf("stock: %s", o.Message)
	}
	if err := l.Faults().Isolate(minority); err != nil {
		t.Fatal(err)
	}
	waitNoLeader(t, l, minority)
	if o := must(t)(l.Buy(ctx, inventory.Consensus, sku, minority, 1)); o.Outcome != inventory.Unavailable {
		t.Fatalf("buy in the minority: %s (%s), want unavailable", o.Outcome, o.Message)
	}
	if st := l.State().Regions[2].Breakers[inventory.Consensus]; st != guard.BreakerOpen {
		t.Fatalf("breaker %s after an unavailable buy with threshold 1, want open", st)
	}
	failFast := l.State().Counters[0].FailFast
	o := must(t)(l.Reserve(ctx, sku, minority, true))
	if o.Outcome != inventory.FailFast || !strings.Contains(o.Message, "Service temporarily unavailable") {
		t.Fatalf("reservation behind an open breaker: %s (%s), want fail_fast", o.Outcome, o.Message)
	}
	if n := l.State().Counters[0].FailFast; n != failFast+1 {
		t.Errorf("fail_fast counter %d → %d, want +1", failFast, n)
	}
	if err := l.Faults().HealAll(); err != nil {
		t.Fatal(err)
	}
	cli := outsideClient(t, l, "us-east-1", "us-east-1")
	locks, err := cli.Get(clientv3.WithRequireLeader(ctx), "/locks/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if locks.Count != 0 {
		t.Errorf("%d lock keys after a reservation that failed fast, want none", locks.Count)
	}

	if err := l.Faults().Crash("eu-west-1"); err != nil {
		t.Fatal(err)
	}
	if o := must(t)(l.Reserve(ctx, sku, "eu-west-1", false)); o.Outcome != inventory.Unavailable || !strings.Contains(o.Message, "is down (crashed)") {
		t.Fatalf("reservation from a crashed region: %s (%s), want unavailable: down", o.Outcome, o.Message)
	}
}
