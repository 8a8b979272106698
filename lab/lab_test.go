package lab_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"caplab/lab"
	"caplab/lab/guard"
	"caplab/lab/inventory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newLab starts a lab for one test at a small latency scale with fast
// Raft timing, and closes it at the end.
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
	return l
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustOutcome(t *testing.T, o inventory.Outcome, err error) inventory.Outcome {
	t.Helper()
	if err != nil {
		t.Fatalf("operation refused: %v", err)
	}
	return o
}

func buy(t *testing.T, l *lab.Lab, store inventory.Store, region string) inventory.Outcome {
	t.Helper()
	o, err := l.Buy(ctxT(t, 30*time.Second), store, "IPHONE", region, 1)
	return mustOutcome(t, o, err)
}

func stock(t *testing.T, l *lab.Lab, store inventory.Store, region string, n int) {
	t.Helper()
	if store == inventory.Consensus {
		// A starved machine (CI beside other runs, load average 8+) can
		// cost a 500 ms-election lab its leader just after start; the
		// store then rightly answers "no leader". The tests stock first,
		// so wait for the condition they assume.
		waitLeaderAt(t, l, region)
	}
	o, err := l.Stock(ctxT(t, 30*time.Second), store, "IPHONE", region, n)
	o = mustOutcome(t, o, err)
	if o.Outcome != inventory.OK {
		t.Fatalf("stock %s: %s (%s)", store, o.Outcome, o.Message)
	}
}

// leadFrom moves consensus leadership to region, so a test that cuts
// another region off knows which side keeps the leader.
func leadFrom(t *testing.T, l *lab.Lab, region string) {
	t.Helper()
	if err := l.Faults().Lead(ctxT(t, 20*time.Second), region); err != nil {
		t.Fatal(err)
	}
}

// waitLeaderAt waits until region's member knows a leader.
func waitLeaderAt(t *testing.T, l *lab.Lab, region string) {
	t.Helper()
	waitMember(t, l, region, 30*time.Second, "never knew a leader", func(r lab.RegionState) bool {
		return r.Up && r.Consensus.Leader != ""
	})
}

// waitNoLeader waits until region's member knows it has no leader.
func waitNoLeader(t *testing.T, l *lab.Lab, region string) {
	t.Helper()
	waitMember(t, l, region, 15*time.Second, "never noticed it lost the leader", func(r lab.RegionState) bool {
		return r.Consensus.Leader == ""
	})
}

