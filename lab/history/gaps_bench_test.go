package history_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"caplab/lab/history"
	"caplab/lab/inventory"
)

// BenchmarkRecordingGaps: what the gap ledger adds to an operation's hot
// path (gaps.go) — a recorded operation announces itself at its call
// (recordedBegin); an unrecorded stock or buy opens or joins its SKU's gap
// and ends it at its return (begin + end) — on 10,000 SKUs from every
// core at once, and the heap one tracked (store, SKU) costs.
//
//	go test ./lab -run '^$' -bench RecordingGaps -benchtime 2s
func BenchmarkRecordingGaps(b *testing.B) {
	const skus = 10_000
	names := make([]string, skus)
	for i := range names {
		names[i] = fmt.Sprintf("BF-%06d", i)
	}
	b.Run("recorded", func(b *testing.B) {
		g := history.NewGaps(nil)
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				g.RecordedBegin(inventory.Consensus, names[i%skus], inventory.OpBuy, time.Now())
			}
		})
	})
	b.Run("unrecorded", func(b *testing.B) {
		g := history.NewGaps(nil)
		var n atomic.Int64
		op := inventory.Operation{Store: inventory.Consensus, Op: inventory.OpBuy, Outcome: inventory.OK}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				now := time.Now()
				tok := g.Begin(inventory.Consensus, names[i%skus], now, inventory.GapSkipped)
				wrote, mayLand := history.MayWrite(op)
				g.End(tok, now, wrote, mayLand)
			}
		})
	})
	b.Run("bytes-per-sku", func(b *testing.B) {
		for range b.N {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			g := history.NewGaps(nil)
			now := time.Now()
			for _, s := range names {
				g.End(g.Begin(inventory.Consensus, s, now, inventory.GapSkipped), now, true, false)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/skus, "B/sku")
			runtime.KeepAlive(g)
		}
	})
}
