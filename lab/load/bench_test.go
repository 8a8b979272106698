package load

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
	"caplab/nodes"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Benchmarks of docs/benchmarks.md ("Load generator"). Each prints a table;
// run them one at a time with -benchtime 1x:
//
//	go test ./lab/load -run '^$' -bench GeneratorNoop -benchtime 1x
//	go test ./lab/load -run '^$' -bench ConsensusBuyRate -benchtime 1x -timeout 30m
//	go test ./lab/load -run '^$' -bench LoadRSS -benchtime 1x -timeout 30m -load.rss=10m

var (
	benchStep    = flag.Duration("load.step", 5*time.Second, "ConsensusBuyRate: how long each rate runs")
	benchRates   = flag.String("load.rates", "150,300,600,1200,2400,4800", "ConsensusBuyRate: total buys a second to try, ascending")
	benchRSS     = flag.Duration("load.rss", 2*time.Minute, "LoadRSS: how long the load runs")
	benchRSSRate = flag.Float64("load.rss-rate", 20, "LoadRSS: buys a second per region (4 reads each)")
	benchHeap    = flag.String("load.heapprofile", "", "LoadRSS: write a heap profile here at the end, before the lab closes (and FILE.N after minute N)")
)

// noopTarget answers every operation at once: the generator alone.
type noopTarget struct{ regions []string }

func (n noopTarget) Regions() []string { return n.regions }
func (n noopTarget) Stores() []string  { return []string{"noop"} }
func (n noopTarget) Stock(context.Context, string, string, string, int, bool) Result {
	return Result{Kind: KindOK}
}
func (n noopTarget) Buy(context.Context, string, string, string, bool) Result {
	return Result{Kind: KindOK, Quantity: 1}
}
func (n noopTarget) Read(context.Context, string, string, string, string, bool) Result {
	return Result{Kind: KindOK, Quantity: 1}
}

// runFor runs cfg on c to the end and returns the final status; unless
// cfg says otherwise, without the pacer (pace.go).
func runFor(b *testing.B, c *Controller, cfg Config) Status {
	b.Helper()
	if cfg.Pace == nil { // these benchmarks measure how far the lab goes: every arrival is sent
		cfg.Pace = ptr(false)
	}
	if _, err := c.Start(cfg); err != nil {
		b.Fatal(err)
	}
	r := c.Run()
	select {
	case <-r.Done():
	case <-time.After(time.Duration(cfg.Duration) + 5*time.Minute):
		b.Fatal("the run did not end")
	}
	return c.Status(false)
}

type totals struct {
	offered, answered, ok, reads, shed int64
	p99, maxMs, readP99                float64
	oversold                           int64
	availability                       float64
}

func sumUp(st Status, store string) totals {
	var t totals
	t.availability = 100
	for _, s := range st.Stores {
		if s.Store != store {
			continue
		}
		t.oversold = s.Oversold
		for _, f := range s.Regions {
			t.offered += f.Offered + f.ReadsOffered
			for _, n := range f.Outcomes {
				t.answered += n
			}
			for _, n := range f.ReadOutcomes {
				t.answered += n
			}
			t.ok += f.OK + f.SoldOut
			t.reads += f.Reads
			t.shed += f.Shed + f.ReadOutcomes[KindShed]
			t.p99 = max(t.p99, f.P99Ms)
			t.maxMs = max(t.maxMs, f.MaxMs)
			t.readP99 = max(t.readP99, f.ReadP99Ms)
			t.availability = min(t.availability, f.Availability)
		}
	}
	return t
}

