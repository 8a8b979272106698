package lab_test

import (
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
	"caplab/lab/store/consensus"
)

// cachedRead reads IPHONE from region's cache.
func cachedRead(t *testing.T, l *lab.Lab, region string) inventory.Outcome {
	t.Helper()
	o, err := l.Read(ctxT(t, 10*time.Second), inventory.Consensus, "IPHONE", region, inventory.Cached)
	return mustOutcome(t, o, err)
}

// waitCached waits until region's cache answers want, confirmed with a
// majority since (its lag known), and returns that answer.
func waitCached(t *testing.T, l *lab.Lab, region string, want int) inventory.Outcome {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var o inventory.Outcome
	for time.Now().Before(deadline) {
		if o = cachedRead(t, l, region); o.Outcome == inventory.OK && o.Quantity == want && o.CacheLag != nil && o.CacheLag.Ms >= 0 {
			return o
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s's cache never answered %d: last %+v", region, want, o)
	return o
}

// TestCachedReads: a region's cache follows the store through its own
// member; during a cut the minority's cache keeps answering — stale, and
// visibly so (its lag in ms grows) — while buys there are refused; the
// checker counts its stale answer and still calls the store
// linearizable; after the heal the cache catches up; a reset empties it.
func TestCachedReads(t *testing.T) {
	l := newLab(t, lab.Config{LatencyScale: 0.05, RequestTimeout: 5 * time.Second}) // the majority's buy must not time out on a starved machine
	stock(t, l, inventory.Consensus, "us-east-1", 5)
	for _, r := range l.Regions() {
		o := waitCached(t, l, r, 5)
		if len(o.AnsweredBy) != 1 || o.AnsweredBy[0] != r || o.Consistency != inventory.Cached {
			t.Fatalf("cached read from %s: %+v", r, o)
		}
	}
	if _, err := l.Read(ctxT(t, 5*time.Second), inventory.Replicated, "IPHONE", "us-east-1", inventory.Cached); err == nil {
		t.Error("a cached read of the replicated store was accepted")
	}

	minority := "ap-southeast-1"
	leadFrom(t, l, "us-east-1")
	waitCached(t, l, minority, 5) // confirmed under the new leader too
	if err := l.Faults().Partition([][]string{{"us-east-1", "eu-west-1"}, {minority}}); err != nil {
		t.Fatal(err)
	}
	if o := buy(t, l, inventory.Consensus, "eu-west-1"); o.Outcome != inventory.OK {
		t.Fatalf("majority buy: %+v", o)
	}
	waitCached(t, l, "eu-west-1", 4)
	waitNoLeader(t, l, minority)
	if o := buy(t, l, inventory.Consensus, minority); o.Outcome != inventory.Unavailable {
		t.Fatalf("minority buy: %s (%s), want unavailable", o.Outcome, o.Message)
	}
	first := cachedRead(t, l, minority)
	if first.Outcome != inventory.OK || first.Quantity != 5 || first.CacheLag == nil {
		t.Fatalf("cached read in the minority: %+v, want the stale 5 with its lag", first)
	}
	// Its lag grows: no probe reaches a majority.
	deadline := time.Now().Add(10 * time.Second)
	var later inventory.Outcome
	for time.Now().Before(deadline) {
		later = cachedRead(t, l, minority)
		if later.CacheLag.Ms > first.CacheLag.Ms+float64(3*consensus.CacheProbe/time.Millisecond) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if later.Quantity != 5 || later.CacheLag.Ms <= first.CacheLag.Ms+float64(3*consensus.CacheProbe/time.Millisecond) {
		t.Fatalf("minority cache lag did not grow: %+v then %+v", first.CacheLag, later.CacheLag)
	}
	t.Logf("minority: %s", later.Message)
	cr, _ := l.Check(inventory.Consensus, "IPHONE")
	if !cr.Linearizable || cr.StaleReads < 2 {
		t.Fatalf("verdict %+v, want the minority's cached reads counted stale, still linearizable", cr)
	}

	if err := l.Faults().HealAll(); err != nil {
		t.Fatal(err)
	}
	o := waitCached(t, l, minority, 4)
	for o.CacheLag.Ms > float64(5*consensus.CacheProbe/time.Millisecond) && time.Now().Before(deadline.Add(10*time.Second)) {
		time.Sleep(20 * time.Millisecond)
		o = cachedRead(t, l, minority)
	}
	if o.CacheLag.Ms > float64(5*consensus.CacheProbe/time.Millisecond) {
		t.Fatalf("minority cache still lagging after the heal: %+v", o.CacheLag)
	}

	if err := l.Reset(ctxT(t, 60*time.Second)); err != nil {
		t.Fatal(err)
	}
	if o := cachedRead(t, l, minority); o.Quantity != 0 {
		t.Fatalf("cached read after a reset: %d, want 0", o.Quantity)
	}
}

// TestCachedReadsAfterRestart: a region's cache answers nothing while its
// region is down (its shop is down), and after a restart its watch is
// rebuilt from the member and catches up with what the others sold
// meanwhile.
func TestCachedReadsAfterRestart(t *testing.T) {
	l := newLab(t, lab.Config{LatencyScale: 0.05, RequestTimeout: 5 * time.Second})
	stock(t, l, inventory.Consensus, "us-east-1", 5)
	const r = "ap-southeast-1"
	leadFrom(t, l, "us-east-1")
	waitCached(t, l, r, 5)
	if err := l.Faults().Crash(r); err != nil {
		t.Fatal(err)
	}
	if o := cachedRead(t, l, r); o.Outcome != inventory.Unavailable {
		t.Fatalf("cached read in a crashed region: %s (%s), want unavailable", o.Outcome, o.Message)
	}
	if o := buy(t, l, inventory.Consensus, "eu-west-1"); o.Outcome != inventory.OK {
		t.Fatalf("buy while %s is down: %+v", r, o)
	}
	if err := l.Faults().Restart(r); err != nil {
		t.Fatal(err)
	}
	waitCached(t, l, r, 4)
}
