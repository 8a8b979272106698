package lab

import (
	"fmt"
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
	l.faultHappened(FaultClock, []string{region}, detail, &RecordedAction{Kind: ActClock, Regions: []string{region}, OffsetMs: offsetMs, DriftPpm: driftPpm})
	return nil
}

// ResetClocks puts every region's clock back to true time.
func (l *Lab) ResetClocks() error {
	l.clocks.Reset()
	l.faultHappened(FaultClock, nil, "every clock at true time", &RecordedAction{Kind: ActClock})
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