// BenchmarkGeneratorNoop: the generator against a target that answers at
// once — how many operations a second it offers and answers, and how late
// the arrivals are (p99 "latency" is scheduling lag: intended time to
// answer).
func BenchmarkGeneratorNoop(b *testing.B) {
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-1"}
	fmt.Printf("\n%-12s %12s %12s %10s %10s %8s %10s %14s\n", "target ops/s", "offered", "answered/s", "p99 ms", "max ms", "shed", "CPU cores", "ops/CPU-second")
	for _, perRegion := range []float64{20_000, 50_000, 80_000, 100_000} {
		b.Run(strconv.Itoa(int(perRegion*3)), func(b *testing.B) {
			for range b.N {
				c := NewController(noopTarget{regions})
				cpu0, wall0 := cpuSeconds(), time.Now()
				// buys only: each arrival is one operation
				st := runFor(b, c, Config{Rate: perRegion, ReadsPerBuy: ptr(0.0), SKUs: 1000, Duration: Duration(3 * time.Second), Seed: 1, SampleSKUs: ptr(0)})
				cpu, wall := cpuSeconds()-cpu0, time.Since(wall0).Seconds()
				c.Close()
				t := sumUp(st, "noop")
				rate := float64(t.answered) / st.ElapsedS
				b.ReportMetric(rate, "ops/s")
				b.ReportMetric(t.p99, "p99-ms")
				b.ReportMetric(float64(t.answered)/cpu, "ops/CPU-s")
				fmt.Printf("%-12.0f %12d %12.0f %10.2f %10.2f %8d %10.2f %14.0f\n", perRegion*3, t.offered, rate, t.p99, t.maxMs, t.shed, cpu/wall, float64(t.answered)/cpu)
			}
		})
	}
}

// rawTarget drives the lab's etcd members directly with clientv3 — no lab
// (no breaker, gate, history, counters), the same operations: a buy is a
// Get and a Txn comparing ModRevision, retried on a lost race; a read a
// serializable Get. Raft traffic still crosses the fabric's proxies (at
// latency scale 0 they add no delay).
type rawTarget struct {
	l      *lab.Lab
	prefix string
	// oneRound: a buy as the lab's consensus store does it — a
	// serializable Get of the member's own copy, then a Txn whose Else
	// returns the current value for the retry (one quorum round when the
	// copy is current) — instead of a linearizable Get and a Txn.
	oneRound bool
}

func (r rawTarget) Regions() []string { return r.l.Regions() }
func (r rawTarget) Stores() []string  { return []string{"raw"} }
func (r rawTarget) cli(region string) *clientv3.Client {
	c, _ := r.l.Cluster().MemberClient(region)
	return c
}
func (r rawTarget) Stock(ctx context.Context, _, sku, region string, qty int, _ bool) Result {
	ctx, cancel := context.WithTimeout(ctx, r.l.RequestTimeout())
	defer cancel()
	if _, err := r.cli(region).Put(ctx, r.prefix+sku, strconv.Itoa(qty)); err != nil {
		return Result{Kind: KindUnavailable}
	}
	return Result{Kind: KindOK, Quantity: qty}
}
func (r rawTarget) Buy(ctx context.Context, _, sku, region string, _ bool) Result {
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), r.l.RequestTimeout())
	defer cancel()
	cli, key := r.cli(region), r.prefix+sku
	if r.oneRound {
		resp, err := cli.Get(ctx, key, clientv3.WithSerializable())
		if err != nil || len(resp.Kvs) == 0 {
			return Result{Kind: KindUnavailable}
		}
		kv := resp.Kvs[0]
		for range 5 {
			q, _ := strconv.Atoi(string(kv.Value))
			if q < 1 {
				return Result{Kind: KindSoldOut}
			}
			txn, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
				Then(clientv3.OpPut(key, strconv.Itoa(q-1))).Else(clientv3.OpGet(key)).Commit()
			if err != nil {
				return Result{Kind: KindUnavailable}
			}
			if txn.Succeeded {
				return Result{Kind: KindOK, Quantity: q - 1}
			}
			kvs := txn.Responses[0].GetResponseRange().GetKvs()
			if len(kvs) == 0 {
				return Result{Kind: KindUnavailable}
			}
			kv = kvs[0]
		}
		return Result{Kind: KindConflict}
	}
	for range 5 {
		resp, err := cli.Get(ctx, key)
		if err != nil || len(resp.Kvs) == 0 {
			return Result{Kind: KindUnavailable}
		}
		q, _ := strconv.Atoi(string(resp.Kvs[0].Value))
		if q < 1 {
			return Result{Kind: KindSoldOut}
		}
		txn, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)).
			Then(clientv3.OpPut(key, strconv.Itoa(q-1))).Commit()
		if err != nil {
			return Result{Kind: KindUnavailable}
		}
		if txn.Succeeded {
			return Result{Kind: KindOK, Quantity: q - 1}
		}
	}
	return Result{Kind: KindConflict}
}
func (r rawTarget) Read(ctx context.Context, _, sku, region, _ string, _ bool) Result {
	ctx, cancel := context.WithTimeout(ctx, r.l.RequestTimeout())
	defer cancel()
	resp, err := r.cli(region).Get(ctx, r.prefix+sku, clientv3.WithSerializable())
	if err != nil || len(resp.Kvs) == 0 {
		return Result{Kind: KindUnavailable}
	}
	q, _ := strconv.Atoi(string(resp.Kvs[0].Value))
	return Result{Kind: KindOK, Quantity: q}
}