// waitMember waits up to d until region's State satisfies cond.
func waitMember(t *testing.T, l *lab.Lab, region string, d time.Duration, never string, cond func(lab.RegionState) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, r := range l.State().Regions {
			if r.Name == region && cond(r) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s %s", region, never)
}

func TestLastUnit(t *testing.T) {
	l := newLab(t, lab.Config{LatencyScale: 0.05})
	const minority = "ap-southeast-1"
	for _, s := range inventory.Stores {
		stock(t, l, s, "us-east-1", 1)
	}
	if err := l.WaitConverged(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	leadFrom(t, l, "us-east-1")
	if err := l.Faults().Partition([][]string{{"us-east-1", "eu-west-1"}, {minority}}); err != nil {
		t.Fatal(err)
	}

	// Consensus: the minority refuses within the deadline; the majority sells once.
	start := time.Now()
	if o := buy(t, l, inventory.Consensus, minority); o.Outcome != inventory.Unavailable && o.Outcome != inventory.FailFast {
		t.Fatalf("consensus buy in the minority: %s (%s), want unavailable", o.Outcome, o.Message)
	}
	if el := time.Since(start); el > l.RequestTimeout()+500*time.Millisecond {
		t.Fatalf("unavailable answer took %v, deadline %v", el, l.RequestTimeout())
	}
	if o := buy(t, l, inventory.Consensus, "us-east-1"); o.Outcome != inventory.OK {
		t.Fatalf("consensus buy in the majority: %s (%s)", o.Outcome, o.Message)
	}
	if o := buy(t, l, inventory.Consensus, "eu-west-1"); o.Outcome != inventory.SoldOut {
		t.Fatalf("second consensus buy: %s (%s), want sold_out", o.Outcome, o.Message)
	}

	// Replicated with W=1: both sides sell the one unit.
	if o := buy(t, l, inventory.Replicated, minority); o.Outcome != inventory.OK {
		t.Fatalf("replicated W=1 buy in the minority: %s (%s)", o.Outcome, o.Message)
	}
	if o := buy(t, l, inventory.Replicated, "us-east-1"); o.Outcome != inventory.OK {
		t.Fatalf("replicated W=1 buy in the majority: %s (%s)", o.Outcome, o.Message)
	}

	// Majorities: the minority cannot sell.
	if err := l.Faults().SetQuorum(2, 2); err != nil {
		t.Fatal(err)
	}
	if o := buy(t, l, inventory.Replicated, minority); o.Outcome != inventory.Unavailable {
		t.Fatalf("replicated majority buy in the minority: %s (%s), want unavailable", o.Outcome, o.Message)
	}

	if err := l.Faults().HealAll(); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitConverged(ctxT(t, 15*time.Second)); err != nil {
		t.Fatal(err)
	}
	cr, err := l.Check(inventory.Consensus, "IPHONE")
	if err != nil {
		t.Fatal(err)
	}
	if !cr.Linearizable || cr.Oversold != 0 || cr.SoldUnits != 1 {
		t.Fatalf("consensus verdict %+v, want linearizable, 1 sold, 0 oversold", cr)
	}
	rr, err := l.Check(inventory.Replicated, "IPHONE")
	if err != nil {
		t.Fatal(err)
	}
	if rr.Linearizable || rr.Oversold != 1 {
		t.Fatalf("replicated verdict %+v, want not linearizable, oversold 1", rr)
	}
}

func TestStaleSerializableRead(t *testing.T) {
	l := newLab(t, lab.Config{LatencyScale: 0.05})
	stock(t, l, inventory.Consensus, "us-east-1", 5)
	minority := "ap-southeast-1"
	// Make sure the minority has applied the stock before the cut.
	o, err := l.Read(ctxT(t, 10*time.Second), inventory.Consensus, "IPHONE", minority, inventory.Linearizable)
	o = mustOutcome(t, o, err)
	if o.Outcome != inventory.OK || o.Quantity != 5 {
		t.Fatalf("read before the cut: %+v", o)
	}
	leadFrom(t, l, "us-east-1")
	if err := l.Faults().Partition([][]string{{"us-east-1", "eu-west-1"}, {minority}}); err != nil {
		t.Fatal(err)
	}
	if o := buy(t, l, inventory.Consensus, "eu-west-1"); o.Outcome != inventory.OK {
		t.Fatalf("majority buy: %+v", o)
	}
	// Even once the minority knows it has no leader, a serializable read
	// answers from its local copy (only writes and linearizable reads need
	// a leader).
	waitNoLeader(t, l, minority)
	o, err = l.Read(ctxT(t, 10*time.Second), inventory.Consensus, "IPHONE", minority, inventory.Serializable)
	o = mustOutcome(t, o, err)
	if o.Outcome != inventory.OK || o.Quantity != 5 {
		t.Fatalf("serializable read in the minority = %d (%s), want the stale 5", o.Quantity, o.Outcome)
	}
	cr, _ := l.Check(inventory.Consensus, "IPHONE")
	if cr.StaleReads != 1 || !cr.Linearizable {
		t.Fatalf("verdict %+v, want 1 stale read, still linearizable", cr)
	}
	lab.Recount(l) // the auditor does this within AuditEvery
	if c := l.State().Counters[0]; c.StaleReads != 1 {
		t.Fatalf("counter stale reads = %d, want 1", c.StaleReads)
	}
}

func TestBreakerOpensAndCloses(t *testing.T) {
	l := newLab(t, lab.Config{LatencyScale: 0.05, Breaker: guard.BreakerSettings{Threshold: 3, Cooldown: time.Second}})
	stock(t, l, inventory.Consensus, "us-east-1", 10)
	minority := "ap-southeast-1"
	leadFrom(t, l, "us-east-1")
	if err := l.Faults().Partition([][]string{{"us-east-1", "eu-west-1"}, {minority}}); err != nil {
		t.Fatal(err)
	}
	waitNoLeader(t, l, minority)
	for i := range 3 {
		if o := buy(t, l, inventory.Consensus, minority); o.Outcome != inventory.Unavailable {
			t.Fatalf("buy %d in the minority: %s, want unavailable", i+1, o.Outcome)
		}
	}
	start := time.Now()
	o := buy(t, l, inventory.Consensus, minority)
	if o.Outcome != inventory.FailFast {
		t.Fatalf("4th buy: %s, want fail_fast", o.Outcome)
	}
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Fatalf("fail_fast took %v", el)
	}
	if got := l.State().Regions[2].Breakers[inventory.Consensus]; got != "open" {
		t.Fatalf("breaker state %q, want open", got)
	}
	if err := l.Faults().HealAll(); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitLeader(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		o := buy(t, l, inventory.Consensus, minority)
		if o.Outcome == inventory.OK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("breaker never closed after heal: last %s (%s)", o.Outcome, o.Message)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := l.State().Regions[2].Breakers[inventory.Consensus]; got != "closed" {
		t.Fatalf("breaker state %q after a success, want closed", got)
	}
}

// Reset right after a heal goes through the leader and does not wait out
// a follower's lost forwarded proposal.
func TestResetAfterHeal(t *testing.T) {
	l := newLab(t, lab.Config{LatencyScale: 0.05})
	for i := range 5 {
		leader := l.Leader()
		var follower string
		for _, r := range l.Regions() {
			if r != leader {
				follower = r
				break
			}
		}
		stock(t, l, inventory.Consensus, follower, i+1)
		if err := l.Faults().SetLink(leader, follower, false, false); err != nil {
			t.Fatal(err)
		}
		if err := l.Faults().SetLink(leader, follower, true, false); err != nil {
			t.Fatal(err)
		}
		if err := l.Reset(ctxT(t, 30*time.Second)); err != nil {
			t.Fatalf("reset %d: %v", i, err)
		}
		o, err := l.Read(ctxT(t, 10*time.Second), inventory.Consensus, "IPHONE", leader, inventory.Linearizable)
		if err != nil || o.Outcome != inventory.OK || o.Quantity != 0 || !o.Version.IsZero() {
			t.Fatalf("after reset %d the SKU is still there: %+v %v", i, o, err)
		}
	}
}

// A write through a follower right after its link to the leader heals
// succeeds: the heal returns once etcd's streams over the link are back
// (a cut stream is noticed only at the next write, which it loses).
func TestWriteThroughFollowerRightAfterHeal(t *testing.T) {
	l := newLab(t, lab.Config{LatencyScale: 0.05})
	for i, pause := range []time.Duration{0, 300 * time.Millisecond, 900 * time.Millisecond} {
		leader := l.Leader()
		var follower string
		for _, r := range l.Regions() {
			if r != leader {
				follower = r
				break
			}
		}
		if err := l.Faults().SetLink(leader, follower, false, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(pause) // how long the link stays cut
		start := time.Now()
		if err := l.Faults().SetLink(leader, follower, true, false); err != nil {
			t.Fatal(err)
		}
		healTook := time.Since(start)
		o, err := l.Stock(ctxT(t, 10*time.Second), inventory.Consensus, "IPHONE", follower, i+1)
		if err != nil || o.Outcome != inventory.OK {
			t.Fatalf("cut for %v: write via %s right after the heal: %+v %v", pause, follower, o, err)
		}
		t.Logf("cut for %v: heal returned in %v, then the write took %.1f ms", pause, healTook.Round(time.Millisecond), o.LatencyMs)
	}
}

// A write that answered unavailable but was still on its way (held by a
// slow link) when the lab was reset must not reappear in the fresh store.
func TestLateWriteDoesNotSurviveReset(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a 2.5 s one-way delay")
	}
	l := newLab(t, lab.Config{LatencyScale: 1, TickMs: 0, ElectionMs: 0})
	leadFrom(t, l, "us-east-1")
	// Singapore's messages to the leader take 2.5 s; its write gives up at 2 s.
	if err := l.Faults().SetLatency("ap-southeast-1", "us-east-1", 5000, true); err != nil {
		t.Fatal(err)
	}
	for _, store := range inventory.Stores {
		o, err := l.Stock(ctxT(t, 10*time.Second), store, "GHOST", "ap-southeast-1", 42)
		if err != nil {
			t.Fatal(err)
		}
		if store == inventory.Consensus && o.Outcome != inventory.Unavailable {
			t.Fatalf("stock through the slow link: %s, want unavailable", o.Outcome)
		}
	}
	if err := l.Reset(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second) // past the late write's arrival
	for time.Now().Before(deadline) {
		for _, store := range inventory.Stores {
			o, err := l.Read(ctxT(t, 10*time.Second), store, "GHOST", "us-east-1", inventory.Linearizable)
			if err != nil {
				t.Fatal(err)
			}
			if o.Outcome == inventory.OK && o.Quantity != 0 {
				t.Fatalf("%s: the write from before the reset reappeared: %d", store, o.Quantity)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if cr, _ := l.Check(inventory.Consensus, "GHOST"); !cr.Linearizable {
		t.Fatalf("fresh store judged not linearizable: %+v", cr)
	}
}

func TestOperationsAfterCloseFail(t *testing.T) {
	l := newLab(t, lab.Config{LatencyScale: 0})
	r := l.Regions()[0]
	if err := l.Faults().Crash(r); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Buy(ctxT(t, 5*time.Second), inventory.Consensus, "X", r, 1); !errors.Is(err, inventory.ErrClosed) {
		t.Fatalf("buy after Close: %v, want ErrClosed", err)
	}
	if err := l.Faults().Restart(r); !errors.Is(err, inventory.ErrClosed) {
		t.Fatalf("restart after Close: %v, want ErrClosed", err)
	}
	if err := l.Reset(ctxT(t, 5*time.Second)); !errors.Is(err, inventory.ErrClosed) {
		t.Fatalf("reset after Close: %v, want ErrClosed", err)
	}
}
