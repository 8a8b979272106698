package lab_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/check"
	"caplab/lab/guard"
	"caplab/lab/inventory"
	"caplab/lab/store/geo"
)

func geoStock(t *testing.T, l *lab.Lab, sku string, alloc map[string]int) {
	t.Helper()
	o, err := l.StockSplit(ctxT(t, 10*time.Second), sku, "us-east-1", -1, alloc)
	o = mustOutcome(t, o, err)
	if o.Outcome != inventory.OK {
		t.Fatalf("geo stock: %s (%s)", o.Outcome, o.Message)
	}
}

func buyGeo(t *testing.T, l *lab.Lab, sku, region string, qty int) inventory.Outcome {
	t.Helper()
	o, err := l.Buy(ctxT(t, 10*time.Second), inventory.Geo, sku, region, qty)
	return mustOutcome(t, o, err)
}

func conserved(t *testing.T, l *lab.Lab, sku string, stocked int) check.GeoConservation {
	t.Helper()
	a, err := l.Geo().Conservation(ctxT(t, 10*time.Second), sku)
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	if !a.Conserved || a.Stocked != stocked || a.Oversold != 0 {
		t.Fatalf("conservation broken (stocked %d): %+v", stocked, a)
	}
	return a
}

// A buy sells from the buyer's own allocation; an exhausted allocation
// borrows from another region; a region cut off from the world keeps
// selling its own units while borrowing across the cut is refused within
// the deadline; after the heal borrowing works again.
func TestGeoLocalBuyBorrowAndPartition(t *testing.T) {
	l := newLab(t, lab.Config{LatencyScale: 0.05, Breaker: guard.BreakerSettings{Threshold: 3, Cooldown: 300 * time.Millisecond}})
	const sku = "GEO-1"
	geoStock(t, l, sku, map[string]int{"us-east-1": 2, "eu-west-1": 2, "ap-southeast-1": 2})

	o := buyGeo(t, l, sku, "ap-southeast-1", 1)
	if o.Outcome != inventory.OK || o.Quantity != 1 {
		t.Fatalf("local buy: %+v", o)
	}
	// Three units asked, one local: two must be borrowed.
	o = buyGeo(t, l, sku, "ap-southeast-1", 3)
	if o.Outcome != inventory.OK || o.Quantity != 0 || len(o.AnsweredBy) < 2 {
		t.Fatalf("borrowing buy: %+v", o)
	}
	conserved(t, l, sku, 6)

	geoStock(t, l, sku, map[string]int{"us-east-1": 3, "eu-west-1": 3, "ap-southeast-1": 1})
	if err := l.Faults().Isolate("ap-southeast-1"); err != nil {
		t.Fatal(err)
	}
	o = buyGeo(t, l, sku, "ap-southeast-1", 1)
	if o.Outcome != inventory.OK {
		t.Fatalf("local buy in the cut-off region: %+v", o)
	}
	start := time.Now()
	o = buyGeo(t, l, sku, "ap-southeast-1", 1)
	if o.Outcome != inventory.Unavailable && o.Outcome != inventory.FailFast {
		t.Fatalf("borrowing across the cut: %+v", o)
	}
	if d := time.Since(start); d > l.RequestTimeout()+500*time.Millisecond {
		t.Fatalf("borrowing across the cut took %v (deadline %v)", d, l.RequestTimeout())
	}
	if o.Stranded != 6 || len(o.Unreachable) != 2 {
		t.Fatalf("stranded units not reported: %+v", o)
	}
	// The others keep selling, and their read names the unreachable region.
	if o := buyGeo(t, l, sku, "eu-west-1", 1); o.Outcome != inventory.OK {
		t.Fatalf("eu-west-1 during the partition: %+v", o)
	}
	r, err := l.Read(ctxT(t, 10*time.Second), inventory.Geo, sku, "us-east-1", "")
	if err != nil || r.Outcome != inventory.OK || len(r.Unreachable) != 1 || r.Unreachable[0] != "ap-southeast-1" || r.Quantity != 5 {
		t.Fatalf("read during the partition: %v %+v", err, r)
	}
	if st := l.State(); st.Counters[2].Store != inventory.Geo || st.Counters[2].Stranded < 1 {
		t.Fatalf("stranded not counted: %+v", st.Counters)
	}
	if err := l.Faults().HealAll(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		o = buyGeo(t, l, sku, "ap-southeast-1", 1)
		if o.Outcome == inventory.OK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("borrowing after heal: %+v", o)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r, err = l.Read(ctxT(t, 10*time.Second), inventory.Geo, sku, "ap-southeast-1", "")
	if err != nil || r.Outcome != inventory.OK || r.Quantity != 4 || len(r.Allocations) != 3 {
		t.Fatalf("read after heal: %v %+v", err, r)
	}
	conserved(t, l, sku, 11) // 6, then the restock added 1 + 3 + 1
	res, err := l.Check(inventory.Geo, sku)
	if err != nil || !res.Linearizable || res.Oversold != 0 || res.Geo == nil || res.Geo.Conservation == nil {
		t.Fatalf("check: %v %+v", err, res)
	}
}

// Bad input is refused with a clear error and changes nothing.
func TestGeoBadInput(t *testing.T) {
	l := newLab(t, lab.Config{})
	const sku = "GEO-BAD"
	geoStock(t, l, sku, map[string]int{"us-east-1": 1, "eu-west-1": 1, "ap-southeast-1": 1})
	before := len(l.History("").Operations)
	ctx := ctxT(t, 10*time.Second)
	cases := []struct {
		name string
		err  error
		do   func() error
	}{
		{"unknown region in allocations", inventory.ErrUnknownRegion, func() error {
			_, err := l.StockSplit(ctx, sku, "us-east-1", -1, map[string]int{"us-east-9": 3})
			return err
		}},
		{"negative allocation", inventory.ErrBadInput, func() error {
			_, err := l.StockSplit(ctx, sku, "us-east-1", -1, map[string]int{"us-east-1": -1, "eu-west-1": 4})
			return err
		}},
		{"allocations do not add up", inventory.ErrBadInput, func() error {
			_, err := l.StockSplit(ctx, sku, "us-east-1", 10, map[string]int{"us-east-1": 4, "eu-west-1": 4})
			return err
		}},
		{"unknown zone crash", inventory.ErrUnknownRegion, func() error { return l.Faults().Crash("us-east-1z") }},
		{"zone link across regions", inventory.ErrBadInput, func() error { return l.Faults().SetLink("us-east-1a", "eu-west-1a", false, false) }},
		{"zone link to unknown zone", inventory.ErrUnknownRegion, func() error { return l.Faults().SetLink("us-east-1a", "us-east-1q", false, false) }},
	}
	for _, c := range cases {
		if err := c.do(); !errors.Is(err, c.err) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.err)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
	if after := len(l.History("").Operations); after != before {
		t.Fatalf("bad input recorded %d operations", after-before)
	}
	conserved(t, l, sku, 3)
	if _, err := inventory.ParseStore("geo"); err != nil {
		t.Fatal(err)
	}
	_ = context.Background
}

func TestGeoSplit(t *testing.T) {
	got := geo.Split(10, []string{"a", "b", "c"})
	if got["a"] != 4 || got["b"] != 3 || got["c"] != 3 {
		t.Fatalf("split 10 over 3: %v", got)
	}
	if got := geo.Split(0, []string{"a", "b"}); got["a"] != 0 || got["b"] != 0 {
		t.Fatalf("split 0: %v", got)
	}
}