// consensusOnly is the lab restricted to its consensus store.
type consensusOnly struct{ LabTarget }

func (consensusOnly) Stores() []string { return []string{string(inventory.Consensus)} }

// BenchmarkConsensusBuyRate: at latency scale 0, buys with two
// serializable reads each on 10,000 SKUs, at rising rates, through the lab
// (consensus store) and then straight to the same etcd members (raw) in
// the same run. The highest rate with p99 < 50 ms, 0 oversold and every
// buy answered is the figure; the ratio lab/raw is the lab's overhead.
func BenchmarkConsensusBuyRate(b *testing.B) {
	var rates []float64
	for _, s := range strings.Split(*benchRates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			b.Fatal(err)
		}
		rates = append(rates, v)
	}
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		l, err := lab.New(ctx, lab.Config{DataDir: b.TempDir(), TickMs: 100, ElectionMs: 1000})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		_ = l.WaitConverged(context.Background())
		best := map[string]float64{}
		fmt.Printf("\n%-9s %10s %10s %10s %9s %9s %9s %8s %6s\n", "target", "buys/s", "ok+so/s", "reads/s", "p99 ms", "readp99", "avail %", "oversold", "met")
		// Side by side: at each rate the lab, then raw etcd, with a pause
		// between steps so that one step's backlog (proposals still in
		// Raft after their callers gave up) does not land on the next.
		// "lab" is the lab as it runs (one etcd client per region),
		// "lab-pool4" spreads buys over a pool of four (nodes.SetMemberPool).
		ctls := map[string]*Controller{
			"lab":       NewController(consensusOnly{LabTarget{l}}),
			"lab-pool4": NewController(consensusOnly{LabTarget{l}}),
			"raw":       NewController(rawTarget{l: l, prefix: "/bench-raw/"}),
			"raw-1rt":   NewController(rawTarget{l: l, prefix: "/bench-raw1/", oneRound: true}),
		}
		pool := nodes.MemberPoolSize
		done := map[string]bool{}
		for _, rate := range rates {
			for _, name := range []string{"lab", "lab-pool4", "raw", "raw-1rt"} {
				if done[name] {
					continue
				}
				if name == "lab-pool4" {
					l.Cluster().SetMemberPool(pool)
				} else {
					l.Cluster().SetMemberPool(1)
				}
				c := ctls[name]
				st := runFor(b, c, Config{Rate: rate / 3, ReadsPerBuy: ptr(2.0), SKUs: 10_000, Stock: ptr(1_000_000),
					Duration: Duration(*benchStep), Seed: 5, SampleSKUs: ptr(0), DoorbusterShare: ptr(0.0)})
				t := sumUp(st, st.Config.Stores[0])
				buys := float64(t.ok) / st.ElapsedS
				met := t.p99 < 50 && t.oversold == 0 && t.availability >= 99.9 && t.ok > 0
				if t.ok == 0 { // it never ran: say why (stocking failed, say)
					fmt.Printf("%-9s %10.0f   did not run: %s %s\n", name, rate, st.State, st.Reason)
					time.Sleep(3 * time.Second)
					continue
				}
				fmt.Printf("%-9s %10.0f %10.0f %10.0f %9.1f %9.1f %9.2f %8d %6v\n", name, rate, buys, float64(t.reads)/st.ElapsedS, t.p99, t.readP99, t.availability, t.oversold, met)
				if met {
					best[name] = max(best[name], buys)
				}
				done[name] = t.p99 > 500 // far past it: higher rates only pile up
				time.Sleep(3 * time.Second)
			}
		}
		for _, c := range ctls {
			c.Close()
		}
		ratio := 0.0
		if best["raw"] > 0 {
			ratio = best["lab"] / best["raw"]
		}
		fmt.Printf("best with p99 < 50 ms: lab %.0f buys/s (a pool of %d clients per region: %.0f), raw etcd %.0f buys/s (one-round raw: %.0f), ratio lab/raw %.2f\n", best["lab"], pool, best["lab-pool4"], best["raw"], best["raw-1rt"], ratio)
		b.ReportMetric(best["lab"], "lab-buys/s")
		b.ReportMetric(best["lab-pool4"], "lab-pool4-buys/s")
		b.ReportMetric(best["raw-1rt"], "raw-1rt-buys/s")
		b.ReportMetric(best["raw"], "raw-buys/s")
		b.ReportMetric(ratio, "ratio")
		_ = l.Close()
	}
}

