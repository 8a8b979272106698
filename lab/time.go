package lab

import (
	"fmt"
	"sync"
	"time"

	"caplab/lab/inventory"
	"caplab/nodes"
)

// MaxClockOffset and MaxClockDrift bound a region's clock (the nodes
// package's rule).
const (
	MaxClockOffset = nodes.MaxClockOffset
	MaxClockDrift  = nodes.MaxClockDrift
)

// Time is the lab's room for time: each region's wall clock, which the
// replicated store's hybrid logical clock reads (so SetClock skews its
// last-writer-wins order; etcd's own timers are not skewed), and each
// region's shop, which Pause freezes mid-flight.
type Time struct {
	clocks  *nodes.Clocks
	regions []string
	pauses  pauses
	stop    <-chan struct{}
	// happened records a change (Lab.faultHappened).
	happened func(kind inventory.FaultKind, regions []string, detail string, act *RecordedAction)
}

// Time is the lab's room for clocks and shop pauses.
func (l *Lab) Time() *Time { return l.time }

// SetClock sets region's wall clock: offsetMs from true time (within
// ±1 h) and a drift in ppm (within ±100,000). The replicated store's hybrid
// logical clock in that region reads it; etcd's own timers do not (they
// run on monotonic time). Bad input changes nothing.
func (t *Time) SetClock(region string, offsetMs, driftPpm float64) error {
	if err := inventory.CheckRegion(t.regions, region); err != nil {
		return err
	}
	if err := t.clocks.Set(region, nodes.ClockSetting{OffsetMs: offsetMs, DriftPpm: driftPpm}); err != nil {
		return wrapNodes(err)
	}
	detail := fmt.Sprintf("%s clock %s", region, formatOffset(offsetMs))
	if driftPpm != 0 {
		detail += fmt.Sprintf(", drift %g ppm", driftPpm)
	}
	t.happened(inventory.FaultClock, []string{region}, detail, &RecordedAction{Kind: ActClock, Regions: []string{region}, OffsetMs: offsetMs, DriftPpm: driftPpm})
	return nil
}

// ResetClocks puts every region's clock back to true time.
func (t *Time) ResetClocks() error {
	t.clocks.Reset()
	t.happened(inventory.FaultClock, nil, "every clock at true time", &RecordedAction{Kind: ActClock})
	return nil
}

// Clock is region's clock as State shows it.
func (t *Time) Clock(region string) nodes.ClockState { return t.clocks.State(region) }

func formatOffset(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}

// pauses holds, per region, until when the region's shop is paused. A
// paused shop freezes at its next step — mid-flight — until then: a
// reservation between reading the stock and writing the sale, any other
// request before it reaches the store. Like a long GC pause or a VM
// migration, a frozen shop ignores deadlines and keeps no lease alive.
type pauses struct {
	mu    sync.Mutex
	until map[string]time.Time
	wake  chan struct{} // closed (and replaced) by clear: every frozen shop wakes
}

func (p *pauses) set(region string, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.until == nil {
		p.until = map[string]time.Time{}
	}
	p.until[region] = until
}

// clear ends every pause at once (a reset, Close).
func (p *pauses) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.until)
	if p.wake != nil {
		close(p.wake)
		p.wake = nil
	}
}

func (p *pauses) wakeup() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wake == nil {
		p.wake = make(chan struct{})
	}
	return p.wake
}

// remaining is how long region's shop stays frozen from now (0: it runs).
func (p *pauses) remaining(region string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(0, time.Until(p.until[region]))
}

// hold freezes the calling shop of region until its pause ends, the
// pauses are cleared or the lab closes. It reports how long it froze.
func (p *pauses) hold(region string, stop <-chan struct{}) time.Duration {
	d := p.remaining(region)
	if d <= 0 {
		return 0
	}
	wake := p.wakeup()
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-wake:
	case <-stop:
	}
	return time.Since(start)
}

// Pause freezes region's shop for seconds (0 < seconds ≤ 60) from now: its
// requests stop mid-flight and resume when the pause ends.
func (t *Time) Pause(region string, seconds float64) error {
	if err := inventory.CheckRegion(t.regions, region); err != nil {
		return err
	}
	if err := inventory.CheckPause(seconds); err != nil {
		return err
	}
	d := time.Duration(seconds * float64(time.Second))
	t.pauses.set(region, time.Now().Add(d))
	t.happened(inventory.FaultPause, []string{region}, fmt.Sprintf("%s's shop paused for %v", region, d), &RecordedAction{Kind: ActPause, Regions: []string{region}, Seconds: seconds})
	return nil
}

// shopPauses is pauses as a reservation's freezer sees them.
type shopPauses struct {
	p    *pauses
	stop <-chan struct{}
}

func (s shopPauses) Paused(region string) time.Duration { return s.p.remaining(region) }
func (s shopPauses) Hold(region string) time.Duration   { return s.p.hold(region, s.stop) }

// Paused is how long region's shop stays paused from now.
func (t *Time) Paused(region string) time.Duration { return t.pauses.remaining(region) }
