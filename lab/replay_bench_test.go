package lab_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/history"
	"caplab/lab/inventory"
)

// BenchmarkMomentAt: rebuilding the State at a moment 10,000 operations
// back — what GET /api/state?at=T does after reading the History: a
// copy of every recorded operation and fault (History.View), then
// MomentAt ("moment"), beside the copy alone ("view", the baseline: what
// GET /api/history costs). Histories of 10,000 operations (the moment is
// the start) and of 100,000 (the History's cap), with a fault every 100
// operations and a shop's words on every tenth. Each reports CPU time per
// op beside the wall time (CPU counts the garbage collector's share too,
// on every thread). docs/benchmarks.md has the figures.
//
//	go test ./lab -run '^$' -bench MomentAt -benchmem
func BenchmarkMomentAt(b *testing.B) {
	for _, n := range []int{10_000, history.MaxOperations} {
		b.Run(fmt.Sprintf("ops=%d", n), func(b *testing.B) {
			h := history.New()
			live := liveState()
			start := lab.NetOf(live, nil)
			cut := lab.NetOf(cutSingapore(live), start)
			healed := lab.NetOf(live, start)
			regions := []string{"us-east-1", "eu-west-1", "ap-southeast-1"}
			stores := []inventory.Store{inventory.Consensus, inventory.Replicated, inventory.Geo}
			t0 := time.Now()
			var back time.Time // the moment 10,000 operations before the end
			for i := range n {
				call := t0.Add(time.Duration(i) * time.Millisecond)
				op := inventory.Operation{Store: stores[i%3], SKU: fmt.Sprintf("SKU-%d", i%50), Region: regions[i%3], Op: inventory.OpBuy, Qty: 1,
					Outcome: inventory.OK, Quantity: 5, Call: call, Return: call.Add(3 * time.Millisecond)}
				if i%10 == 0 {
					op.Message = "Sold 1, 5 left."
				}
				h.AddOperation(op)
				if i%100 == 0 {
					f := inventory.Fault{Kind: inventory.FaultPartition, At: call, Net: cut}
					if i%200 == 0 {
						f = inventory.Fault{Kind: inventory.FaultHeal, At: call, Net: healed}
					}
					h.AddFault(f)
				}
				if i == n-10_000 {
					back = call.Add(3 * time.Millisecond) // its answer
				}
			}
			now := t0.Add(time.Duration(n+10) * time.Millisecond)
			// The baseline: the History's copy alone (GET /api/history's cost).
			b.Run("view", func(b *testing.B) {
				b.ReportAllocs()
				cpu0 := cpuNow()
				for b.Loop() {
					if v := h.View(""); len(v.Operations) != n {
						b.Fatalf("%d operations", len(v.Operations))
					}
				}
				b.ReportMetric(float64((cpuNow()-cpu0).Microseconds())/float64(b.N)/1000, "cpu-ms/op")
			})
			b.Run("moment", func(b *testing.B) {
				b.ReportAllocs()
				cpu0 := cpuNow()
				for b.Loop() {
					v := h.View("")
					v.StartedAt, v.Start = t0, start
					m, err := lab.MomentAt(live, v, back, now)
					if err != nil || len(m.Shops) == 0 {
						b.Fatalf("%v, %d shops", err, len(m.Shops))
					}
				}
				b.ReportMetric(float64((cpuNow()-cpu0).Microseconds())/float64(b.N)/1000, "cpu-ms/op")
			})
		})
	}
}

// cpuNow is the CPU time this process has used (user and system, every
// thread): on a shared machine, what a rebuild costs whatever else runs.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