// cpuSeconds is this process's user + system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// rssMB reads this process's resident set from /proc.
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkLoadRSS: a steady load on both stores for -load.rss; RSS and Go
// heap at 1 minute and every minute after, to see memory stay flat.
func BenchmarkLoadRSS(b *testing.B) {
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		l, err := lab.New(ctx, lab.Config{DataDir: b.TempDir(), TickMs: 100, ElectionMs: 1000})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		c := NewController(LabTarget{l})
		if _, err := c.Start(Config{Rate: *benchRSSRate, ReadsPerBuy: ptr(4.0), SKUs: 1000, Stock: ptr(1_000_000), Duration: Duration(*benchRSS), Seed: 9}); err != nil {
			b.Fatal(err)
		}
		r := c.Run()
		fmt.Printf("\n%8s %10s %10s %12s %10s %10s\n", "minute", "RSS MB", "heap MB", "goroutines", "history", "answered")
		tick := time.NewTicker(time.Minute)
		minute := 0
		for done := false; !done; {
			select {
			case <-r.Done():
				done = true
			case <-tick.C:
				minute++
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				t := sumUp(c.Status(false), "consensus")
				fmt.Printf("%8d %10.1f %10.1f %12d %10d %10d\n", minute, rssMB(), float64(ms.HeapAlloc)/(1<<20), runtime.NumGoroutine(), len(l.History("").Operations), t.answered)
				if *benchHeap != "" { // one a minute too, to diff: go tool pprof -diff_base FILE.1 load.test FILE.10
					writeHeap(fmt.Sprintf("%s.%d", *benchHeap, minute))
				}
			}
		}
		tick.Stop()
		st := c.Status(false)
		fmt.Printf("state %s %s after %.0f s\n", st.State, st.Reason, st.ElapsedS)
		if *benchHeap != "" {
			runtime.GC()
			writeHeap(*benchHeap)
		}
		c.Close()
		_ = l.Close()
	}
}

// writeHeap writes a heap profile (as of the last GC) to path, if it can.
func writeHeap(path string) {
	if f, err := os.Create(path); err == nil {
		_ = pprof.WriteHeapProfile(f)
		_ = f.Close()
	}
}
