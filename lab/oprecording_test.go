package lab_test

import (
	"sync"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// TestWithOpRecording: an operation under WithOpRecording(SkipHistory,
// SkipPublish) is counted and answered as usual but is neither in the
// history nor published; one without is both.
func TestWithOpRecording(t *testing.T) {
	l := newLab(t, lab.Config{})
	stock(t, l, inventory.Consensus, "us-east-1", 5)
	events, cancel := l.Subscribe()
	defer cancel()
	before := len(l.History("IPHONE").Operations)
	ctx := lab.WithOpRecording(ctxT(t, 30*time.Second), lab.OpRecording{SkipHistory: true, SkipPublish: true})
	o, err := l.Buy(ctx, inventory.Consensus, "IPHONE", "us-east-1", 1)
	o = mustOutcome(t, o, err)
	if o.Outcome != inventory.OK || o.OpID != 0 || o.Quantity != 4 {
		t.Fatalf("quiet buy: %+v, want ok, 4 left, no history id", o)
	}
	if n := len(l.History("IPHONE").Operations); n != before {
		t.Fatalf("history grew from %d to %d for an unrecorded buy", before, n)
	}
	if c := l.State().Counters; c[0].Store != inventory.Consensus || c[0].OK < 2 {
		t.Fatalf("counters %+v: the quiet buy must be counted", c)
	}
	loud := buy(t, l, inventory.Consensus, "us-east-1")
	if loud.OpID == 0 {
		t.Fatal("a normal buy has no history id")
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Type != lab.EventOperation {
				continue
			}
			if ev.Outcome.OpID != loud.OpID {
				t.Fatalf("published operation %d, want only the recorded buy %d", ev.Outcome.OpID, loud.OpID)
			}
			return
		case <-deadline:
			t.Fatal("the recorded buy was not published")
		}
	}
}

// TestGeoLogFollowsOpRecording: the geo store's call log (what its checker
// judges) leaves out the calls of operations the History leaves out — a
// ten-minute load's unchecked reads and buys filled it to its cap before.
func TestGeoLogFollowsOpRecording(t *testing.T) {
	l := newLab(t, lab.Config{})
	stock(t, l, inventory.Geo, "us-east-1", 9)
	logged := func() int { return len(lab.GeoCallsOf(l, "IPHONE")) }
	before := logged()
	quiet := lab.WithOpRecording(ctxT(t, 30*time.Second), lab.OpRecording{SkipHistory: true, SkipPublish: true})
	if o, err := l.Buy(quiet, inventory.Geo, "IPHONE", "eu-west-1", 1); mustOutcome(t, o, err).Outcome != inventory.OK {
		t.Fatalf("quiet geo buy: %+v", o)
	}
	if o, err := l.Read(quiet, inventory.Geo, "IPHONE", "eu-west-1", ""); mustOutcome(t, o, err).Outcome != inventory.OK {
		t.Fatalf("quiet geo read: %+v", o)
	}
	if n := logged(); n != before {
		t.Fatalf("the geo log grew from %d to %d calls for unrecorded operations", before, n)
	}
	buy(t, l, inventory.Geo, "eu-west-1")
	if n := logged(); n <= before {
		t.Fatalf("a recorded geo buy left no call in the log (%d before, %d after)", before, n)
	}
}

// TestResetEventNamesFirstOp: the reset event says which operation ID comes
// first after it (the page keeps an answer that overtook the reset's frame).
func TestResetEventNamesFirstOp(t *testing.T) {
	l := newLab(t, lab.Config{})
	stock(t, l, inventory.Consensus, "us-east-1", 5)
	before := buy(t, l, inventory.Consensus, "us-east-1")
	events, cancel := l.Subscribe()
	defer cancel()
	if err := l.Reset(ctxT(t, 60*time.Second)); err != nil {
		t.Fatal(err)
	}
	var first int
	for first == 0 {
		select {
		case ev := <-events:
			if ev.Type == lab.EventReset {
				first = ev.FirstOpID
				if first == 0 {
					t.Fatal("the reset event names no first operation")
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no reset event")
		}
	}
	if first <= before.OpID {
		t.Fatalf("first operation after the reset %d, want after the last one before it (%d)", first, before.OpID)
	}
	stock(t, l, inventory.Consensus, "us-east-1", 5)
	if h := l.History("").Operations; len(h) == 0 || h[0].ID != first {
		t.Fatalf("the first operation after the reset has ID %v, the reset event said %d", h, first)
	}
}

// TestSlowSubscriberIsToldWhatItMissed: a subscriber that does not read
// loses what its channel has no room for, never blocking the lab, and the
// next event it gets says how many it lost; every event is either delivered
// or counted as missed, and MissedEvents totals the losses.
func TestSlowSubscriberIsToldWhatItMissed(t *testing.T) {
	l := newLab(t, lab.Config{})
	stock(t, l, inventory.Consensus, "us-east-1", 5)
	slow, cancelSlow := l.Subscribe()
	defer cancelSlow()
	fast, cancelFast := l.Subscribe()
	defer cancelFast()
	missedBefore := l.MissedEvents()

	// fast keeps up: for each operation event, the events delivered and
	// missed so far, that one included.
	var mu sync.Mutex
	fastAt := map[int][2]int64{}
	go func() {
		var seen, missed int64
		for ev := range fast {
			seen++
			missed += ev.Missed
			if ev.Type == lab.EventOperation && ev.Outcome != nil {
				mu.Lock()
				fastAt[ev.Outcome.OpID] = [2]int64{seen, missed}
				mu.Unlock()
			}
		}
	}()

	read := func() int {
		o, err := l.Read(ctxT(t, 30*time.Second), inventory.Consensus, "IPHONE", "us-east-1", "serializable")
		if mustOutcome(t, o, err).Outcome != inventory.OK {
			t.Fatalf("read: %+v", o)
		}
		return o.OpID
	}
	const reads = 400 // more than the channel's 256
	for range reads {
		read()
	}
	time.Sleep(200 * time.Millisecond) // the reads' coalesced state event goes out
	var seen, missed int64
	for drained := false; !drained; { // what the slow subscriber's channel held
		select {
		case ev := <-slow:
			seen++
			missed += ev.Missed
		default:
			drained = true
		}
	}
	last := read()
	for done := false; !done; {
		select {
		case ev := <-slow:
			seen++
			missed += ev.Missed
			done = ev.Type == lab.EventOperation && ev.Outcome != nil && ev.Outcome.OpID == last
		case <-time.After(10 * time.Second):
			t.Fatalf("the slow subscriber never got the final read %d (%d delivered, %d missed)", last, seen, missed)
		}
	}
	var f [2]int64
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		at, ok := fastAt[last]
		mu.Unlock()
		if ok {
			f = at
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the fast subscriber never got the final read %d", last)
		}
	}

	if missed == 0 {
		t.Fatalf("the slow subscriber got %d events and was told of no loss after %d reads", seen, reads)
	}
	if seen+missed != f[0]+f[1] {
		t.Errorf("slow: %d delivered + %d missed, fast: %d + %d; every event is delivered or counted", seen, missed, f[0], f[1])
	}
	if got := l.MissedEvents() - missedBefore; got != missed+f[1] {
		t.Errorf("MissedEvents grew by %d, the subscribers were told of %d", got, missed+f[1])
	}
	t.Logf("slow: %d delivered, %d missed; fast: %d delivered, %d missed", seen, missed, f[0], f[1])
}
