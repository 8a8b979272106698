package lab_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/audit"
	"caplab/lab/inventory"
)

// TestGroupCommitHotSKU: closed-loop buyers in every region on one SKU
// with group commit on. Exactly the stock is sold, every other buy is
// sold out (no conflict: the regions' batches retry on the count their
// lost compare read), buys shared Txns (fewer Raft rounds than units
// sold), the History says which (Batch), and the checker calls it
// linearizable with no lost update — its rule counts commits, not buys.
func TestGroupCommitHotSKU(t *testing.T) {
	// A deadline far beyond a starved machine's stalls: the test is about
	// what batches answer, not about deadlines (a CI run at load average
	// 12 timed out 15 buys at 1 s, whose breaker then failed the rest fast).
	l := newLab(t, lab.Config{LatencyScale: 0.05, RequestTimeout: 20 * time.Second})
	l.Faults().SetGroupCommit(true)
	if !l.State().Consensus.GroupCommit {
		t.Fatal("State.consensus.groupCommit is false after SetGroupCommit(true)")
	}
	const units, perRegion = 150, 8
	stock(t, l, inventory.Consensus, "us-east-1", units)
	rounds0, sold0 := lab.ConsensusOf(l).Rounds()

	var mu sync.Mutex
	kinds := map[inventory.Kind]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, r := range l.Regions() {
		for range perRegion {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for {
					o, err := l.Buy(ctxT(t, 30*time.Second), inventory.Consensus, "IPHONE", r, 1)
					if err != nil {
						t.Errorf("buy refused: %v", err)
						return
					}
					mu.Lock()
					kinds[o.Outcome]++
					mu.Unlock()
					if o.Outcome != inventory.OK {
						return
					}
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	if kinds[inventory.OK] != units || kinds[inventory.SoldOut] != perRegion*len(l.Regions()) || len(kinds) != 2 {
		t.Errorf("outcomes %v: want %d ok and one sold_out per buyer (%d), nothing else", kinds, units, perRegion*len(l.Regions()))
	}
	rounds, sold := lab.ConsensusOf(l).Rounds()
	rounds, sold = rounds-rounds0, sold-sold0
	t.Logf("%d units sold in %d Txns (%.2f rounds per unit); outcomes %v", sold, rounds, float64(rounds)/float64(sold), kinds)
	if sold != units {
		t.Errorf("the store counted %d units sold, want %d", sold, units)
	}
	if rounds >= sold {
		t.Errorf("%d Txns for %d units sold: group commit shared no Txn", rounds, sold)
	}
	shared := 0
	for _, op := range l.Recorded(inventory.Consensus, "IPHONE").Operations {
		if op.Op != inventory.OpBuy || op.Outcome != inventory.OK {
			continue
		}
		b := op.Batch
		if b.Size == 0 || b.Commit != op.Version.Wall || b.Position >= b.Size {
			t.Fatalf("buy %d: batch %+v does not name its commit (version %v)", op.ID, b, op.Version)
		}
		if b.Size > 1 {
			shared++
		}
	}
	if shared == 0 {
		t.Error("no recorded buy shared a commit")
	}
	// The export carries it (JSON Lines, as the audit log writes operations).
	var exp strings.Builder
	if err := l.Export(&exp, audit.FormatJSONL, audit.Filter{Store: inventory.Consensus, SKU: "IPHONE"}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(exp.String(), `"batch":{"commit":`); n < shared {
		t.Errorf("the export carries %d batches, want at least the %d shared ones", n, shared)
	}
	res, err := l.Check(inventory.Consensus, "IPHONE")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checker: %s (%d buys shared a Txn)", res.Explanation, shared)
	if !res.Linearizable || res.Oversold != 0 || res.LostUpdates != 0 || res.SoldUnits != units {
		t.Errorf("checker: %+v", res)
	}
}

// TestGroupCommitOffIsOneTxnPerBuy: with group commit off, every buy is
// its own compare-and-swap (no Batch in the History), as before.
func TestGroupCommitOffIsOneTxnPerBuy(t *testing.T) {
	l := newLab(t, lab.Config{RequestTimeout: 20 * time.Second}) // no buy may time out before its Txn
	l.Faults().SetGroupCommit(false)
	stock(t, l, inventory.Consensus, "us-east-1", 10)
	rounds0, _ := lab.ConsensusOf(l).Rounds()
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buy(t, l, inventory.Consensus, "us-east-1")
		}()
	}
	wg.Wait()
	rounds, _ := lab.ConsensusOf(l).Rounds()
	if rounds-rounds0 < 6 {
		t.Errorf("%d Txns for 6 buys with group commit off", rounds-rounds0)
	}
	for _, op := range l.Recorded(inventory.Consensus, "IPHONE").Operations {
		if op.Batch != (inventory.Batch{}) {
			t.Errorf("buy %d carries a batch %+v with group commit off", op.ID, op.Batch)
		}
	}
	if st := l.State(); st.Consensus.GroupCommit {
		t.Error("State says group commit is on")
	}
}

// TestGroupCommitAcrossSKUs: closed-loop buyers in every region on four
// SKUs at once with group commit on. A region's Txn carries buys of
// several SKUs (one compare-and-set each, nested), so buys of different
// SKUs share a commit revision; every SKU sells exactly its stock, each
// buyer ends on sold out (no conflict: a SKU whose compare lost goes
// again on what it read, without holding back the others), there are
// fewer Txns than units sold, and the checker calls every SKU
// linearizable with no lost update.
func TestGroupCommitAcrossSKUs(t *testing.T) {
	l := newLab(t, lab.Config{LatencyScale: 0.05, RequestTimeout: 20 * time.Second})
	l.Faults().SetGroupCommit(true)
	skus := []string{"IPHONE", "PIXEL", "GALAXY", "XPERIA"}
	const units, perRegionAndSKU = 40, 3
	waitLeaderAt(t, l, "us-east-1")
	for _, sku := range skus {
		stockUntilOK(t, l, inventory.Consensus, sku, units)
	}
	rounds0, sold0 := lab.ConsensusOf(l).Rounds()

	var mu sync.Mutex
	kinds := map[string]map[inventory.Kind]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, r := range l.Regions() {
		for _, sku := range skus {
			kinds[sku] = map[inventory.Kind]int{}
			for range perRegionAndSKU {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for {
						o, err := l.Buy(ctxT(t, 30*time.Second), inventory.Consensus, sku, r, 1)
						if err != nil {
							t.Errorf("buy refused: %v", err)
							return
						}
						mu.Lock()
						kinds[sku][o.Outcome]++
						mu.Unlock()
						if o.Outcome != inventory.OK {
							return
						}
					}
				}()
			}
		}
	}
	close(start)
	wg.Wait()
	buyers := perRegionAndSKU * len(l.Regions())
	for _, sku := range skus {
		k := kinds[sku]
		if k[inventory.OK] != units || k[inventory.SoldOut] != buyers || len(k) != 2 {
			t.Errorf("%s: outcomes %v, want %d ok and one sold_out per buyer (%d), nothing else", sku, k, units, buyers)
		}
	}
	rounds, sold := lab.ConsensusOf(l).Rounds()
	rounds, sold = rounds-rounds0, sold-sold0
	t.Logf("%d units of %d SKUs sold in %d Txns (%.2f rounds per unit)", sold, len(skus), rounds, float64(rounds)/float64(sold))
	if sold != units*int64(len(skus)) {
		t.Errorf("the store counted %d units sold, want %d", sold, units*len(skus))
	}
	if rounds >= sold {
		t.Errorf("%d Txns for %d units sold: group commit shared no Txn", rounds, sold)
	}
	// Commits shared across SKUs: the same revision answered buys of
	// different SKUs.
	skusAt := map[int64]map[string]bool{}
	for _, sku := range skus {
		for _, op := range l.Recorded(inventory.Consensus, sku).Operations {
			if op.Op != inventory.OpBuy || op.Outcome != inventory.OK {
				continue
			}
			if op.Batch.Commit != op.Version.Wall || op.Batch.Size == 0 {
				t.Fatalf("%s buy %d: batch %+v does not name its commit (version %v)", sku, op.ID, op.Batch, op.Version)
			}
			if skusAt[op.Batch.Commit] == nil {
				skusAt[op.Batch.Commit] = map[string]bool{}
			}
			skusAt[op.Batch.Commit][sku] = true
		}
	}
	across := 0
	for _, s := range skusAt {
		if len(s) > 1 {
			across++
		}
	}
	t.Logf("%d of %d commits carried buys of more than one SKU", across, len(skusAt))
	if across == 0 {
		t.Error("no commit carried buys of more than one SKU")
	}
	for _, sku := range skus {
		res, err := l.Check(inventory.Consensus, sku)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Linearizable || res.Oversold != 0 || res.LostUpdates != 0 || res.SoldUnits != units {
			t.Errorf("checker on %s: %+v", sku, res)
		}
	}
}
