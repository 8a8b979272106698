package lab_test

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

var sustainFor = flag.Duration("sustain", 20*time.Second, "how long BenchmarkSustainedBuys buys")

// BenchmarkSustainedBuys: RSS, live Go heap (after a GC) and disk of a 3-region lab (latency
// scale 0) under sustained buys on both stores by 8 buyers, sampled every
// 1,000 buys. Reports the growth per 1,000 buys between the second sample
// and the last (after start-up garbage), and the disk at the end. Run alone:
//
//	go test ./lab -run '^$' -bench SustainedBuys -benchtime 1x -sustain 90s
func BenchmarkSustainedBuys(b *testing.B) {
	for range b.N {
		l := benchLab(b, lab.Config{})
		ctx := context.Background()
		for _, s := range []inventory.Store{inventory.Consensus, inventory.Replicated} {
			if _, err := l.Stock(ctx, s, "DROP", "us-east-1", 1_000_000); err != nil {
				b.Fatal(err)
			}
		}
		type sample struct {
			buys             int64
			rss, heap, diskM float64
			anon, file       float64 // RSS split: anonymous (Go heap, stacks, …) vs file-backed (bbolt's mmap)
		}
		var buys atomic.Int64
		var mu sync.Mutex
		var samples []sample
		take := func() {
			runtime.GC()         // the live heap, not garbage awaiting collection
			debug.FreeOSMemory() // RSS without freed pages the runtime has not returned yet (as the soak samples)
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			mu.Lock()
			anon, file := selfRSSSplit()
			samples = append(samples, sample{buys.Load(), selfRSS(), float64(ms.HeapAlloc) / (1 << 20), diskMB(l.Cluster().Dir()), anon, file})
			n := len(samples)
			mu.Unlock()
			if path := os.Getenv("CAPLAB_HEAPPROFILE"); path != "" && n == 3 {
				writeHeapProfile(path + ".early") // after warm-up: diff the end against it
			}
		}
		take()
		stop := time.Now().Add(*sustainFor)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				store := []inventory.Store{inventory.Consensus, inventory.Replicated}[w%2]
				for i := 0; time.Now().Before(stop); i++ {
					cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					_, _ = l.Buy(cctx, store, "DROP", l.Regions()[(w+i)%len(l.Regions())], 1)
					cancel()
					if n := buys.Add(1); n%1000 == 0 {
						take()
					}
				}
			}()
		}
		wg.Wait()
		take()
		if path := os.Getenv("CAPLAB_HEAPPROFILE"); path != "" { // what holds the heap, before Close
			writeHeapProfile(path)
		}
		first, last := samples[min(1, len(samples)-1)], samples[len(samples)-1]
		k := float64(last.buys-first.buys) / 1000
		if k <= 0 {
			b.Fatal("too few buys")
		}
		var trace []string
		for i, s := range samples {
			if i%max(1, len(samples)/10) == 0 || i == len(samples)-1 {
				trace = append(trace, fmt.Sprintf("%d buys: RSS %.0f MB (anon %.0f, file %.0f), heap %.0f MB, disk %.0f MB", s.buys, s.rss, s.anon, s.file, s.heap, s.diskM))
			}
		}
		b.Log(strings.Join(trace, "\n"))
		b.ReportMetric(float64(last.buys)/sustainFor.Seconds(), "buys/s")
		b.ReportMetric((last.rss-first.rss)/k, "MB-RSS/1k-buys")
		b.ReportMetric((last.heap-first.heap)/k, "MB-heap/1k-buys")
		b.ReportMetric((last.anon-first.anon)/k, "MB-anon/1k-buys")
		b.ReportMetric(last.rss, "MB-RSS-end")
		b.ReportMetric(last.diskM, "MB-disk-end")
	}
}

// writeHeapProfile writes a heap profile (inuse_space is as of the last
// GC, which take has just forced) to path.
func writeHeapProfile(path string) {
	if f, err := os.Create(path); err == nil {
		_ = pprof.WriteHeapProfile(f)
		f.Close()
	}
}

// selfRSSSplit is this process's RssAnon and RssFile (MB): file-backed
// pages (etcd's bbolt databases are mmapped) are page cache the kernel can
// drop, anonymous ones are the process's own memory.
func selfRSSSplit() (anon, file float64) {
	raw, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			kb, _ := strconv.ParseFloat(f[1], 64)
			switch f[0] {
			case "RssAnon:":
				anon = kb / 1024
			case "RssFile:":
				file = kb / 1024
			}
		}
	}
	return anon, file
}

func selfRSS() float64 {
	raw, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// diskMB is the space a directory takes on disk (allocated blocks, so
// preallocated files count in full).
func diskMB(dir string) float64 {
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
