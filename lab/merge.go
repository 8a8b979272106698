package lab

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// The replicated store's merge, made visible: after a heal its copies
// converge (last writer wins), and a sale that both sides of a partition
// made from the same count is lost. Once the copies agree, the lab records
// a FaultMerge naming the value every region now reads and each sale the
// merge lost — a fault, so the live page and the history (a late viewer)
// say the same.

// FaultMerge records that the replicated store's copies of one SKU merged
// after a heal and lost sales; its Detail is the sentence.
const FaultMerge FaultKind = "merge"

// mergeWatch remembers which merges were told, so that two heals in a row
// tell one merge once.
type mergeWatch struct {
	mu   sync.Mutex
	told map[string]Version // SKU → winning version told
}

// watchMerge waits (in the background, bounded) for the replicated
// store's copies to agree after a heal and records the merges that lost
// sales.
func (l *Lab) watchMerge() {
	if l.closed.Load() {
		return
	}
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 4*max(l.cfg.RequestTimeout, time.Second))
		defer cancel()
		go func() { // Close ends the wait
			select {
			case <-l.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := l.WaitConverged(ctx); err != nil {
			return
		}
		// Only what people did (a load's operations keep no words): a
		// load's thousand SKUs are the load panel's to count.
		ops := l.history.Select(Replicated, "", func(op *Operation) bool { return op.Message != "" })
		for _, m := range LostSales(ops) {
			l.merges.mu.Lock()
			if l.merges.told == nil {
				l.merges.told = map[string]Version{}
			}
			if v, ok := l.merges.told[m.SKU]; ok && v == m.Winner.Version {
				l.merges.mu.Unlock()
				continue
			}
			l.merges.told[m.SKU] = m.Winner.Version
			l.merges.mu.Unlock()
			var regions []string
			for _, o := range m.Sales {
				if !slices.Contains(regions, o.Region) {
					regions = append(regions, o.Region)
				}
			}
			l.fault(FaultMerge, regions, m.Sentence())
		}
	}()
}

// MergeLoss is the replicated store's copies of one SKU agreeing again:
// Winner is the write whose version stands (last writer wins), Sales the
// sales it overwrote without having seen them.
type MergeLoss struct {
	SKU    string
	Winner Operation
	Sales  []Operation
}

// Sentence tells the merge for a learner.
func (m MergeLoss) Sentence() string {
	lost := make([]string, len(m.Sales))
	for i, o := range m.Sales {
		lost[i] = fmt.Sprintf("%s's sale of %s at %s", CityName(o.Region), units(max(1, o.Qty)), o.Return.Format("15:04:05"))
	}
	n := "a sale was"
	if len(m.Sales) > 1 {
		n = fmt.Sprintf("%d sales were", len(m.Sales))
	}
	return fmt.Sprintf("The replicated store's copies merged: every region now reads %d %s. Last writer wins kept %s's write, so %s lost: %s.",
		m.Winner.Quantity, m.SKU, CityName(m.Winner.Region), n, joinAnd(lost))
}

// LostSales finds, per SKU in ops (the replicated store's, oldest first),
// the sales that the version standing now does not build on: since the
// SKU's last stock, the ok writes form chains (each buy's BaseVersion is
// the version it read); the newest version's chain is what every copy
// keeps, and an ok buy off that chain was lost. Pure: the history alone.
func LostSales(ops []Operation) []MergeLoss {
	bySKU := map[string][]Operation{}
	var skus []string
	for _, op := range ops {
		if op.Store != Replicated || op.Outcome != OK || op.Version.IsZero() || (op.Op != OpBuy && op.Op != OpStock) {
			continue
		}
		if _, seen := bySKU[op.SKU]; !seen {
			skus = append(skus, op.SKU)
		}
		if op.Op == OpStock {
			bySKU[op.SKU] = nil // a restock starts the count afresh
		}
		bySKU[op.SKU] = append(bySKU[op.SKU], op)
	}
	var out []MergeLoss
	for _, sku := range skus {
		writes := bySKU[sku]
		if len(writes) < 2 {
			continue
		}
		byVersion := map[Version]Operation{}
		win := writes[0]
		for _, w := range writes {
			byVersion[w.Version] = w
			if win.Version.Less(w.Version) {
				win = w
			}
		}
		kept := map[Version]bool{}
		for v, ok := win.Version, true; ok && !kept[v]; {
			kept[v] = true
			var w Operation
			if w, ok = byVersion[v]; ok && w.Op == OpBuy {
				v = w.BaseVersion
			} else {
				ok = false
			}
		}
		m := MergeLoss{SKU: sku, Winner: win}
		for _, w := range writes {
			if w.Op == OpBuy && !kept[w.Version] {
				m.Sales = append(m.Sales, w)
			}
		}
		if len(m.Sales) > 0 {
			out = append(out, m)
		}
	}
	return out
}
