package lab_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/check"
	"caplab/lab/inventory"
)

// BenchmarkVerdictAfterSoak: how long the checker's verdict takes on one
// SKU after a soak at latency scale 0.02 — six buyers on both stores,
// serializable reads, eight partition/heal cycles and a restock midway
// (a few thousand operations, some unavailable). It reports the whole-
// history Check (the old path of GET /api/check), Lab.Check the first time
// (segments, only the operations that can matter), and Lab.Check after 20
// more operations (remembered segments) — best of 5 each.
//
//	go test ./lab -run '^$' -bench VerdictAfterSoak -benchtime 1x -v
func BenchmarkVerdictAfterSoak(b *testing.B) {
	l := benchLab(b, lab.Config{LatencyScale: 0.02, TickMs: 50, ElectionMs: 500})
	ctx := context.Background()
	for _, s := range inventory.Stores {
		l.Stock(ctx, s, "IPHONE", "us-east-1", 500)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				s, r := inventory.Stores[w%2], l.Regions()[w%3]
				if w%3 == 0 {
					l.Read(ctx, s, "IPHONE", r, inventory.Serializable)
				}
				l.Buy(ctx, s, "IPHONE", r, 1)
			}
		}()
	}
	for c := range 8 {
		time.Sleep(300 * time.Millisecond)
		minority := l.Regions()[c%3]
		var rest []string
		for _, r := range l.Regions() {
			if r != minority {
				rest = append(rest, r)
			}
		}
		_ = l.Faults().Partition([][]string{rest, {minority}})
		time.Sleep(400 * time.Millisecond)
		_ = l.Faults().HealAll()
		if c == 4 {
			for _, s := range inventory.Stores {
				l.Stock(ctx, s, "IPHONE", "us-east-1", 300)
			}
		}
	}
	close(stop)
	wg.Wait()
	best := func(f func()) float64 {
		d := time.Hour
		for range 5 {
			t0 := time.Now()
			f()
			d = min(d, time.Since(t0))
		}
		return float64(d.Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(l.History("IPHONE").Operations)), "ops")
	for _, s := range inventory.Stores {
		var r check.Result
		whole := best(func() { r, _ = check.Operations(lab.HistoryOf(l).Operations(s, "IPHONE"), s, "IPHONE", check.Timeout) })
		lab.ForgetVerdicts(l)
		t0 := time.Now()
		l.Check(s, "IPHONE")
		first := float64(time.Since(t0).Microseconds()) / 1000
		for range 20 {
			l.Buy(ctx, s, "IPHONE", "us-east-1", 1)
		}
		grown := best(func() { l.Check(s, "IPHONE") })
		b.ReportMetric(whole, "ms-whole-"+string(s))
		b.ReportMetric(first, "ms-first-"+string(s))
		b.ReportMetric(grown, "ms-after-20-"+string(s))
		b.Logf("%s: %d operations entered, %d indeterminate, linearizable %v: whole-history Check %.1f ms, Lab.Check first %.1f ms, after 20 more %.1f ms",
			s, r.Operations, r.Indeterminate, r.Linearizable, whole, first, grown)
	}
}
