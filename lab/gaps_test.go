package lab

import (
	"fmt"
	"testing"
)

// TestRecordingGaps: the ledger's rules, one by one.
func TestRecordingGaps(t *testing.T) {
	var heard []RecordingGap
	g := newRecordingGaps(func(x RecordingGap) { heard = append(heard, x) })
	ok := Operation{Store: Consensus, Op: OpBuy, Outcome: OK}
	end := func(tok gapToken, ms int64, op Operation) {
		wrote, mayLand := mayWrite(op)
		g.end(tok, ckMs(ms), wrote, mayLand)
	}
	one := func(sku string) RecordingGap {
		t.Helper()
		gs := g.snapshot(Consensus, sku)
		if len(gs) != 1 {
			t.Fatalf("%s: gaps %+v, want one", sku, gs)
		}
		return gs[0]
	}

	// From is the earliest call, even when a later call begins first; To
	// once every write returned; no recorder hears of a key with no
	// recorded operation.
	a := g.begin(Consensus, "A", ckMs(20), GapSkipped)
	b := g.begin(Consensus, "A", ckMs(10), GapSkipped)
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
	end(g.begin(Consensus, "A", ckMs(40), GapSkipped), 45, ok)
	if x := one("A"); !x.To.Equal(ckMs(45)) || x.Writes != 3 {
		t.Errorf("joined: %+v", x)
	}
	g.recordedBegin(Consensus, "A", OpStock, ckMs(50))
	if len(heard) != 1 || heard[0].Writes != 3 {
		t.Errorf("the first recorded operation did not hear the gap: %+v", heard)
	}
	end(g.begin(Consensus, "A", ckMs(60), GapSkipped), 65, ok)
	if gs := g.snapshot(Consensus, "A"); len(gs) != 2 || !gs[1].From.Equal(ckMs(60)) {
		t.Errorf("after a recorded stock: %+v", gs)
	}
	if n := len(heard); n < 2 || !heard[n-1].From.Equal(ckMs(60)) {
		t.Errorf("a new gap on a recorded key is heard at once: %+v", heard)
	}

	// Unavailable: the gap never ends. Refused writes only: it changed
	// nothing.
	end(g.begin(Consensus, "B", ckMs(0), GapSkipped), 5, Operation{Store: Consensus, Op: OpBuy, Outcome: Unavailable})
	end(g.begin(Consensus, "B", ckMs(6), GapSkipped), 7, ok)
	if x := one("B"); x.Ended() {
		t.Errorf("a write that may still land ended its gap: %+v", x)
	}
	for _, k := range []Kind{SoldOut, Conflict, FailFast, Overloaded} {
		end(g.begin(Consensus, "C", ckMs(0), GapSkipped), 5, Operation{Store: Consensus, Op: OpBuy, Outcome: k})
	}
	if x := one("C"); !x.Harmless() {
		t.Errorf("refused writes only: %+v", x)
	}
	// The geo store's refused buys may have moved units: they count.
	if w, _ := mayWrite(Operation{Store: Geo, Op: OpBuy, Outcome: SoldOut}); !w {
		t.Error("a geo sold-out buy may have written (a borrowed transfer)")
	}

	// Past maxGapsPerKey the newest merge.
	for i := range maxGapsPerKey + 3 {
		g.recordedBegin(Consensus, "D", OpStock, ckMs(int64(100*i)))
		end(g.begin(Consensus, "D", ckMs(int64(100*i+10)), GapSkipped), int64(100*i+20), ok)
	}
	tok := g.begin(Consensus, "D", ckMs(5_000), GapSkipped)
	if gs := g.snapshot(Consensus, "D"); len(gs) != maxGapsPerKey || gs[len(gs)-1].Ended() {
		t.Errorf("%d gaps (the last %+v), want %d, the last open", len(gs), gs[len(gs)-1], maxGapsPerKey)
	}
	end(tok, 5_010, ok)
	for _, x := range g.snapshot(Consensus, "D") {
		if !x.Ended() {
			t.Errorf("a gap never ended though every write returned: %+v", x)
		}
	}

	// Past maxKeys, one store-wide gap stands for every other SKU.
	g.maxKeys = g.keys.Load() + 2
	for i := range 5 {
		end(g.begin(Replicated, fmt.Sprint("E", i), ckMs(int64(i)), GapSkipped), 10, Operation{Store: Replicated, Op: OpBuy, Outcome: OK})
	}
	wide := g.snapshot(Replicated, "E4")
	if len(wide) != 1 || wide[0].SKU != "" || wide[0].Reason != GapTooManySKUs || !wide[0].From.Equal(ckMs(2)) {
		t.Errorf("past the cap: %+v", wide)
	}
	if x := g.snapshot(Replicated, "E0"); len(x) != 2 {
		t.Errorf("a tracked SKU also lies under the store-wide gap: %+v", x)
	}

	g.clear()
	if x := g.snapshot(Consensus, "A"); len(x) != 0 || g.keys.Load() != 0 {
		t.Errorf("after clear: %+v", x)
	}
}
