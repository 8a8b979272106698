package nodes

import (
	"slices"
	"time"
)

// Snapshot is the cluster's state at one moment.
type Snapshot struct {
	Seq          uint64 // increases with every published snapshot
	At           time.Time
	Regions      []RegionStatus
	Links        []LinkStatus
	LatencyScale float64
	Timing       Timing
	Zones        []ZoneStatus // every zone's member of its regional group (zones.go)
	ZoneLinks    []LinkStatus // links between the zones of each region
}

// State reads the cluster's state now; Seq is that of the last published
// snapshot.
func (c *Cluster) State() Snapshot {
	s := Snapshot{Seq: c.seq.Load(), At: time.Now(), LatencyScale: c.cfg.LatencyScale, Timing: c.Timing()}
	if c.remote != nil { // as the agents report (remote_state.go)
		c.remote.snapshot(&s)
		return s
	}
	for _, r := range c.regions {
		s.Regions = append(s.Regions, r.status(c.regionOf))
	}
	s.Links = c.fabric.Links()
	s.Zones, s.ZoneLinks = c.zoneState()
	return s
}

// Subscribe returns a channel that receives a Snapshot whenever the
// cluster's state changes (link counters at most every 100 ms). The channel
// holds only the newest snapshot: a subscriber that stops reading misses
// intermediate ones and never blocks the cluster. cancel ends the
// subscription; Close ends all (their channels are closed).
func (c *Cluster) Subscribe() (updates <-chan Snapshot, cancel func()) {
	ch := make(chan Snapshot, 1)
	c.subMu.Lock()
	select {
	case <-c.stop: // closed: an ended subscription
		close(ch)
	default:
		c.subs[ch] = struct{}{}
	}
	c.subMu.Unlock()
	return ch, func() {
		c.subMu.Lock()
		defer c.subMu.Unlock()
		if _, ok := c.subs[ch]; ok {
			delete(c.subs, ch)
			close(ch)
		}
	}
}

// changed asks the observer to publish a snapshot now.
func (c *Cluster) changed() {
	select {
	case c.nudge <- struct{}{}:
	default:
	}
}

// Poll intervals of the observer.
const (
	observeEvery  = 50 * time.Millisecond
	countersEvery = 100 * time.Millisecond
)

// observe is the one goroutine that watches the servers and publishes
// snapshots: at once on a nudge (a fault), within 50 ms of a change in
// roles, terms, leaders or indexes, and at most every 100 ms for counters.
func (c *Cluster) observe() {
	defer c.observer.Done()
	t := time.NewTicker(observeEvery)
	defer t.Stop()
	var last Snapshot
	var lastPublish time.Time
	for {
		force := false
		select {
		case <-c.stop:
			return
		case <-c.nudge:
			force = true
		case <-t.C:
		}
		s := c.State()
		structural := !sameStructure(last, s)
		counters := !sameCounters(last, s)
		if !force && !structural && !(counters && time.Since(lastPublish) >= countersEvery) {
			continue
		}
		s.Seq = c.seq.Add(1)
		c.publish(s)
		last, lastPublish = s, time.Now()
	}
}

func (c *Cluster) publish(s Snapshot) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	for ch := range c.subs {
		select { // replace an unread snapshot with the newer one
		case <-ch:
		default:
		}
		ch <- s
	}
}

func sameStructure(a, b Snapshot) bool {
	if !slices.Equal(a.Regions, b.Regions) || len(a.Links) != len(b.Links) || !slices.Equal(a.Zones, b.Zones) {
		return false
	}
	if len(a.ZoneLinks) != len(b.ZoneLinks) {
		return false
	}
	for i := range a.ZoneLinks {
		if a.ZoneLinks[i].Up != b.ZoneLinks[i].Up || a.ZoneLinks[i].DelayMs != b.ZoneLinks[i].DelayMs {
			return false
		}
	}
	for i := range a.Links {
		x, y := a.Links[i], b.Links[i]
		x.Bytes, x.Messages, y.Bytes, y.Messages = 0, 0, 0, 0
		if x != y {
			return false
		}
	}
	return true
}

func sameCounters(a, b Snapshot) bool {
	if len(a.Links) != len(b.Links) {
		return false
	}
	for i := range a.Links {
		if a.Links[i].Bytes != b.Links[i].Bytes || a.Links[i].Messages != b.Links[i].Messages {
			return false
		}
	}
	return true
}
