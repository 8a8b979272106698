package lab_test

import (
	"context"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// BenchmarkIdleReplication: the CPU the whole process (the lab and its six
// etcd servers) spends in 3 s while the replicated store holds 2,000 SKUs
// and nobody buys — background replication reading every SKU of every
// replica every round (as before) against reading only what changed,
// alternating A B B A in one lab:
//
//	go test ./lab -run '^$' -bench IdleReplication -benchtime 1x -v
func BenchmarkIdleReplication(b *testing.B) {
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		l, err := lab.New(ctx, lab.Config{LatencyScale: 0, DataDir: b.TempDir(), TickMs: 100, ElectionMs: 1000})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		regions := l.Regions()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := range 2000 {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, _ = l.Stock(ctx, inventory.Replicated, "SKU"+strconv.Itoa(i), regions[i%len(regions)], 5)
			})
		}
		wg.Wait()
		wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = l.WaitConverged(wctx)
		wcancel()
		time.Sleep(2 * time.Second) // the pushes' echoes settle
		cpu := map[int64][]float64{}
		for _, every := range []int64{1, 50, 50, 1} {
			lab.ReplicatedOf(l).SetFullScanEvery(every)
			c0 := processCPU()
			time.Sleep(3 * time.Second)
			cpu[every] = append(cpu[every], (processCPU()-c0)/3)
			b.Logf("full read every %d rounds: %.3f cores", every, cpu[every][len(cpu[every])-1])
		}
		before, after := (cpu[1][0]+cpu[1][1])/2, (cpu[50][0]+cpu[50][1])/2
		b.ReportMetric(before, "cores-every-round")
		b.ReportMetric(after, "cores-changes-only")
		b.ReportMetric(after/before, "ratio")
		_ = l.Close()
	}
}

func processCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
