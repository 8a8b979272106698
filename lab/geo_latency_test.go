package lab_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
	"caplab/nodes"
)

// p99 is the nearest-rank 99th percentile.
func p99(ms []float64) float64 {
	s := slices.Clone(ms)
	slices.Sort(s)
	i := (99*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

// TestGeoLocalBuyBeatsTheOcean (the must-show, at latency scale
// 1): a geo buy from each default region commits in that region's own
// group, p99 under 150 ms, while a consensus buy from ap-southeast-1 with
// the leader in us-east-1 pays the ocean (over 150 ms) — in one lab.
func TestGeoLocalBuyBeatsTheOcean(t *testing.T) {
	if testing.Short() {
		t.Skip("real latencies")
	}
	tm := nodes.DeriveTiming(nodes.DefaultRegions, 1)
	l := newLab(t, lab.Config{LatencyScale: 1, TickMs: tm.TickMs, ElectionMs: tm.ElectionMs})
	if err := l.Faults().Lead(ctxT(t, 30*time.Second), "us-east-1"); err != nil {
		t.Fatal(err)
	}
	const sku, n = "LATENCY", 30
	geoStock(t, l, sku, map[string]int{"us-east-1": n, "eu-west-1": n, "ap-southeast-1": n})
	for _, r := range l.Regions() {
		var ms []float64
		for range n {
			o := buyGeo(t, l, sku, r, 1)
			if o.Outcome != inventory.OK {
				t.Fatalf("geo buy from %s: %+v", r, o)
			}
			ms = append(ms, o.LatencyMs)
		}
		t.Logf("geo buy from %s: p50 %.1f ms, p99 %.1f ms", r, ms[len(ms)/2], p99(ms))
		if p := p99(ms); p >= 150 {
			t.Errorf("geo buy from %s: p99 %.1f ms, want < 150 ms (a local quorum only)", r, p)
		}
	}
	o, err := l.Stock(ctxT(t, 10*time.Second), inventory.Consensus, sku, "us-east-1", 10)
	if err != nil || o.Outcome != inventory.OK {
		t.Fatalf("consensus stock: %v %+v", err, o)
	}
	var ms []float64
	for range 5 {
		o, err := l.Buy(ctxT(t, 10*time.Second), inventory.Consensus, sku, "ap-southeast-1", 1)
		o = mustOutcome(t, o, err)
		if o.Outcome != inventory.OK {
			t.Fatalf("consensus buy: %+v", o)
		}
		ms = append(ms, o.LatencyMs)
	}
	slices.Sort(ms)
	t.Logf("consensus buy from ap-southeast-1 (leader us-east-1): fastest %.1f ms, %v", ms[0], fmt.Sprint(ms))
	if ms[0] <= 150 {
		t.Errorf("consensus buy from ap-southeast-1 took %.1f ms; with the leader in us-east-1 it must cross the ocean (> 150 ms)", ms[0])
	}
}
