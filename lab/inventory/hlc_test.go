package inventory

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// hlcFakeTime is a settable physical clock for Clock tests.
type hlcFakeTime struct {
	mu sync.Mutex
	ms int64
}

func (f *hlcFakeTime) set(ms int64) { f.mu.Lock(); f.ms = ms; f.mu.Unlock() }
func (f *hlcFakeTime) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.UnixMilli(f.ms)
}

func TestClockNow(t *testing.T) {
	tests := []struct {
		name  string
		times []int64 // physical ms before each Now
		want  []Version
	}{
		{"advancing", []int64{100, 200, 300}, []Version{{100, 0, "r"}, {200, 0, "r"}, {300, 0, "r"}}},
		{"stalled", []int64{100, 100, 100}, []Version{{100, 0, "r"}, {100, 1, "r"}, {100, 2, "r"}}},
		{"backwards", []int64{100, 50, 100, 101}, []Version{{100, 0, "r"}, {100, 1, "r"}, {100, 2, "r"}, {101, 0, "r"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := &hlcFakeTime{}
			c := NewClock("r", ft.now)
			for i, ms := range tt.times {
				ft.set(ms)
				if got := c.Now(); got != tt.want[i] {
					t.Fatalf("Now #%d at %dms = %+v, want %+v", i, ms, got, tt.want[i])
				}
			}
		})
	}
}

func TestClockObserve(t *testing.T) {
	tests := []struct {
		name     string
		physical int64
		local    Version // issued by one Now before Observe (Wall = physical at that time)
		remote   Version
		want     Version // next Now, with the physical clock unchanged
	}{
		{"remote ahead", 100, Version{100, 0, "a"}, Version{500, 7, "b"}, Version{500, 9, "a"}},
		{"local ahead", 100, Version{100, 3, "a"}, Version{50, 9, "b"}, Version{100, 5, "a"}},
		{"same wall", 100, Version{100, 3, "a"}, Version{100, 9, "b"}, Version{100, 11, "a"}},
		{"physical ahead", 1000, Version{100, 0, "a"}, Version{200, 4, "b"}, Version{1000, 1, "a"}},
		{"zero remote", 100, Version{100, 0, "a"}, Version{}, Version{100, 2, "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := &hlcFakeTime{}
			c := NewClock("a", ft.now)
			ft.set(tt.local.Wall)
			for range tt.local.Logical + 1 {
				c.Now()
			}
			ft.set(tt.physical)
			c.Observe(tt.remote)
			got := c.Now()
			if got != tt.want {
				t.Fatalf("Now after Observe(%+v) = %+v, want %+v", tt.remote, got, tt.want)
			}
			if !tt.remote.Less(got) {
				t.Fatalf("Now %+v is not after the observed %+v", got, tt.remote)
			}
		})
	}
}

// TestClockCausality exchanges messages between regions with skewed,
// jumping physical clocks and checks that every version issued after
// receiving a message is newer than the message, and that each region's
// versions strictly increase.
func TestClockCausality(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-1"}
	times := make([]*hlcFakeTime, len(regions))
	clocks := make([]*Clock, len(regions))
	last := make([]Version, len(regions))
	for i, r := range regions {
		times[i] = &hlcFakeTime{ms: 1000 + int64(i)*300}
		clocks[i] = NewClock(r, times[i].now)
	}
	for step := range 5000 {
		i, j := rng.IntN(len(regions)), rng.IntN(len(regions))
		times[i].set(times[i].ms + int64(rng.IntN(5)) - 1) // may stall or step back
		msg := clocks[i].Now()
		if !last[i].Less(msg) {
			t.Fatalf("step %d: %s issued %+v after %+v", step, regions[i], msg, last[i])
		}
		last[i] = msg
		clocks[j].Observe(msg)
		got := clocks[j].Now()
		if !msg.Less(got) {
			t.Fatalf("step %d: %s issued %+v after observing %+v", step, regions[j], got, msg)
		}
		if got.Region != regions[j] {
			t.Fatalf("step %d: region %q, want %q", step, got.Region, regions[j])
		}
		last[j] = got
	}
}

func TestClockConcurrent(t *testing.T) {
	c := NewClock("r", nil)
	const goroutines, each = 8, 500
	results := make(chan Version, goroutines*each)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				results <- c.Now()
			}
		})
	}
	wg.Wait()
	close(results)
	seen := map[Version]bool{}
	for v := range results {
		if seen[v] {
			t.Fatalf("version %+v issued twice", v)
		}
		seen[v] = true
	}
}
