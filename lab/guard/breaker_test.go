package guard_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"caplab/lab/guard"
	"caplab/lab/inventory"
)

// brkRecorder records OnChange calls.
type brkRecorder struct {
	mu      sync.Mutex
	changes []string
}

func (r *brkRecorder) onChange(region string, store inventory.Store, from, to string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, region+"/"+string(store)+" "+from+"→"+to)
}

func (r *brkRecorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.changes)
}

// brkStore is a fake store call: it answers with kind after delay and
// counts its calls.
type brkStore struct {
	calls int
	kind  inventory.Kind
	delay time.Duration
}

func (s *brkStore) call() inventory.Outcome {
	s.calls++
	time.Sleep(s.delay)
	return inventory.Outcome{Outcome: s.kind, LatencyMs: float64(s.delay.Milliseconds())}
}

func TestBreakerSettingsDefaults(t *testing.T) {
	tests := []struct {
		in, want guard.BreakerSettings
	}{
		{guard.BreakerSettings{}, guard.BreakerSettings{Threshold: 3, Cooldown: 5 * time.Second}},
		{guard.BreakerSettings{Threshold: 1, Cooldown: time.Second}, guard.BreakerSettings{Threshold: 1, Cooldown: time.Second}},
		{guard.BreakerSettings{Cooldown: -1}, guard.BreakerSettings{Threshold: 3, Cooldown: 5 * time.Second}},
	}
	for _, tt := range tests {
		got := guard.WithDefaults(tt.in)
		if got.Threshold != tt.want.Threshold || got.Cooldown != tt.want.Cooldown {
			t.Errorf("%+v.withDefaults() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestBreakerOpensAndFailsFast(t *testing.T) {
	for _, threshold := range []uint32{1, 3, 5} {
		t.Run(fmt.Sprintf("threshold %d", threshold), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &brkRecorder{}
				b := guard.NewBreakers([]string{"us-east-1", "ap-southeast-1"}, guard.BreakerSettings{Threshold: threshold, OnChange: rec.onChange})
				store := &brkStore{kind: inventory.Unavailable, delay: 2 * time.Second}
				for i := range threshold {
					if got := b.Execute("ap-southeast-1", inventory.Replicated, store.call); got.Outcome != inventory.Unavailable {
						t.Fatalf("call %d: %s, want unavailable passed through", i, got.Outcome)
					}
				}
				if s := b.State("ap-southeast-1", inventory.Replicated); s != guard.BreakerOpen {
					t.Fatalf("after %d unavailable: %s, want open", threshold, s)
				}

				start := time.Now()
				got := b.Execute("ap-southeast-1", inventory.Replicated, store.call)
				if elapsed := time.Since(start); elapsed != 0 {
					t.Errorf("fail-fast took %v of fake time, want none", elapsed)
				}
				if store.calls != int(threshold) {
					t.Errorf("store called %d times, want %d: an open breaker must not call it", store.calls, threshold)
				}
				wantMsg := fmt.Sprintf("Service temporarily unavailable — retry later: the circuit breaker for replicated in ap-southeast-1 is open after %d failed calls.", threshold)
				if got.Outcome != inventory.FailFast || got.Store != inventory.Replicated || got.Region != "ap-southeast-1" || got.Message != wantMsg || got.LatencyMs >= 1 {
					t.Errorf("fail-fast outcome = %+v", got)
				}

				// Other breakers are untouched.
				for _, other := range []struct {
					region string
					store  inventory.Store
				}{{"ap-southeast-1", inventory.Consensus}, {"us-east-1", inventory.Replicated}} {
					if s := b.State(other.region, other.store); s != guard.BreakerClosed {
						t.Errorf("%s/%s is %s, want closed", other.region, other.store, s)
					}
				}
				if want := []string{"ap-southeast-1/replicated closed→open"}; !slices.Equal(rec.got(), want) {
					t.Errorf("changes = %v, want %v", rec.got(), want)
				}
			})
		})
	}
}

func TestBreakerRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &brkRecorder{}
		b := guard.NewBreakers([]string{"eu-west-1"}, guard.BreakerSettings{OnChange: rec.onChange})
		down := &brkStore{kind: inventory.Unavailable, delay: time.Second}
		for range 3 {
			b.Execute("eu-west-1", inventory.Consensus, down.call)
		}
		time.Sleep(4 * time.Second)
		if s := b.State("eu-west-1", inventory.Consensus); s != guard.BreakerOpen {
			t.Fatalf("before the cooldown: %s, want open", s)
		}
		time.Sleep(2 * time.Second)
		if s := b.State("eu-west-1", inventory.Consensus); s != guard.BreakerHalfOpen {
			t.Fatalf("after the cooldown: %s, want half-open", s)
		}

		// A failed trial opens it again; the next cooldown and a success close it.
		if got := b.Execute("eu-west-1", inventory.Consensus, down.call); got.Outcome != inventory.Unavailable || down.calls != 4 {
			t.Fatalf("trial call: %s after %d calls", got.Outcome, down.calls)
		}
		if s := b.State("eu-west-1", inventory.Consensus); s != guard.BreakerOpen {
			t.Fatalf("after a failed trial: %s, want open", s)
		}
		time.Sleep(5*time.Second + time.Millisecond)
		up := &brkStore{kind: inventory.OK, delay: 80 * time.Millisecond}
		if got := b.Execute("eu-west-1", inventory.Consensus, up.call); got.Outcome != inventory.OK || up.calls != 1 {
			t.Fatalf("trial call: %s after %d calls", got.Outcome, up.calls)
		}
		if s := b.State("eu-west-1", inventory.Consensus); s != guard.BreakerClosed {
			t.Fatalf("after a good trial: %s, want closed", s)
		}
		want := []string{
			"eu-west-1/consensus closed→open",
			"eu-west-1/consensus open→half-open",
			"eu-west-1/consensus half-open→open",
			"eu-west-1/consensus open→half-open",
			"eu-west-1/consensus half-open→closed",
		}
		if !slices.Equal(rec.got(), want) {
			t.Errorf("changes = %v\nwant %v", rec.got(), want)
		}
	})
}

