package nodes

import (
	"errors"
	"math"
	"testing"
)

// SetSpeed makes every link faster by its factor, keeps it across later
// latency changes, and refuses a factor that would slow a link down past
// what Raft's timers were set for (or is no number), changing nothing.
func TestFabricSpeed(t *testing.T) {
	f := newFabric([]string{"us-east-1", "eu-west-1"}, 0.5, nil)
	delay := func() float64 { return f.link("us-east-1", "eu-west-1").status().DelayMs }
	start := delay() // 76 ms round trip, one way 38 × 0.5
	if start != 19 || f.Speed() != 1 {
		t.Fatalf("start: delay %v ms, speed %v", start, f.Speed())
	}
	for _, bad := range []float64{0, -1, 1.01, math.NaN(), math.Inf(1)} {
		if err := f.SetSpeed(bad); !errors.Is(err, ErrBadOperation) {
			t.Errorf("SetSpeed(%v) = %v, want ErrBadOperation", bad, err)
		}
	}
	if delay() != start || f.Speed() != 1 {
		t.Fatalf("a refused speed changed the delay to %v (speed %v)", delay(), f.Speed())
	}
	if err := f.SetSpeed(0.25); err != nil {
		t.Fatal(err)
	}
	if got := delay(); got != start*0.25 {
		t.Errorf("at speed 0.25 the delay is %v ms, want %v", got, start*0.25)
	}
	if err := f.SetRTT("us-east-1", "eu-west-1", 200, false); err != nil {
		t.Fatal(err)
	}
	if got := delay(); got != 200.0/2*0.5*0.25 {
		t.Errorf("a latency change lost the speed: %v ms", got)
	}
	if err := f.SetSpeed(1); err != nil || delay() != 50 {
		t.Errorf("back to speed 1: %v, delay %v ms", err, delay())
	}
}
