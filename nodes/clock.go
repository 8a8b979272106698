package nodes

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Limits of a region clock's settings.
const (
	MaxClockOffset = time.Hour
	MaxClockDrift  = 100_000 // ppm: 10 % fast or slow
)

// ClockSetting is how a region's clock differs from true time: a fixed
// offset plus a drift rate (parts per million) that accumulates from the
// moment it was set.
type ClockSetting struct {
	OffsetMs float64 `json:"offsetMs"`
	DriftPpm float64 `json:"driftPpm"`
}

// ClockState is a region clock as State shows it: its setting and how far
// ahead (positive) or behind it reads now.
type ClockState struct {
	ClockSetting
	SkewMs float64 `json:"skewMs"`
}

type clockSet struct {
	offset time.Duration
	drift  float64   // ppm
	since  time.Time // true time (with its monotonic reading) of the setting
}

// Clocks holds one wall clock per region, as links hold delays: the lab's
// own readers of wall time for a region (the replicated store's hybrid
// logical clock) read it. etcd's Raft and lease timers are not among them:
// they run on each member's monotonic clock, which an offset of the wall
// clock does not move — as Jepsen found for etcd 3.4.3, skew leaves etcd
// linearizable. Safe for concurrent use; every region starts at true time.
type Clocks struct {
	regions []string
	now     func() time.Time

	mu  sync.RWMutex
	set map[string]clockSet
}

// NewClocks returns true clocks for regions.
func NewClocks(regions []string) *Clocks {
	return &Clocks{regions: slices.Clone(regions), now: time.Now, set: map[string]clockSet{}}
}

// Now is region's wall-clock reading: true time plus its offset plus the
// drift accumulated since the setting.
func (c *Clocks) Now(region string) time.Time {
	t := c.now()
	c.mu.RLock()
	s, ok := c.set[region]
	c.mu.RUnlock()
	if !ok {
		return t
	}
	return t.Add(s.skew(t))
}

func (s clockSet) skew(t time.Time) time.Duration {
	return s.offset + time.Duration(float64(t.Sub(s.since))*s.drift/1e6)
}

// Reader returns a function reading region's clock (for a clock consumer
// that takes a func() time.Time).
func (c *Clocks) Reader(region string) func() time.Time {
	return func() time.Time { return c.Now(region) }
}

// Set changes region's clock: offset from true time and drift in ppm.
// Offsets beyond ±MaxClockOffset, drifts beyond ±MaxClockDrift and unknown
// regions are refused with ErrBadOperation; nothing changes then.
func (c *Clocks) Set(region string, s ClockSetting) error {
	if !slices.Contains(c.regions, region) {
		return fmt.Errorf("nodes: clock: %w: region '%s' is not in this lab (regions: %s)", ErrBadOperation, region, strings.Join(c.regions, ", "))
	}
	if math.IsNaN(s.OffsetMs) || math.Abs(s.OffsetMs) > float64(MaxClockOffset/time.Millisecond) {
		return fmt.Errorf("nodes: clock: %w: offset must be within ±1 h (±3600000 ms), got %g ms", ErrBadOperation, s.OffsetMs)
	}
	if math.IsNaN(s.DriftPpm) || math.Abs(s.DriftPpm) > MaxClockDrift {
		return fmt.Errorf("nodes: clock: %w: drift must be within ±%d ppm, got %g ppm", ErrBadOperation, MaxClockDrift, s.DriftPpm)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.OffsetMs == 0 && s.DriftPpm == 0 {
		delete(c.set, region)
		return nil
	}
	c.set[region] = clockSet{offset: time.Duration(s.OffsetMs * float64(time.Millisecond)), drift: s.DriftPpm, since: c.now()}
	return nil
}

// Reset puts every region's clock back to true time.
func (c *Clocks) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.set)
}

// State is region's clock setting and its skew now.
func (c *Clocks) State(region string) ClockState {
	t := c.now()
	c.mu.RLock()
	s, ok := c.set[region]
	c.mu.RUnlock()
	if !ok {
		return ClockState{}
	}
	return ClockState{
		ClockSetting: ClockSetting{OffsetMs: float64(s.offset) / float64(time.Millisecond), DriftPpm: s.drift},
		SkewMs:       math.Round(float64(s.skew(t))/float64(time.Microsecond)) / 1000,
	}
}
