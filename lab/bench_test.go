package lab_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/guard"
	"caplab/lab/inventory"
	"caplab/lab/store/consensus"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Benchmarks of the stores. Run:
//
//	go test ./lab -run '^$' -bench . -benchtime 1x
//
// docs/benchmarks.md has the numbers measured on the project's 2-core
// machine.

func benchLab(b *testing.B, cfg lab.Config) *lab.Lab {
	b.Helper()
	cfg.DataDir = b.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := lab.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	return l
}

type latencies []time.Duration

func (s latencies) pct(p float64) float64 {
	c := slices.Clone(s)
	slices.Sort(c)
	i := int(math.Ceil(p/100*float64(len(c)))) - 1
	return float64(c[max(0, i)].Microseconds()) / 1000
}

// hammer runs n calls of fn over workers goroutines and returns the rate
// and every call's latency.
func hammer(workers, n int, fn func(worker, i int)) (perSec float64, lat latencies) {
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine latencies
			for {
				i := int(next.Add(1))
				if i > n {
					break
				}
				t := time.Now()
				fn(w, i)
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), lat
}

// BenchmarkConsensusBuys: buys through the lab's consensus store (breaker,
// history, CAS retries) at latency 0 with 64 concurrent buyers spread over
// the regions and 64 SKUs, against the same compare-and-swap straight on
// etcd's client in the same run.
func BenchmarkConsensusBuys(b *testing.B) {
	const buyers, buys = 64, 3000
	l := benchLab(b, lab.Config{LatencyScale: 0, MaxRetries: 50})
	ctx := context.Background()
	regions := l.Regions()
	for i := range buyers {
		if o, _ := l.Stock(ctx, inventory.Consensus, "SKU"+strconv.Itoa(i), regions[0], 1_000_000); o.Outcome != inventory.OK {
			b.Fatal(o.Message)
		}
	}
	var notOK atomic.Int64
	labRate, labLat := hammer(buyers, buys, func(w, i int) {
		o, _ := l.Buy(ctx, inventory.Consensus, "SKU"+strconv.Itoa(w), regions[w%len(regions)], 1)
		if o.Outcome != inventory.OK {
			notOK.Add(1)
		}
	})
	// The same one-round compare-and-swap straight on etcd's client: local
	// serializable read, then Txn with the current value in its Else.
	rawRate, rawLat := hammer(buyers, buys, func(w, i int) {
		cli, _ := l.Cluster().MemberClient(regions[w%len(regions)])
		key := lab.ConsensusOf(l).Key("SKU" + strconv.Itoa(w))
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := cli.Get(cctx, key, clientv3.WithSerializable())
		if err != nil {
			notOK.Add(1)
			return
		}
		q, v := consensus.Decode(resp)
		for {
			t, err := cli.Txn(cctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", v.Wall)).
				Then(clientv3.OpPut(key, strconv.Itoa(q-1))).Else(clientv3.OpGet(key)).Commit()
			if err != nil {
				notOK.Add(1)
				return
			}
			if t.Succeeded {
				return
			}
			q, v = consensus.DecodeKVs(t.Responses[0].GetResponseRange().GetKvs())
		}
	})
	if notOK.Load() > 0 {
		b.Errorf("%d buys were not ok", notOK.Load())
	}
	b.ReportMetric(labRate, "buys/s-lab")
	b.ReportMetric(labLat.pct(50), "p50-ms-lab")
	b.ReportMetric(labLat.pct(99), "p99-ms-lab")
	b.ReportMetric(rawRate, "buys/s-raw-etcd")
	b.ReportMetric(rawLat.pct(50), "p50-ms-raw")
	b.ReportMetric(rawLat.pct(99), "p99-ms-raw")
	b.ReportMetric(labRate/rawRate, "ratio")
}

// BenchmarkFailFast: how long a minority buy takes while the breaker is
// closed (unavailable, bounded by the deadline or "no leader") versus once
// it is open (fail_fast).
func BenchmarkFailFast(b *testing.B) {
	l := benchLab(b, lab.Config{LatencyScale: 0.1, TickMs: 50, ElectionMs: 500,
		Breaker: guard.BreakerSettings{Threshold: 3, Cooldown: time.Hour}})
	ctx := context.Background()
	if o, _ := l.Stock(ctx, inventory.Consensus, "X", "us-east-1", 100); o.Outcome != inventory.OK {
		b.Fatal(o.Message)
	}
	minority := "ap-southeast-1"
	if err := l.Faults().Partition([][]string{{"us-east-1", "eu-west-1"}, {minority}}); err != nil {
		b.Fatal(err)
	}
	// Before the member notices it lost the leader: the deadline answers.
	var unavailable latencies
	t := time.Now()
	o, _ := l.Buy(ctx, inventory.Consensus, "X", minority, 1)
	unavailable = append(unavailable, time.Since(t))
	if o.Outcome != inventory.Unavailable {
		b.Fatalf("first minority buy: %s", o.Outcome)
	}
	for range 2 {
		t := time.Now()
		_, _ = l.Buy(ctx, inventory.Consensus, "X", minority, 1)
		unavailable = append(unavailable, time.Since(t))
	}
	var fast latencies
	for range 2000 {
		t := time.Now()
		o, _ := l.Buy(ctx, inventory.Consensus, "X", minority, 1)
		fast = append(fast, time.Since(t))
		if o.Outcome != inventory.FailFast {
			b.Fatalf("buy with an open breaker: %s", o.Outcome)
		}
	}
	b.ReportMetric(fast.pct(50), "p50-ms-fail_fast")
	b.ReportMetric(fast.pct(99), "p99-ms-fail_fast")
	b.ReportMetric(unavailable.pct(0), "ms-unavailable-first")
	b.ReportMetric(unavailable.pct(100), "ms-unavailable-max")
	b.Logf("request deadline %v; unavailable answers took %v", l.RequestTimeout(), unavailable)
}

// BenchmarkReplicatedBuys: buys/s through the replicated store with W=1
// R=1 and with majorities, 64 buyers at latency 0, in the same run.
func BenchmarkReplicatedBuys(b *testing.B) {
	const buyers, buys = 64, 3000
	l := benchLab(b, lab.Config{LatencyScale: 0})
	ctx := context.Background()
	regions := l.Regions()
	for _, q := range []inventory.QuorumState{inventory.GlobalTables(3), inventory.StrictQuorum(3)} {
		name := fmt.Sprintf("W%dR%d", q.W, q.R)
		if err := l.Faults().SetQuorum(q.W, q.R); err != nil {
			b.Fatal(err)
		}
		for i := range buyers {
			if o, _ := l.Stock(ctx, inventory.Replicated, name+strconv.Itoa(i), regions[0], 1_000_000); o.Outcome != inventory.OK {
				b.Fatal(o.Message)
			}
		}
		rate, lat := hammer(buyers, buys, func(w, i int) {
			_, _ = l.Buy(ctx, inventory.Replicated, name+strconv.Itoa(w), regions[w%len(regions)], 1)
		})
		b.ReportMetric(rate, "buys/s-"+name)
		b.ReportMetric(lat.pct(99), "p99-ms-"+name)
	}
}

// BenchmarkBuyFidelity: sequential consensus buys from each region at real
// latencies (scale 1), leader in us-east-1, against the one-round bound
// CommitBoundMs (round trip to the leader + the leader's round trip to its
// nearest follower: 76 / 152 / 303 ms). 15 buys per region.
//
//	go test ./lab -run '^$' -bench BuyFidelity -benchtime 1x -v
func BenchmarkBuyFidelity(b *testing.B) {
	l := benchLab(b, lab.Config{LatencyScale: 1})
	ctx := context.Background()
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := l.Faults().Lead(lctx, "us-east-1"); err != nil {
		b.Fatal(err)
	}
	if o, _ := l.Stock(ctx, inventory.Consensus, "FID", "us-east-1", 1000); o.Outcome != inventory.OK {
		b.Fatal(o.Message)
	}
	if err := l.WaitConverged(lctx); err != nil {
		b.Fatal(err)
	}
	for _, r := range l.Regions() {
		var lat latencies
		for range 15 {
			o, _ := l.Buy(ctx, inventory.Consensus, "FID", r, 1)
			if o.Outcome != inventory.OK {
				b.Fatalf("buy from %s: %s", r, o.Message)
			}
			lat = append(lat, time.Duration(o.LatencyMs*float64(time.Millisecond)))
		}
		bound := consensus.CommitBoundMs(l.Regions(), "us-east-1", r)
		b.ReportMetric(lat.pct(50), "p50-ms-"+r)
		b.ReportMetric(lat.pct(99), "p99-ms-"+r)
		b.ReportMetric(lat.pct(50)/bound, "p50/bound-"+r)
		b.Logf("%s: p50 %.0f ms, p99 %.0f ms, bound %.0f ms (p50 %.2f× bound)", r, lat.pct(50), lat.pct(99), bound, lat.pct(50)/bound)
	}
}
