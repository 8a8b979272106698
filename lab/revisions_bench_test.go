package lab_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// BenchmarkBuysVsRevisions: does the consensus store slow down as etcd's
// revisions pile up (nothing compacts them)? 64 in-process buyers on 100
// SKUs at latency scale 0, 4 s phases: three in a row, then an etcd
// Compact to the current revision before the next, and so on. If the
// phases right after a compaction are back at the first phase's rate, the
// growth is the cause; if not, it is not.
//
//	go test ./lab -run '^$' -bench BuysVsRevisions -benchtime 1x -v
func BenchmarkBuysVsRevisions(b *testing.B) {
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		l, err := lab.New(ctx, lab.Config{LatencyScale: 0, MaxRetries: 50, DataDir: b.TempDir()})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		regions := l.Regions()
		if err := l.WaitLeader(context.Background()); err != nil {
			b.Fatal(err)
		}
		for i := range 100 {
			if o, err := l.Stock(context.Background(), inventory.Consensus, "SKU"+strconv.Itoa(i), regions[0], 1_000_000); err != nil || o.Outcome != inventory.OK {
				b.Fatalf("stock: %v %s", err, o.Message)
			}
		}
		phase := func() float64 {
			var ok atomic.Int64
			var wg sync.WaitGroup
			end := time.Now().Add(4 * time.Second)
			for c := range 64 {
				wg.Go(func() {
					for i := c; time.Now().Before(end); i += 7 {
						o, _ := l.Buy(context.Background(), inventory.Consensus, "SKU"+strconv.Itoa(i%100), regions[c%len(regions)], 1)
						if o.Outcome == inventory.OK {
							ok.Add(1)
						}
					}
				})
			}
			wg.Wait()
			return float64(ok.Load()) / 4
		}
		compact := func() int64 {
			cli, _ := l.Cluster().MemberClient(regions[0])
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := cli.Get(ctx, "compact-probe")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := cli.Compact(ctx, resp.Header.Revision); err != nil {
				b.Fatal(err)
			}
			return resp.Header.Revision
		}
		for i, step := range []string{"buy", "buy", "buy", "compact", "buy", "buy", "compact", "buy"} {
			if step == "compact" {
				b.Logf("step %d: compacted to revision %d", i, compact())
				continue
			}
			b.Logf("step %d: %.0f ok buys/s", i, phase())
		}
		_ = l.Close()
	}
}
