package load

import (
	"context"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newLab starts a real lab (real etcd, real fabric) at latency scale 0
// with fast Raft timing, closed at the end of the test.
func newLab(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	if cfg.TickMs == 0 {
		cfg.TickMs, cfg.ElectionMs = 50, 500
	}
	cfg.DataDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second) // 15 etcd servers on a busy 2-core machine: see nodes.Config.ReadyTimeout
	defer cancel()
	l, err := lab.New(ctx, cfg)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	if err := l.WaitConverged(ctx); err != nil {
		t.Fatalf("lab: %v", err)
	}
	return l
}

func newController(t *testing.T, l *lab.Lab) *Controller {
	t.Helper()
	c := NewController(LabTarget{Lab: l})
	t.Cleanup(c.Close)
	return c
}

func f64(v float64) *float64 { return &v }
func intp(v int) *int        { return &v }

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// TestCountsAddUp: a few seconds of load on every store at latency scale
// 0: per (store, region), offered = sum of outcomes once drained, for buys
// and for reads; percentiles are ordered and come from the histogram;
// samples arrive once a second.
func TestCountsAddUp(t *testing.T) {
	l := newLab(t, lab.Config{})
	c := newController(t, l)
	frames, unsub := c.Subscribe()
	defer unsub()
	st, err := c.Start(Config{Rate: 10, ReadsPerBuy: f64(3), SKUs: 50, Duration: Duration(3 * time.Second), Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Config.Stores) != len(inventory.Stores) {
		t.Fatalf("default stores = %v, want every store of the lab %v", st.Config.Stores, inventory.Stores)
	}
	var sampleTimes []float64
	deadline := time.After(60 * time.Second)
	for done := false; !done; {
		select {
		case f := <-frames:
			if len(f.Latest) > 0 && f.State == StateRunning {
				sampleTimes = append(sampleTimes, f.Latest[0].T)
			}
			done = f.State == StateFinished || f.State == StateStopped || f.State == StateFailed
		case <-deadline:
			t.Fatal("the run did not finish in 60 s")
		}
	}
	final := c.Status(true)
	if final.State != StateFinished {
		t.Fatalf("state %s (%s), want finished", final.State, final.Reason)
	}
	if len(sampleTimes) < 2 {
		t.Fatalf("got samples at %v, want one a second", sampleTimes)
	}
	for i := 1; i < len(sampleTimes); i++ {
		if sampleTimes[i]-sampleTimes[i-1] != 1 {
			t.Fatalf("sample times %v are not a second apart", sampleTimes)
		}
	}
	var offered int64
	for _, s := range final.Stores {
		for _, f := range s.Regions {
			if got := sum(f.Outcomes); got != f.Offered {
				t.Errorf("%s/%s: offered %d buys, outcomes sum to %d (%v)", s.Store, f.Region, f.Offered, got, f.Outcomes)
			}
			if got := sum(f.ReadOutcomes); got != f.ReadsOffered {
				t.Errorf("%s/%s: offered %d reads, outcomes sum to %d", s.Store, f.Region, f.ReadsOffered, got)
			}
			if f.InFlight != 0 {
				t.Errorf("%s/%s: %d in flight after the run", s.Store, f.Region, f.InFlight)
			}
			if !(f.P50Ms <= f.P90Ms && f.P90Ms <= f.P99Ms && f.P99Ms <= f.MaxMs) || f.MaxMs <= 0 {
				t.Errorf("%s/%s: percentiles p50 %v p90 %v p99 %v max %v", s.Store, f.Region, f.P50Ms, f.P90Ms, f.P99Ms, f.MaxMs)
			}
			if f.OK == 0 {
				t.Errorf("%s/%s: no buy succeeded: %v", s.Store, f.Region, f.Outcomes)
			}
			offered += f.Offered
		}
		if s.Oversold != 0 {
			t.Errorf("%s: oversold %d with no fault", s.Store, s.Oversold)
		}
		if s.Check == nil {
			t.Errorf("%s: no check after the run", s.Store)
		} else if s.Store == string(inventory.Consensus) && !s.Check.Linearizable {
			t.Errorf("%s: check %+v, want linearizable", s.Store, s.Check)
		}
	}
	// Every store saw the same arrivals.
	for ri := range final.Regions {
		a, b := final.Stores[0].Regions[ri], final.Stores[1].Regions[ri]
		if a.Offered != b.Offered || a.ReadsOffered != b.ReadsOffered {
			t.Errorf("%s: %s offered %d+%d, %s %d+%d — want the same arrivals", a.Region, a.Store, a.Offered, a.ReadsOffered, b.Store, b.Offered, b.ReadsOffered)
		}
	}
	// 10 buys/s × 3 regions × 3 s × stores ≈ 180; Poisson: allow wide margins.
	if want := int64(10 * 3 * 3 * len(final.Stores)); offered < want/2 || offered > want*2 {
		t.Errorf("offered %d buys in all, want about %d", offered, want)
	}
	// The samples' outcomes add up to the totals' outcomes.
	for _, s := range final.Stores {
		for _, f := range s.Regions {
			var n int64
			for _, smp := range final.Samples {
				if smp.Store == s.Store && smp.Region == f.Region {
					n += sum(smp.Outcomes)
				}
			}
			if n != sum(f.Outcomes) {
				t.Errorf("%s/%s: samples count %d answers, totals %d", s.Store, f.Region, n, sum(f.Outcomes))
			}
		}
	}
	// Load operations are not published one by one, and only checked
	// SKUs are in the history.
	h := l.History("")
	for _, op := range h.Operations {
		if op.SKU != final.CheckedSKUs[0] && !contains(final.CheckedSKUs, op.SKU) {
			t.Fatalf("history holds %s, not a checked SKU (%v)", op.SKU, final.CheckedSKUs)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
