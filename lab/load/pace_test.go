package load

import (
	"context"
	"math"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func (p *pacer) rate() float64 { return math.Float64frombits(p.limit.Load()) }

// TestPacerAdjusts: over the target the rate drops to three quarters of
// what went through (never below the floor); under it the rate grows back
// while arrivals are held, and the limit goes once nothing is held.
func TestPacerAdjusts(t *testing.T) {
	var p pacer
	sec := time.Second
	p.passed.Store(4000)
	p.adjust(5*time.Millisecond, sec)
	if p.rate() != 0 {
		t.Fatalf("an idle scheduler set a limit of %v", p.rate())
	}
	p.passed.Store(4000)
	p.adjust(40*time.Millisecond, sec)
	if p.rate() != 3000 {
		t.Fatalf("busy after 4000 arrivals a second: limit %v, want 3000", p.rate())
	}
	p.passed.Store(3000)
	p.held.Store(1000)
	p.adjust(40*time.Millisecond, sec)
	if p.rate() != 2250 {
		t.Fatalf("still busy: limit %v, want 2250", p.rate())
	}
	for range 20 {
		p.passed.Store(300)
		p.held.Store(700)
		p.adjust(time.Second, sec)
	}
	if p.rate() != paceFloor {
		t.Fatalf("busy for long: limit %v, want the floor %v", p.rate(), paceFloor)
	}
	p.passed.Store(250)
	p.held.Store(3750)
	p.adjust(time.Millisecond, sec)
	if p.rate() != paceFloor*paceGrow {
		t.Fatalf("calm again: limit %v, want %v", p.rate(), paceFloor*paceGrow)
	}
	p.passed.Store(275)
	p.adjust(time.Millisecond, sec) // nothing held back: no limit
	if p.rate() != 0 {
		t.Fatalf("nothing held back: limit %v, want none", p.rate())
	}
	if held := p.heldAll.Load(); held != 0 {
		t.Fatalf("adjust counted %d held arrivals; only admit does", held)
	}
	// A load offering no more than the floor is never limited, however
	// busy the machine.
	p.passed.Store(int64(paceFloor))
	p.adjust(time.Second, sec)
	if p.rate() != 0 {
		t.Fatalf("a load of %v arrivals a second was limited to %v", paceFloor, p.rate())
	}
}

// TestPacerLetsASmallLoadThrough: a lesson's load (75 arrivals a second)
// on a busy machine loses no arrival, even just after a limit was set.
func TestPacerLetsASmallLoadThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var p pacer
		p.passed.Store(1000)
		p.adjust(time.Second, time.Second) // busy, after a big load: a limit
		for range 750 {
			if !p.admit() {
				t.Fatal("an arrival of a small load was held back")
			}
			time.Sleep(time.Second / 75)
		}
		p.adjust(time.Second, 10*time.Second) // still busy, over the 10 s those arrivals took
		if p.rate() != 0 {
			t.Fatalf("75 arrivals a second are limited to %v", p.rate())
		}
	})
}

// TestPacerTokenBucket: with a limit, admit lets through that many
// arrivals a second (a tenth of a second's burst) and holds back the rest.
func TestPacerTokenBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var p pacer
		p.passed.Store(1000)
		p.adjust(time.Second, time.Second) // over the target: 750 a second
		if p.rate() != 750 {
			t.Fatalf("limit %v", p.rate())
		}
		went := 0
		for range 2000 { // 2000 arrivals a second for a second
			if p.admit() {
				went++
			}
			time.Sleep(500 * time.Microsecond)
		}
		if went < 700 || went > 850 {
			t.Fatalf("%d of 2000 arrivals went in a second at 750 a second", went)
		}
		if held := p.heldAll.Load(); int(held) != 2000-went {
			t.Fatalf("held %d, want %d", held, 2000-went)
		}
	})
}

// TestPacerSeesABusyMachine: while goroutines that never block keep
// every core busy, the scheduler's p99 wait is over the target; the
// pacer reads it from the runtime as it is.
func TestPacerSeesABusyMachine(t *testing.T) {
	lat := newSchedLatency()
	ctx, cancel := context.WithCancel(context.Background())
	var spin sync.WaitGroup
	for range 4 * runtime.GOMAXPROCS(0) {
		spin.Go(func() {
			for ctx.Err() == nil {
				for i := 0; i < 1e6; i++ {
				}
			}
		})
	}
	// Goroutines that wake every millisecond wait for a core each time.
	var wake sync.WaitGroup
	for range 20 {
		wake.Go(func() {
			for ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	busy := time.Duration(0)
	for time.Now().Before(deadline) && busy <= paceTarget {
		time.Sleep(paceEvery)
		busy = lat.p99()
	}
	cancel()
	spin.Wait()
	wake.Wait()
	if busy <= paceTarget {
		t.Fatalf("with every core busy the scheduler's p99 wait read %v, not over %v", busy, paceTarget)
	}
}
