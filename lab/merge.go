package lab

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"caplab/lab/guard"
	"caplab/lab/history"
	"caplab/lab/inventory"
)

// The replicated store's merge, made visible: after a heal its copies
// converge (last writer wins), and a sale that both sides of a partition
// made from the same count is lost. Once the copies agree, the lab records
// a FaultMerge naming the value every region now reads and each sale the
// merge lost — a fault, so the live page and the history (a late viewer)
// say the same.

// mergeWatch tells the replicated store's merges after heals. It
// remembers which merges were told, so that two heals in a row tell one
// merge once.
type mergeWatch struct {
	gate     *guard.Gate // closed: no more watches
	bg       *sync.WaitGroup
	stop     <-chan struct{}
	timeout  time.Duration // the request deadline
	history  *history.History
	converge func(context.Context) error // Lab.WaitConverged
	happened func(kind inventory.FaultKind, regions []string, detail string, act *RecordedAction)

	mu   sync.Mutex
	told map[string]inventory.Version // SKU → winning version told
}

// watch waits (in the background, bounded) for the replicated store's
// copies to agree after a heal and records the merges that lost sales.
func (m *mergeWatch) watch() {
	if m.gate.Closed() {
		return
	}
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 4*max(m.timeout, time.Second))
		defer cancel()
		go func() { // Close ends the wait
			select {
			case <-m.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := m.converge(ctx); err != nil {
			return
		}
		// Only what people did (a load's operations keep no words): a
		// load's thousand SKUs are the load panel's to count.
		ops := m.history.Select(inventory.Replicated, "", func(op *inventory.Operation) bool { return op.Message != "" })
		for _, loss := range LostSales(ops) {
			m.mu.Lock()
			if m.told == nil {
				m.told = map[string]inventory.Version{}
			}
			if v, ok := m.told[loss.SKU]; ok && v == loss.Winner.Version {
				m.mu.Unlock()
				continue
			}
			m.told[loss.SKU] = loss.Winner.Version
			m.mu.Unlock()
			var regions []string
			for _, o := range loss.Sales {
				if !slices.Contains(regions, o.Region) {
					regions = append(regions, o.Region)
				}
			}
			m.happened(inventory.FaultMerge, regions, loss.Sentence(), nil)
		}
	}()
}

// MergeLoss is the replicated store's copies of one SKU agreeing again:
// Winner is the write whose version stands (last writer wins), Sales the
// sales it overwrote without having seen them.
type MergeLoss struct {
	SKU    string
	Winner inventory.Operation
	Sales  []inventory.Operation
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
func LostSales(ops []inventory.Operation) []MergeLoss {
	bySKU := map[string][]inventory.Operation{}
	var skus []string
	for _, op := range ops {
		if op.Store != inventory.Replicated || op.Outcome != inventory.OK || op.Version.IsZero() || (op.Op != inventory.OpBuy && op.Op != inventory.OpStock) {
			continue
		}
		if _, seen := bySKU[op.SKU]; !seen {
			skus = append(skus, op.SKU)
		}
		if op.Op == inventory.OpStock {
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
		byVersion := map[inventory.Version]inventory.Operation{}
		win := writes[0]
		for _, w := range writes {
			byVersion[w.Version] = w
			if win.Version.Less(w.Version) {
				win = w
			}
		}
		kept := map[inventory.Version]bool{}
		for v, ok := win.Version, true; ok && !kept[v]; {
			kept[v] = true
			var w inventory.Operation
			if w, ok = byVersion[v]; ok && w.Op == inventory.OpBuy {
				v = w.BaseVersion
			} else {
				ok = false
			}
		}
		m := MergeLoss{SKU: sku, Winner: win}
		for _, w := range writes {
			if w.Op == inventory.OpBuy && !kept[w.Version] {
				m.Sales = append(m.Sales, w)
			}
		}
		if len(m.Sales) > 0 {
			out = append(out, m)
		}
	}
	return out
}
