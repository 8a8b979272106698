package lab

import (
	"fmt"
	"math"
	"time"

	"caplab/nodes"
)

// SetClock sets region's wall clock: offsetMs from true time (within
// ±1 h) and a drift in ppm (within ±100,000). The replicated store's hybrid
// logical clock in that region reads it; etcd's own timers do not (they
// run on monotonic time). Bad input changes nothing.
func (l *Lab) SetClock(region string, offsetMs, driftPpm float64) error {
	if err := l.CheckRegion(region); err != nil {
		return err
	}
	if err := l.clocks.Set(region, nodes.ClockSetting{OffsetMs: offsetMs, DriftPpm: driftPpm}); err != nil {
		return wrapNodes(err)
	}
	detail := fmt.Sprintf("%s clock %s", region, formatOffset(offsetMs))
	if driftPpm != 0 {
		detail += fmt.Sprintf(", drift %g ppm", driftPpm)
	}
	l.fault(FaultClock, []string{region}, detail)
	l.actions.add(RecordedAction{Kind: ActClock, Regions: []string{region}, OffsetMs: offsetMs, DriftPpm: driftPpm})
	return nil
}

// ResetClocks puts every region's clock back to true time.
func (l *Lab) ResetClocks() error {
	l.clocks.Reset()
	l.fault(FaultClock, nil, "every clock at true time")
	l.actions.add(RecordedAction{Kind: ActClock})
	return nil
}

// Clock is region's clock as State shows it.
func (l *Lab) Clock(region string) nodes.ClockState { return l.clocks.State(region) }

func formatOffset(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}

// skewBlame is how far from real time a version's wall stamp must be
// before the checker's explanation blames the clock.
const skewBlame = 500 * time.Millisecond

// explainSkew adds to a replicated store's verdict why its lost updates
// went the way they did, when the version that stands carries a stamp from
// a clock running ahead: last-writer-wins then keeps it over writes made
// later in real time. It reads only the history (the version's wall stamp
// against the time its write returned).
func explainSkew(r CheckResult, ops []Operation) CheckResult {
	if r.Store != Replicated || r.LostUpdates == 0 {
		return r
	}
	var win *Operation
	for i := range ops {
		op := &ops[i]
		if op.Outcome != OK || (op.Op != OpBuy && op.Op != OpStock) || op.Version.IsZero() {
			continue
		}
		if win == nil || win.Version.Less(op.Version) {
			win = op
		}
	}
	if win == nil {
		return r
	}
	ahead := time.Duration(win.Version.Wall-win.Return.UnixMilli()) * time.Millisecond
	if ahead < skewBlame {
		return r
	}
	later := 0
	for _, op := range ops {
		if op.Outcome == OK && (op.Op == OpBuy || op.Op == OpStock) && op.SKU == win.SKU && op.Call.After(win.Return) {
			later++
		}
	}
	r.Explanation += fmt.Sprintf(" Why this value stands: its version was stamped by %s's clock, running %.1f s ahead of real time, so last-writer-wins kept it over %d write(s) made later in real time.",
		win.Region, math.Round(ahead.Seconds()*10)/10, later)
	return r
}
