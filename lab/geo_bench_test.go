package lab_test

import (
	"context"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/guard"
	"caplab/lab/inventory"
	"caplab/nodes"
)

// Benchmarks of the geo store against the consensus store, in one run:
//
//	go test ./lab -run '^$' -bench 'GeoLatency' -benchtime 1x -v
//	go test ./lab -run '^$' -bench 'GeoThroughput' -benchtime 1x

// BenchmarkGeoLatency: at latency scale 1 with the consensus leader in
// us-east-1, 40 buys in a row from each region on each store, and the
// bound the protocol cannot beat at the model round-trip times: a geo buy
// needs its region's leader zone to hear from the nearest other zone
// (1.2 ms); a consensus buy is a linearizable read and a compare-and-swap,
// each a trip to the leader plus the leader's round trip to its nearest
// follower.
func BenchmarkGeoLatency(b *testing.B) {
	tm := nodes.DeriveTiming(nodes.DefaultRegions, 1)
	l := benchLab(b, lab.Config{LatencyScale: 1, TickMs: tm.TickMs, ElectionMs: tm.ElectionMs})
	ctx := context.Background()
	if err := l.Faults().Lead(ctx, "us-east-1"); err != nil {
		b.Fatal(err)
	}
	const n = 40
	if o, _ := l.StockSplit(ctx, "LAT", "us-east-1", -1, map[string]int{"us-east-1": n, "eu-west-1": n, "ap-southeast-1": n}); o.Outcome != inventory.OK {
		b.Fatal(o.Message)
	}
	if o, _ := l.Stock(ctx, inventory.Consensus, "LAT", "us-east-1", 3*n); o.Outcome != inventory.OK {
		b.Fatal(o.Message)
	}
	leader := "us-east-1"
	nearest := 1e9
	for _, r := range l.Regions() {
		if rtt, _ := nodes.ModelRTT(leader, r); r != leader && rtt < nearest {
			nearest = rtt
		}
	}
	for _, r := range l.Regions() {
		for _, s := range []inventory.Store{inventory.Geo, inventory.Consensus} {
			var ms []float64
			for range n {
				o, _ := l.Buy(ctx, s, "LAT", r, 1)
				if o.Outcome != inventory.OK {
					b.Fatalf("%s buy from %s: %s", s, r, o.Message)
				}
				ms = append(ms, o.LatencyMs)
			}
			slices.Sort(ms)
			bound := 1.2
			if s == inventory.Consensus {
				toLeader, _ := nodes.ModelRTT(r, leader)
				bound = 2 * (toLeader + nearest)
			}
			b.Logf("%-15s %-9s p50 %7.1f ms  p99 %7.1f ms  bound %6.1f ms", r, s, ms[len(ms)/2], p99(ms), bound)
			b.ReportMetric(p99(ms), "p99-ms-"+string(s)+"-"+r)
		}
	}
}

// BenchmarkGeoThroughput: buys/s at latency scale 0, 64 buyers spread over
// the regions (each on its own SKU, so optimistic locking rarely retries),
// geo (three regional groups committing in parallel) against consensus
// (one group), alternating rounds; medians and their ratio.
func BenchmarkGeoThroughput(b *testing.B) {
	const buyers, buys, rounds = 64, 3000, 3
	// Long deadlines and breakers that never open: this measures capacity,
	// not what a starved machine's timeouts do to it.
	l := benchLab(b, lab.Config{LatencyScale: 0, MaxRetries: 50, RequestTimeout: 20 * time.Second,
		Breaker: guard.BreakerSettings{Threshold: 1 << 30}})
	ctx := context.Background()
	regions := l.Regions()
	for i := range buyers {
		sku := "T" + strconv.Itoa(i)
		if o, _ := l.Stock(ctx, inventory.Consensus, sku, regions[0], 1_000_000); o.Outcome != inventory.OK {
			b.Fatal(o.Message)
		}
		if o, _ := l.StockSplit(ctx, sku, regions[0], 999_999, nil); o.Outcome != inventory.OK {
			b.Fatal(o.Message)
		}
	}
	rates := map[inventory.Store][]float64{}
	p99s := map[inventory.Store][]float64{}
	for range rounds {
		for _, s := range []inventory.Store{inventory.Geo, inventory.Consensus} {
			var notOK atomic.Int64
			rate, lat := hammer(buyers, buys, func(w, i int) {
				o, _ := l.Buy(ctx, s, "T"+strconv.Itoa(w), regions[w%len(regions)], 1)
				if o.Outcome != inventory.OK {
					if notOK.Add(1) <= 3 {
						b.Logf("%s: %s %s", s, o.Outcome, o.Message)
					}
				}
			})
			if n := notOK.Load(); n > 0 {
				b.Logf("%s: %d buys not ok", s, n)
			}
			rates[s] = append(rates[s], rate)
			p99s[s] = append(p99s[s], lat.pct(99))
		}
	}
	med := func(xs []float64) float64 { c := slices.Clone(xs); slices.Sort(c); return c[len(c)/2] }
	b.Logf("geo %v buys/s, consensus %v buys/s", rates[inventory.Geo], rates[inventory.Consensus])
	b.ReportMetric(med(rates[inventory.Geo]), "buys/s-geo")
	b.ReportMetric(med(rates[inventory.Consensus]), "buys/s-consensus")
	b.ReportMetric(med(rates[inventory.Geo])/med(rates[inventory.Consensus]), "ratio")
	b.ReportMetric(med(p99s[inventory.Geo]), "p99-ms-geo")
	b.ReportMetric(med(p99s[inventory.Consensus]), "p99-ms-consensus")
}
