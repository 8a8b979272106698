package nodes

import (
	"context"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAgentsOverhead: what regions under agents cost on one machine —
// the same bursts of puts through every region's member client on a lab
// whose regions run here and on one whose regions run under three agents
// in this process (every client request through an agent's TLS tunnel,
// every raft message through a forwarder and the other agent's proxy).
// Each round starts both, alternates bursts (ABBA) and reports the median
// of the bursts' throughput ratios agents/here and the CPU per put of
// each (the whole process: both run in it, one at a time).
// CAPLAB_AGENT_ROUNDS rounds (default 3).
func BenchmarkAgentsOverhead(b *testing.B) {
	const clients, bursts, perBurst = 64, 8, 1000
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("CAPLAB_AGENT_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	burst := func(c *Cluster) (wall, used time.Duration) {
		var next atomic.Int64
		var wg sync.WaitGroup
		c0, start := cpu(), time.Now()
		for i := range clients {
			cli, _ := c.MemberClient(c.Regions()[i%len(c.Regions())])
			wg.Go(func() {
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
			})
		}
		wg.Wait()
		return time.Since(start), cpu() - c0
	}
	var ratios, cpuRatios, hereRate, agentRate []float64
	for i := range rounds {
		here := benchStart(b, Config{LatencyScale: 0, Zones: 1})
		var agents []*Agent
		remote := map[string]string{}
		for _, r := range DefaultRegions {
			a, err := StartAgent(AgentConfig{Name: r, Listen: "127.0.0.1:0", Token: testToken, DataDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			agents = append(agents, a)
			remote[r] = a.Addr()
		}
		there := benchStart(b, Config{LatencyScale: 0, Zones: 1, Remote: remote, Token: testToken})
		var pairs []float64
		var hw, aw, hc, ac time.Duration
		for j := range bursts {
			var x, y, xc, yc time.Duration
			if j%4 == 0 || j%4 == 3 {
				x, xc = burst(here)
				y, yc = burst(there)
			} else {
				y, yc = burst(there)
				x, xc = burst(here)
			}
			hw, aw, hc, ac = hw+x, aw+y, hc+xc, ac+yc
			pairs = append(pairs, x.Seconds()/y.Seconds())
		}
		_ = there.Close()
		for _, a := range agents {
			_ = a.Close()
		}
		_ = here.Close()
		const puts = bursts * perBurst
		h, a, r := puts/hw.Seconds(), puts/aw.Seconds(), medianF(pairs)
		hereRate, agentRate, ratios = append(hereRate, h), append(agentRate, a), append(ratios, r)
		cpuRatios = append(cpuRatios, ac.Seconds()/hc.Seconds())
		b.Logf("round %d: here %.0f puts/s (%.0f µs CPU a put), on agents %.0f puts/s (%.0f µs CPU a put); throughput ratio agents/here %.2f (bursts %.2f–%.2f), CPU ratio %.2f",
			i+1, h, float64(hc.Microseconds())/puts, a, float64(ac.Microseconds())/puts, r, slices.Min(pairs), slices.Max(pairs), ac.Seconds()/hc.Seconds())
	}
	b.Logf("over %d rounds: throughput agents/here min %.2f median %.2f max %.2f; CPU a put agents/here median %.2f",
		rounds, slices.Min(ratios), medianF(ratios), slices.Max(ratios), medianF(cpuRatios))
	b.ReportMetric(medianF(hereRate), "puts/s-here")
	b.ReportMetric(medianF(agentRate), "puts/s-agents")
	b.ReportMetric(medianF(ratios), "ratio-median")
	b.ReportMetric(medianF(cpuRatios), "cpu-ratio-median")
}