// TestBreakerOutcomesThatCountAsSuccess: only unavailable is a failure, so
// sold_out, conflict and ok between unavailable answers keep it closed.
func TestBreakerOutcomesThatCountAsSuccess(t *testing.T) {
	for _, kind := range []inventory.Kind{inventory.OK, inventory.SoldOut, inventory.Conflict, inventory.FailFast} {
		t.Run(string(kind), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := guard.NewBreakers([]string{"us-east-1"}, guard.BreakerSettings{})
				down := &brkStore{kind: inventory.Unavailable}
				other := &brkStore{kind: kind}
				for range 4 {
					b.Execute("us-east-1", inventory.Replicated, down.call)
					b.Execute("us-east-1", inventory.Replicated, down.call)
					if got := b.Execute("us-east-1", inventory.Replicated, other.call); got.Outcome != kind {
						t.Fatalf("outcome %s, want %s passed through", got.Outcome, kind)
					}
				}
				if s := b.State("us-east-1", inventory.Replicated); s != guard.BreakerClosed || down.calls != 8 {
					t.Errorf("state %s after %d unavailable calls, want closed after 8", s, down.calls)
				}
			})
		})
	}
}

// TestBreakerHalfOpenBusy: while the one trial call runs, others fail fast.
func TestBreakerHalfOpenBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := guard.NewBreakers([]string{"us-east-1"}, guard.BreakerSettings{Threshold: 1, Cooldown: time.Second})
		b.Execute("us-east-1", inventory.Consensus, (&brkStore{kind: inventory.Unavailable}).call)
		time.Sleep(time.Second + time.Millisecond)

		slow := &brkStore{kind: inventory.OK, delay: 300 * time.Millisecond}
		done := make(chan inventory.Outcome)
		go func() { done <- b.Execute("us-east-1", inventory.Consensus, slow.call) }()
		synctest.Wait() // the trial call is sleeping inside the store

		other := &brkStore{kind: inventory.OK}
		got := b.Execute("us-east-1", inventory.Consensus, other.call)
		if got.Outcome != inventory.FailFast || other.calls != 0 || !strings.Contains(got.Message, "half-open") {
			t.Errorf("concurrent call during the trial: %+v (store called %d times)", got, other.calls)
		}
		if trial := <-done; trial.Outcome != inventory.OK {
			t.Errorf("trial call: %s, want ok", trial.Outcome)
		}
		if s := b.State("us-east-1", inventory.Consensus); s != guard.BreakerClosed {
			t.Errorf("after the trial: %s, want closed", s)
		}
	})
}

func TestBreakerResetAndStates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &brkRecorder{}
		b := guard.NewBreakers([]string{"us-east-1"}, guard.BreakerSettings{Threshold: 1, OnChange: rec.onChange})
		b.Execute("us-east-1", inventory.Replicated, (&brkStore{kind: inventory.Unavailable}).call)
		want := map[inventory.Store]string{inventory.Consensus: guard.BreakerClosed, inventory.Replicated: guard.BreakerOpen}
		if got := b.States("us-east-1"); len(got) != len(inventory.Stores) || got[inventory.Consensus] != want[inventory.Consensus] || got[inventory.Replicated] != want[inventory.Replicated] {
			t.Errorf("States = %v, want %v", got, want)
		}
		b.Reset()
		if got := b.States("us-east-1"); got[inventory.Replicated] != guard.BreakerClosed {
			t.Errorf("after Reset: %v, want all closed", got)
		}
		if len(rec.got()) != 1 {
			t.Errorf("changes = %v: Reset must not report", rec.got())
		}
		// A region the lab did not list gets a closed breaker on first use.
		if s := b.State("sa-east-1", inventory.Consensus); s != guard.BreakerClosed {
			t.Errorf("new region: %s", s)
		}
	})
}

// TestBreakerOnChangeMayCallBack: OnChange runs outside the breaker's lock,
// so it can read states (as the lab does to publish them).
func TestBreakerOnChangeMayCallBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b *guard.Breakers
		var seen []map[inventory.Store]string
		b = guard.NewBreakers([]string{"us-east-1"}, guard.BreakerSettings{Threshold: 1, Cooldown: time.Second,
			OnChange: func(region string, store inventory.Store, from, to string) {
				seen = append(seen, b.States(region))
			}})
		b.Execute("us-east-1", inventory.Consensus, (&brkStore{kind: inventory.Unavailable}).call)
		time.Sleep(2 * time.Second)
		b.State("us-east-1", inventory.Consensus) // open → half-open, reported from inside State
		if len(seen) != 2 || seen[0][inventory.Consensus] != guard.BreakerOpen || seen[1][inventory.Consensus] != guard.BreakerHalfOpen {
			t.Errorf("states seen from OnChange = %v", seen)
		}
	})
}
