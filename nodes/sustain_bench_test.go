package nodes

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

var sustainFor = flag.Duration("sustain", 20*time.Second, "how long BenchmarkSustainedWrites writes")

// BenchmarkSustainedWrites: memory and disk of 3 regions (latency 0) under
// sustained buy-like writes — a compare-and-set on the consensus group
// through every region's member, and a put on every replica — by 8
// writers; the lab's own history is not involved. Samples the live heap
// (after a GC), RSS and disk every 2,000 writes; reports the growth per
// 1,000 writes from the second sample (after start-up) to the last:
//
//	go test ./nodes -run '^$' -bench SustainedWrites -benchtime 1x -sustain 60s -v
func BenchmarkSustainedWrites(b *testing.B) {
	for range b.N {
		c := benchStart(b, Config{LatencyScale: 0})
		regions := c.Regions()
		type sample struct {
			writes          int64
			rss, heap, disk float64
		}
		var writes atomic.Int64
		var mu sync.Mutex
		var samples []sample
		take := func() {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			mu.Lock()
			samples = append(samples, sample{writes.Load(), rssMB(), float64(ms.HeapAlloc) / (1 << 20), dirMB(c.Dir())})
			mu.Unlock()
		}
		take()
		stop := time.Now().Add(*sustainFor)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(stop); i++ {
					region := regions[(w+i)%len(regions)]
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					key := fmt.Sprintf("/inventory/0/SKU-%d", i%16)
					if w%2 == 0 {
						cli, _ := c.MemberClient(region)
						if resp, err := cli.Get(ctx, key); err == nil {
							rev := int64(0)
							if len(resp.Kvs) == 1 {
								rev = resp.Kvs[0].ModRevision
							}
							_, _ = cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
								Then(clientv3.OpPut(key, strconv.Itoa(i))).Commit()
						}
					} else {
						cli, _ := c.ReplicaClient(region, region)
						_, _ = cli.Put(ctx, key, strconv.Itoa(i))
					}
					cancel()
					if n := writes.Add(1); n%2000 == 0 {
						take()
					}
				}
			}()
		}
		wg.Wait()
		take()
		_ = c.Close()
		first, last := samples[min(1, len(samples)-1)], samples[len(samples)-1]
		k := float64(last.writes-first.writes) / 1000
		if k <= 0 {
			b.Fatal("too few writes")
		}
		var trace []string
		for i, s := range samples {
			if i%max(1, len(samples)/8) == 0 || i == len(samples)-1 {
				trace = append(trace, fmt.Sprintf("%d writes: RSS %.0f MB, live heap %.1f MB, disk %.0f MB", s.writes, s.rss, s.heap, s.disk))
			}
		}
		b.Log(strings.Join(trace, "\n"))
		b.ReportMetric(float64(last.writes)/sustainFor.Seconds(), "writes/s")
		b.ReportMetric((last.rss-first.rss)/k, "MB-RSS/1k-writes")
		b.ReportMetric((last.heap-first.heap)/k, "MB-heap/1k-writes")
		b.ReportMetric(last.disk, "MB-disk-end")
	}
}

// dirMB is the space a directory takes on disk (allocated blocks, so
// preallocated files count in full).
func dirMB(dir string) float64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				if st, ok := info.Sys().(*syscall.Stat_t); ok {
					total += st.Blocks * 512
				}
			}
		}
		return nil
	})
	return float64(total) / (1 << 20)
}
