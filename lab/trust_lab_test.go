package lab_test

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/audit"
	"caplab/lab/check"
	"caplab/lab/history"
	"caplab/lab/inventory"
)

// The trust tests on a real lab: unrecorded writes racing recorded ones
// (the way of a load's budget and of an unsampled SKU), the History's cap
// reached while buys are in flight, and the memory export judged again
// from the file.

// raceBuys buys sku from every region, n times each, concurrently; recorded
// says per buy whether it goes to the history. It reports whether some
// unrecorded buy answered unavailable (then it may land any time, and a
// gap it opened never ends) and how many unrecorded buys may have written
// (a busy machine's timeouts can open breakers, which then refuse all).
func raceBuys(t *testing.T, l *lab.Lab, store inventory.Store, sku string, n int, recorded func(i int) bool) (unrecordedUnavailable bool, unrecordedWrites int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range n {
		wg.Go(func() {
			ctx := context.Background()
			rec := recorded(i)
			if !rec {
				ctx = lab.WithOpRecording(ctx, lab.OpRecording{SkipHistory: true, SkipPublish: true})
			}
			o, err := l.Buy(ctx, store, sku, l.Regions()[i%len(l.Regions())], 1)
			if err != nil {
				t.Errorf("buy: %v", err)
				return
			}
			if !rec {
				wrote, mayLand := history.MayWrite(inventory.Operation{Store: store, Op: inventory.OpBuy, Outcome: o.Outcome})
				mu.Lock()
				unrecordedUnavailable = unrecordedUnavailable || mayLand
				if wrote {
					unrecordedWrites++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return unrecordedUnavailable, unrecordedWrites
}

// TestUnrecordedWritesNeverAccuse: recorded and unrecorded buys of one SKU
// race on the consensus and geo stores — recorded first, then a "budget"
// spent mid-flight, then unrecorded only (a load's way); on another SKU,
// unrecorded first and recorded after a restock (an unsampled SKU a
// learner clicks later). Every verdict is linearizable, says where it was
// cut, and the memory export judged from the file gives the same verdicts.
func TestUnrecordedWritesNeverAccuse(t *testing.T) {
	l := newLab(t, lab.Config{})
	for _, store := range []inventory.Store{inventory.Consensus, inventory.Geo} {
		stockUntilOK(t, l, store, "BUDGET", 1000)
		// The budget: the first 40 buys by dispatch are recorded, then none.
		var n int64
		var mu sync.Mutex
		_, budgetWrites := raceBuys(t, l, store, "BUDGET", 120, func(int) bool { mu.Lock(); defer mu.Unlock(); n++; return n <= 40 })

		// The unsampled SKU: driven unrecorded, then restocked and bought,
		// recorded.
		ctx := lab.WithOpRecording(context.Background(), lab.OpRecording{SkipHistory: true, SkipPublish: true})
		o, err := l.Stock(ctx, store, "UNSAMPLED", "us-east-1", 50)
		if err != nil {
			t.Fatal(err)
		}
		stockWrote, stockLate := history.MayWrite(inventory.Operation{Store: store, Op: inventory.OpStock, Outcome: o.Outcome})
		late, unsampledWrites := raceBuys(t, l, store, "UNSAMPLED", 30, func(int) bool { return false })
		late = late || stockLate
		if stockWrote {
			unsampledWrites++
		}
		stockUntilOK(t, l, store, "UNSAMPLED", 9)
		raceBuys(t, l, store, "UNSAMPLED", 6, func(int) bool { return true })

		for _, sku := range []string{"BUDGET", "UNSAMPLED"} {
			writes := map[string]int{"BUDGET": budgetWrites, "UNSAMPLED": unsampledWrites}[sku]
			res, err := l.Check(store, sku)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %s: %s", store, sku, res.Explanation)
			if !res.Linearizable {
				t.Fatalf("%s %s judged not linearizable: %s (cuts %+v)", store, sku, res.Explanation, res.Cuts)
			}
			if writes == 0 {
				t.Logf("%s %s: no unrecorded write got through (refused on a busy machine): nothing to cut", store, sku)
				continue
			}
			if len(res.Cuts) == 0 || !strings.Contains(res.Explanation, "Judged "+sku+"'s first") {
				t.Errorf("%s %s: %d unrecorded writes, no cut named: %+v", store, sku, writes, res)
				continue
			}
			if sku == "UNSAMPLED" && !late && (res.Operations == 0 || res.Cuts[0].Resumed.IsZero()) {
				t.Errorf("%s UNSAMPLED: judging did not resume at the restock: %+v", store, res)
			}
		}
	}
	compareMemoryExport(t, l)
}

// stockUntilOK stocks sku until the store answers ok (within 30 s): a
// burst of concurrent buys on a busy machine (the race detector's) can
// time out and open a region's breaker for its cool-down.
func stockUntilOK(t *testing.T, l *lab.Lab, store inventory.Store, sku string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		o, err := l.Stock(ctxT(t, 30*time.Second), store, sku, l.Leader(), n)
		if mustOutcome(t, o, err).Outcome == inventory.OK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stock %s %s: %s (%s)", store, sku, o.Outcome, o.Message)
		}
		time.Sleep(200 * time.Millisecond) // a breaker's cool-down is 1 s here
	}
}

// TestHistoryCapWithBuysInFlight: the History fills up while buys are in
// flight; those past the cap are noted as a gap at their call, so the
// verdict stays linearizable and says the history was full.
func TestHistoryCapWithBuysInFlight(t *testing.T) {
	l := newLab(t, lab.Config{})
	stock(t, l, inventory.Consensus, "us-east-1", 1000)
	t0 := time.Now()
	for range history.MaxOperations - 30 {
		lab.HistoryOf(l).AddOperation(inventory.Operation{Store: inventory.Replicated, SKU: "FILL", Op: inventory.OpRead, Outcome: inventory.OK, Call: t0, Return: t0})
	}
	raceBuys(t, l, inventory.Consensus, "IPHONE", 90, func(int) bool { return true })
	res, err := l.Check(inventory.Consensus, "IPHONE")
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Explanation)
	if !res.Linearizable || res.Unjudged == 0 {
		t.Fatalf("past the cap: %+v", res)
	}
	changed := false // a buy past the cap that may have written (a busy machine's breakers may refuse them all)
	for _, g := range lab.GapsOf(l).Snapshot(inventory.Consensus, "IPHONE") {
		changed = changed || !g.Harmless()
	}
	if changed && (len(res.Cuts) == 0 || res.Cuts[0].Reason != inventory.GapHistoryFull || !strings.Contains(res.Explanation, "history was full")) {
		t.Errorf("writes past the cap, yet the verdict names no cut at the full history: %+v", res)
	}
	compareMemoryExport(t, l)
}

// compareMemoryExport writes the lab's memory export, reads it back and
// judges every (store, SKU) in it: the same verdicts as Check, but for the
// geo store's live figures.
func compareMemoryExport(t *testing.T, l *lab.Lab) {
	t.Helper()
	var b bytes.Buffer
	if err := l.Export(&b, audit.FormatJSONL, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	h, err := audit.ReadHistory(&b, "export.jsonl", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range h.Subjects() {
		if s.SKU == "FILL" {
			continue
		}
		want, err := l.Check(s.Store, s.SKU)
		if err != nil {
			t.Fatal(err)
		}
		got := check.Judge(h.Recorded(s.Store, s.SKU), s.Store, s.SKU, time.Minute)
		if want.Geo != nil {
			g := *want.Geo
			g.Conservation, g.AuditError, g.Stranded, g.Borrowed = nil, "", 0, 0
			want.Geo = &g
		}
		for _, r := range []*check.Result{&want, &got} {
			for i := range r.Cuts {
				r.Cuts[i].At, r.Cuts[i].Resumed = r.Cuts[i].At.Round(0).UTC(), r.Cuts[i].Resumed.Round(0).UTC()
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v: from the export\n %+v\nfrom the lab\n %+v", s, got, want)
		}
	}
}
