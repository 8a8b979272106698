package nodes

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks of the regions and the fabric. Each reports its figure with
// b.ReportMetric; run one per process for honest RSS figures:
//
//	go test ./nodes -run '^$' -bench 'ColdStart|Stop|RSS' -benchtime 5x
//	go test ./nodes -run '^$' -bench 'FabricOverhead|Fidelity' -benchtime 1x
//
// docs/benchmarks.md has the numbers measured on the project's 2-core
// machine.

func benchStart(b *testing.B, cfg Config) *Cluster {
	b.Helper()
	cfg.DataDir = b.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.WaitLeader(ctx); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkColdStart: from Start to every server ready and a leader agreed.
func BenchmarkColdStart(b *testing.B) {
	for _, n := range []int{3, 5} {
		b.Run(fmt.Sprintf("regions=%d", n), func(b *testing.B) {
			regions, _ := FirstRegions(n)
			var samples []time.Duration
			for range b.N {
				start := time.Now()
				c := benchStart(b, Config{Regions: regions, LatencyScale: 0})
				samples = append(samples, time.Since(start))
				b.StopTimer()
				_ = c.Close()
				b.StartTimer()
			}
			b.ReportMetric(ms(median(samples)), "ms-to-ready")
		})
	}
}

// BenchmarkStop: Close of a running cluster (hard stop, close, remove dir).
func BenchmarkStop(b *testing.B) {
	for _, n := range []int{3, 5} {
		b.Run(fmt.Sprintf("regions=%d", n), func(b *testing.B) {
			regions, _ := FirstRegions(n)
			var samples []time.Duration
			for range b.N {
				b.StopTimer()
				c := benchStart(b, Config{Regions: regions, LatencyScale: 0})
				b.StartTimer()
				start := time.Now()
				_ = c.Close()
				samples = append(samples, time.Since(start))
			}
			b.ReportMetric(ms(median(samples)), "ms-to-stop")
		})
	}
}

// BenchmarkRSS: resident memory of this process once a cluster is ready.
// Run it alone (-bench RSS/regions=3) so nothing else inflates the figure.
func BenchmarkRSS(b *testing.B) {
	for _, n := range []int{3, 5} {
		b.Run(fmt.Sprintf("regions=%d", n), func(b *testing.B) {
			regions, _ := FirstRegions(n)
			var peak float64
			for range b.N {
				c := benchStart(b, Config{Regions: regions, LatencyScale: 0})
				time.Sleep(time.Second) // let start-up garbage settle into steady state
				peak = max(peak, rssMB())
				_ = c.Close()
			}
			b.ReportMetric(peak, "MB-RSS")
		})
	}
}

// BenchmarkFabricOverhead: consensus puts at latency 0 with 64 concurrent
// clients spread over every region, through the fabric and with the
// fabric bypassed (members talk to each other directly), side by side:
// each round starts one cluster of each kind and runs them in short
// alternating bursts (ABBA order), so whatever else loads the machine hits
// both alike. A round's ratio is the median of its bursts' ratios
// fabric/bypass (one burst hit by a load spike does not decide it).
// CAPLAB_FABRIC_ROUNDS rounds (default 5), each on fresh clusters. It
// reports the median throughput of each and the min/median/max of the
// rounds' ratios, and logs what the fabric carried per put.
func BenchmarkFabricOverhead(b *testing.B) {
	const clients, bursts, perBurst = 64, 16, 1000
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv("CAPLAB_FABRIC_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	burst := func(c *Cluster) time.Duration {
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for i := range clients {
			cli, _ := c.MemberClient(c.Regions()[i%len(c.Regions())])
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					k := next.Add(1)
					if k > perBurst {
						return
					}
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					if _, err := cli.Put(ctx, "k"+strconv.Itoa(int(k%256)), "v"); err != nil {
						b.Error(err)
					}
					cancel()
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	traffic := func(c *Cluster) (msgs, bytes int64) {
		for _, l := range c.Fabric().Links() {
			msgs, bytes = msgs+l.Messages, bytes+l.Bytes
		}
		return msgs, bytes
	}
	var fabric, bypass, ratios []float64
	for i := range rounds {
		fc := benchStart(b, Config{LatencyScale: 0})
		bc := benchStart(b, Config{LatencyScale: 0, BypassFabric: true})
		m0, b0 := traffic(fc)
		var ft, bt time.Duration
		var pairs []float64
		var trace []string
		for j := range bursts {
			var x, y time.Duration
			if j%4 == 0 || j%4 == 3 { // ABBA: neither side always goes first
				x = burst(fc)
				y = burst(bc)
			} else {
				y = burst(bc)
				x = burst(fc)
			}
			ft, bt = ft+x, bt+y
			pairs = append(pairs, y.Seconds()/x.Seconds())
			trace = append(trace, fmt.Sprintf("%.0f/%.0f", perBurst/x.Seconds(), perBurst/y.Seconds()))
		}
		m1, b1 := traffic(fc)
		_ = fc.Close()
		_ = bc.Close()
		const puts = bursts * perBurst
		f, p, r := puts/ft.Seconds(), puts/bt.Seconds(), medianF(pairs)
		fabric, bypass, ratios = append(fabric, f), append(bypass, p), append(ratios, r)
		b.Logf("round %d: fabric %.0f puts/s (%.2f chunks, %.0f bytes per put on the links), bypass %.0f puts/s, ratio %.2f (bursts %.2f–%.2f)",
			i+1, f, float64(m1-m0)/puts, float64(b1-b0)/puts, p, r, slices.Min(pairs), slices.Max(pairs))
		if os.Getenv("CAPLAB_FABRIC_TRACE") != "" {
			b.Logf("bursts fabric/bypass puts/s: %s", strings.Join(trace, " "))
		}
	}
	b.Logf("ratio fabric/bypass over %d rounds: min %.2f, median %.2f, max %.2f", rounds, slices.Min(ratios), medianF(ratios), slices.Max(ratios))
	b.ReportMetric(medianF(fabric), "puts/s-fabric")
	b.ReportMetric(medianF(bypass), "puts/s-bypass")
	b.ReportMetric(slices.Min(ratios), "ratio-min")
	b.ReportMetric(medianF(ratios), "ratio-median")
	b.ReportMetric(slices.Max(ratios), "ratio-max")
}

// BenchmarkFidelity: write latency from each region at latency scale 1
// versus the model — the round trip to the leader (0 when the region
// leads) plus the leader's round trip to its nearest quorum peer.
func BenchmarkFidelity(b *testing.B) {
	c := benchStart(b, Config{LatencyScale: 1})
	defer c.Close()
	leader := c.Leader()
	var peerRTTs []float64
	for _, r := range c.Regions() {
		if r != leader {
			rtt, _ := ModelRTT(leader, r)
			peerRTTs = append(peerRTTs, rtt)
		}
	}
	slices.Sort(peerRTTs)
	quorumRTT := peerRTTs[len(c.Regions())/2-1] // the nearest peers that make a majority with the leader
	var report []string
	for _, r := range c.Regions() {
		cli, _ := c.MemberClient(r)
		var samples []time.Duration
		for i := range 15 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			start := time.Now()
			_, err := cli.Put(ctx, "fidelity", strconv.Itoa(i))
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			samples = append(samples, time.Since(start))
		}
		toLeader, _ := ModelRTT(r, leader)
		model := toLeader + quorumRTT
		got := ms(median(samples))
		b.ReportMetric(got/model, "ratio-"+r)
		report = append(report, fmt.Sprintf("%s: measured %.0f ms, model %.0f ms (%+.1f%%)", r, got, model, 100*(got/model-1)))
	}
	b.Logf("leader %s; %s", leader, strings.Join(report, "; "))
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianF(f []float64) float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

// rssMB reads this process's resident set size from /proc.
func rssMB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
