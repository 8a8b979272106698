package inventory

import (
	"sync"
	"time"
)

// Clock is a hybrid logical clock (Kulkarni et al., "Logical Physical
// Clocks", 2014) for one region. The versions it issues follow causality —
// a version issued after Observe(v) is never Less than v — and stay close to
// physical time: Wall is in Unix milliseconds and only runs ahead of the
// physical clock when a remote version did. Every Version it issues carries
// the clock's region, so versions from different regions never tie.
//
// A Clock is safe for concurrent use.
type Clock struct {
	region string
	now    func() time.Time

	mu   sync.Mutex
	last Version // the latest version issued or observed (Region unused)
}

// NewClock returns a clock for region that reads physical time from now
// (time.Now when now is nil).
func NewClock(region string, now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{region: region, now: now}
}

// Now issues a new version for a local event (a write). Wall is the larger
// of the physical time in milliseconds and the last wall time seen; Logical
// restarts at 0 when Wall advanced and is incremented when it did not.
// Successive calls return strictly increasing versions.
func (c *Clock) Now() Version {
	pt := c.now().UnixMilli()
	c.mu.Lock()
	defer c.mu.Unlock()
	if pt > c.last.Wall {
		c.last = Version{Wall: pt}
	} else {
		c.last.Logical++
	}
	return Version{Wall: c.last.Wall, Logical: c.last.Logical, Region: c.region}
}

// Observe merges a version received from another region (the HLC receive
// rule): the clock's wall time becomes the largest of its own, the remote
// one and physical time, and the logical counter moves past every counter
// that shares that wall time. The next Now is then greater than v.
// Observing the zero Version changes nothing but physical time.
func (c *Clock) Observe(v Version) {
	pt := c.now().UnixMilli()
	c.mu.Lock()
	defer c.mu.Unlock()
	wall := max(c.last.Wall, v.Wall, pt)
	var logical int64
	switch {
	case wall == c.last.Wall && wall == v.Wall:
		logical = max(c.last.Logical, v.Logical) + 1
	case wall == c.last.Wall:
		logical = c.last.Logical + 1
	case wall == v.Wall:
		logical = v.Logical + 1
	default: // physical time is ahead of both
		logical = 0
	}
	c.last = Version{Wall: wall, Logical: logical}
}
