package lab_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// TestSkewedClockWinsLastWriterWins: eu-west-1's clock runs 5 s ahead.
// eu-west-1 and us-east-1 buy concurrently (a partition keeps them from
// seeing each other's write), us-east-1 later in real time. After the heal
// eu-west-1's value stands on the replicated store, the lost update is
// counted and the explanation blames the skewed clock; the consensus store
// under the same skew and schedule stays linearizable, oversold 0.
func TestSkewedClockWinsLastWriterWins(t *testing.T) {
	l := newLab(t, lab.Config{})
	ctx := ctxT(t, 60*time.Second)
	leadFrom(t, l, "us-east-1")
	for _, s := range inventory.Stores {
		must(t)(l.Stock(ctx, s, "PHONE", "us-east-1", 5))
	}
	if err := l.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Time().SetClock("eu-west-1", 5000, 0); err != nil {
		t.Fatal(err)
	}
	if st := l.State(); st.Regions[1].Clock.OffsetMs != 5000 {
		t.Fatalf("State shows eu-west-1's clock as %+v, want offset 5000 ms", st.Regions[1].Clock)
	}
	if err := l.Faults().Partition([][]string{{"eu-west-1"}, {"us-east-1", "ap-southeast-1"}}); err != nil {
		t.Fatal(err)
	}
	// eu-west-1 sells 1 (writes 4), then us-east-1 sells 2 (writes 3).
	eu := must(t)(l.Buy(ctx, inventory.Replicated, "PHONE", "eu-west-1", 1))
	us := must(t)(l.Buy(ctx, inventory.Replicated, "PHONE", "us-east-1", 2))
	if eu.Outcome != inventory.OK || us.Outcome != inventory.OK {
		t.Fatalf("buys: eu-west-1 %s, us-east-1 %s; want both ok with W=1", eu.Outcome, us.Outcome)
	}
	if err := l.Faults().HealAll(); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range l.Regions() {
		o := must(t)(l.Read(ctx, inventory.Replicated, "PHONE", r, ""))
		if o.Quantity != 4 {
			t.Fatalf("after convergence %s reads %d; want eu-west-1's 4 (its clock is ahead), not us-east-1's later 3", r, o.Quantity)
		}
	}
	res, err := l.Check(inventory.Replicated, "PHONE")
	if err != nil {
		t.Fatal(err)
	}
	if res.LostUpdates < 1 || !strings.Contains(res.Explanation, "eu-west-1's clock, running 5.0 s ahead") {
		t.Fatalf("check: lost updates %d, explanation %q; want the lost update blamed on eu-west-1's clock 5 s ahead", res.LostUpdates, res.Explanation)
	}

	// The consensus store, same skew, same schedule (eu-west-1 is the
	// minority now, so it refuses; the majority sells).
	if err := l.Faults().Partition([][]string{{"eu-west-1"}, {"us-east-1", "ap-southeast-1"}}); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	_, _ = l.Buy(ctx, inventory.Consensus, "PHONE", "eu-west-1", 1)
	must(t)(l.Buy(ctx, inventory.Consensus, "PHONE", "us-east-1", 2))
	if err := l.Faults().HealAll(); err != nil {
		t.Fatal(err)
	}
	c, _ := l.Check(inventory.Consensus, "PHONE")
	if !c.Linearizable || c.Oversold != 0 {
		t.Fatalf("consensus under skew: %+v; want linearizable, oversold 0", c)
	}
}

func TestClockBadInputChangesNothing(t *testing.T) {
	l := newLab(t, lab.Config{})
	for _, c := range []struct {
		region        string
		offset, drift float64
		want          error
	}{
		{"eu-west-1", 3_600_001, 0, inventory.ErrBadInput},
		{"eu-west-1", -4_000_000, 0, inventory.ErrBadInput},
		{"eu-west-1", 0, 1e6, inventory.ErrBadInput},
		{"mars-1", 1000, 0, inventory.ErrUnknownRegion},
	} {
		if err := l.Time().SetClock(c.region, c.offset, c.drift); !errors.Is(err, c.want) {
			t.Errorf("SetClock(%s, %g, %g) = %v, want %v", c.region, c.offset, c.drift, err, c.want)
		}
	}
	for _, r := range l.State().Regions {
		if r.Clock.OffsetMs != 0 || r.Clock.DriftPpm != 0 {
			t.Fatalf("a refused clock setting changed %s: %+v", r.Name, r.Clock)
		}
	}
}

// must adapts mustOutcome to a call's two results.
func must(t *testing.T) func(inventory.Outcome, error) inventory.Outcome {
	return func(o inventory.Outcome, err error) inventory.Outcome { t.Helper(); return mustOutcome(t, o, err) }
}
