package history_test

import (
	"fmt"
	"testing"
	"time"

	"caplab/lab/history"
	"caplab/lab/inventory"
)

// TestRecordingGaps: the ledger's rules, one by one.
func TestRecordingGaps(t *testing.T) {
	var heard []inventory.RecordingGap
	g := history.NewGaps(func(x inventory.RecordingGap) { heard = append(heard, x) })
	ok := inventory.Operation{Store: inventory.Consensus, Op: inventory.OpBuy, Outcome: inventory.OK}
	end := func(tok history.GapToken, ms int64, op inventory.Operation) {
		wrote, mayLand := history.MayWrite(op)
		g.End(tok, ckMs(ms), wrote, mayLand)
	}
	one := func(sku string) inventory.RecordingGap {
		t.Helper()
		gs := g.Snapshot(inventory.Consensus, sku)
		if len(gs) != 1 {
			t.Fatalf("%s: gaps %+v, want one", sku, gs)
		}
		return gs[0]
	}

	// From is the earliest call, even when a later call begins first; To
	// once every write returned; no recorder hears of a key with no
	// recorded operation.
	a := g.Begin(inventory.Consensus, "A", ckMs(20), inventory.GapSkipped)
	b := g.Begin(inventory.Consensus, "A", ckMs(10), inventory.GapSkipped)
	if x := one("A"); !x.From.Equal(ckMs(10)) || x.Ended() {
		t.Errorf("two in flight: %+v", x)
	}
	end(a, 30, ok)
	end(b, 25, ok)
	if x := one("A"); !x.To.Equal(ckMs(30)) || x.Writes != 2 {
		t.Errorf("both returned: %+v", x)
	}
	if len(heard) != 0 {
		t.Errorf("recorders heard of an unrecorded key: %+v", heard)
	}

	// Without a recorded stock after it, the next write joins the gap; after
	// one, it opens a new one.
	end(g.Begin(inventory.Consensus, "A", ckMs(40), inventory.GapSkipped), 45, ok)
	if x := one("A"); !x.To.Equal(ckMs(45)) || x.Writes != 3 {
		t.Errorf("joined: %+v", x)
	}
	g.RecordedBegin(inventory.Consensus, "A", inventory.OpStock, ckMs(50))
	if len(heard) != 1 || heard[0].Writes != 3 {
		t.Errorf("the first recorded operation did not hear the gap: %+v", heard)
	}
	end(g.Begin(inventory.Consensus, "A", ckMs(60), inventory.GapSkipped), 65, ok)
	if gs := g.Snapshot(inventory.Consensus, "A"); len(gs) != 2 || !gs[1].From.Equal(ckMs(60)) {
		t.Errorf("after a recorded stock: %+v", gs)
	}
	if n := len(heard); n < 2 || !heard[n-1].From.Equal(ckMs(60)) {
		t.Errorf("a new gap on a recorded key is heard at once: %+v", heard)
	}

	// Unavailable: the gap never ends. Refused writes only: it changed
	// nothing.
	end(g.Begin(inventory.Consensus, "B", ckMs(0), inventory.GapSkipped), 5, inventory.Operation{Store: inventory.Consensus, Op: inventory.OpBuy, Outcome: inventory.Unavailable})
	end(g.Begin(inventory.Consensus, "B", ckMs(6), inventory.GapSkipped), 7, ok)
	if x := one("B"); x.Ended() {
		t.Errorf("a write that may still land ended its gap: %+v", x)
	}
	for _, k := range []inventory.Kind{inventory.SoldOut, inventory.Conflict, inventory.FailFast, inventory.Overloaded} {
		end(g.Begin(inventory.Consensus, "C", ckMs(0), inventory.GapSkipped), 5, inventory.Operation{Store: inventory.Consensus, Op: inventory.OpBuy, Outcome: k})
	}
	if x := one("C"); !x.Harmless() {
		t.Errorf("refused writes only: %+v", x)
	}
	// The geo store's refused buys may have moved units: they count.
	if w, _ := history.MayWrite(inventory.Operation{Store: inventory.Geo, Op: inventory.OpBuy, Outcome: inventory.SoldOut}); !w {
		t.Error("a geo sold-out buy may have written (a borrowed transfer)")
	}

	// Past maxGapsPerKey the newest merge.
	for i := range history.MaxGapsPerKey + 3 {
		g.RecordedBegin(inventory.Consensus, "D", inventory.OpStock, ckMs(int64(100*i)))
		end(g.Begin(inventory.Consensus, "D", ckMs(int64(100*i+10)), inventory.GapSkipped), int64(100*i+20), ok)
	}
	tok := g.Begin(inventory.Consensus, "D", ckMs(5_000), inventory.GapSkipped)
	if gs := g.Snapshot(inventory.Consensus, "D"); len(gs) != history.MaxGapsPerKey || gs[len(gs)-1].Ended() {
		t.Errorf("%d gaps (the last %+v), want %d, the last open", len(gs), gs[len(gs)-1], history.MaxGapsPerKey)
	}
	end(tok, 5_010, ok)
	for _, x := range g.Snapshot(inventory.Consensus, "D") {
		if !x.Ended() {
			t.Errorf("a gap never ended though every write returned: %+v", x)
		}
	}

	// Past maxKeys, one store-wide gap stands for every other SKU.
	history.LimitGapKeys(g, 2)
	for i := range 5 {
		end(g.Begin(inventory.Replicated, fmt.Sprint("E", i), ckMs(int64(i)), inventory.GapSkipped), 10, inventory.Operation{Store: inventory.Replicated, Op: inventory.OpBuy, Outcome: inventory.OK})
	}
	wide := g.Snapshot(inventory.Replicated, "E4")
	if len(wide) != 1 || wide[0].SKU != "" || wide[0].Reason != inventory.GapTooManySKUs || !wide[0].From.Equal(ckMs(2)) {
		t.Errorf("past the cap: %+v", wide)
	}
	if x := g.Snapshot(inventory.Replicated, "E0"); len(x) != 2 {
		t.Errorf("a tracked SKU also lies under the store-wide gap: %+v", x)
	}

	g.Clear()
	if x := g.Snapshot(inventory.Consensus, "A"); len(x) != 0 || history.GapKeys(g) != 0 {
		t.Errorf("after clear: %+v", x)
	}
}

var ckEpoch = time.Unix(1_700_000_000, 0)

// ckMs is a time ms milliseconds after a fixed epoch.
func ckMs(ms int64) time.Time { return ckEpoch.Add(time.Duration(ms) * time.Millisecond) }
