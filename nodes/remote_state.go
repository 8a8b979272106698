package nodes

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// A lab whose regions run under agents: what it shows of them, the link
// rules it hands them, and the faults it asks of them.

func (l *agentLink) lastStatus() *agentStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

// regionStatus is the region as its agent last reported it: marked stale
// when the lab has lost the agent, offline when the agent is not running.
func (l *agentLink) regionStatus() RegionStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.status != nil && l.state != agentDown {
		st := l.status.Region
		st.Agent, st.Stale = l.addr, l.state != agentConnected
		return st
	}
	p, _ := Lookup(l.region)
	return RegionStatus{Name: p.Name, City: p.City, Lat: p.Lat, Lon: p.Lon, Role: RoleOffline, Agent: l.addr, Stale: l.state != agentConnected && l.state != agentDown}
}

// zoneStatuses are the region's zones as last reported (offline when the
// agent is not running).
func (l *agentLink) zoneStatuses(names []string) []ZoneStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.status != nil && l.state != agentDown && len(l.status.Zones) == len(names) {
		return append([]ZoneStatus(nil), l.status.Zones...)
	}
	out := make([]ZoneStatus, len(names))
	for i, n := range names {
		out[i] = ZoneStatus{Name: n, Region: l.region, Role: RoleOffline}
	}
	return out
}

// unreachable says why an order cannot reach the agent.
func (l *agentLink) unreachable() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == agentDown {
		return fmt.Errorf("%w: the agent of %s at %s is not running (start \"caplab region --name %s\" there again: it resumes the region from its data)", ErrRegionDown, l.region, l.addr, l.region)
	}
	return fmt.Errorf("the agent of %s at %s is %s since %s (%s)", l.region, l.addr, l.state, l.since.Format("15:04:05"), l.why)
}

// send sends an order to the region's agent and waits for it.
func (rs *remoteSet) send(region string, m *message, d time.Duration) error {
	l := rs.links[region]
	cc := l.conn()
	if cc == nil {
		return l.unreachable()
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err := cc.call(ctx, m)
	return err
}

func (rs *remoteSet) crash(name string) error {
	err := rs.send(name, &message{Op: ctlCrash}, time.Minute)
	if err == nil || errors.Is(err, ErrRegionDown) {
		l := rs.links[name]
		l.mu.Lock()
		l.wantUp = false
		l.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("nodes: crash %s: %w", name, err)
	}
	return nil
}

func (rs *remoteSet) restart(name string) error {
	if err := rs.send(name, &message{Op: ctlStart, Start: rs.startOrder(false, false)}, time.Minute); err != nil {
		if errors.Is(err, ErrRegionUp) {
			return err
		}
		return fmt.Errorf("nodes: restart %s: %w", name, err)
	}
	l := rs.links[name]
	l.mu.Lock()
	l.wantUp = true
	l.mu.Unlock()
	return nil
}

func (rs *remoteSet) zoneOrder(op, zone string) error {
	z := rs.c.zones.byZone[zone]
	if err := rs.send(z.region, &message{Op: op, Zone: zone}, time.Minute); err != nil {
		return err
	}
	rs.c.changed()
	return nil
}

// isUp reports the region up as last reported (stale or not).
func (rs *remoteSet) isUp(name string) bool {
	l, ok := rs.links[name]
	return ok && l.regionStatus().Up
}

// freshStreams is how many raft streams carry link from → to's data, opened
// since it last came up under the newest link table: the agent of from
// serves them.
func (rs *remoteSet) freshStreams(from, to string) int {
	st := rs.links[from].lastStatus()
	if st == nil || st.Table < rs.table.Load() {
		return 0
	}
	for _, c := range st.Links {
		if c.From == from && c.To == to {
			return c.Fresh
		}
	}
	return 0
}

// snapshot fills s with the regions, links and zones as the agents report
// them, under the lab's rules.
func (rs *remoteSet) snapshot(s *Snapshot) {
	c := rs.c
	counts := map[[2]string]linkCount{}
	zcounts := map[[2]string]linkCount{}
	for _, l := range rs.order {
		s.Regions = append(s.Regions, l.regionStatus())
		l.mu.Lock()
		for k, b := range l.base {
			counts[k] = addCounts(counts[k], b)
		}
		for k, b := range l.zbase {
			zcounts[k] = addCounts(zcounts[k], b)
		}
		if l.status != nil {
			for _, x := range l.status.Links {
				k := [2]string{x.From, x.To}
				counts[k] = addCounts(counts[k], x)
			}
			for _, x := range l.status.ZoneLinks {
				k := [2]string{x.From, x.To}
				zcounts[k] = addCounts(zcounts[k], x)
			}
		}
		l.mu.Unlock()
	}
	s.Links = c.fabric.Links()
	for i := range s.Links {
		x := counts[[2]string{s.Links[i].From, s.Links[i].To}]
		s.Links[i].Bytes, s.Links[i].Messages = x.Bytes, x.Messages
	}
	for _, g := range c.zones.groups {
		s.Zones = append(s.Zones, rs.links[g.region].zoneStatuses(c.Zones(g.region))...)
		for _, zl := range g.fabric.Links() {
			x := zcounts[[2]string{zl.From, zl.To}]
			zl.Bytes, zl.Messages = x.Bytes, x.Messages
			s.ZoneLinks = append(s.ZoneLinks, zl)
		}
	}
}

func addCounts(a, b linkCount) linkCount {
	a.Bytes += b.Bytes
	a.Messages += b.Messages
	return a
}

// zoneStatus is one zone as its agent last reported it.
func (rs *remoteSet) zoneStatus(z *zoneMember) ZoneStatus {
	l := rs.links[z.region]
	zs := l.zoneStatuses(rs.c.Zones(z.region))
	if z.index < len(zs) {
		return zs[z.index]
	}
	return ZoneStatus{Name: z.name, Region: z.region, Role: RoleOffline}
}

// memberID is a region's consensus member's id as its agent reported it.
func (rs *remoteSet) memberID(region string) uint64 {
	if st := rs.links[region].lastStatus(); st != nil {
		return st.MemberID
	}
	return 0
}

// currentTable is every link rule in force now.
func (rs *remoteSet) currentTable() *linkTable {
	t := &linkTable{Version: rs.table.Load()}
	for _, l := range rs.c.fabric.links {
		t.Links = append(t.Links, l.rule())
	}
	for _, g := range rs.c.zones.groups {
		for _, l := range g.fabric.links {
			t.Zone = append(t.Zone, l.rule())
		}
	}
	return t
}

// push hands the link rules to every agent the lab holds and returns once
// each has them in force, or has not answered within pushWait (it then
// keeps its last table and gets the new one when it is back).
func (rs *remoteSet) push() {
	rs.pushMu.Lock()
	defer rs.pushMu.Unlock()
	rs.table.Add(1)
	t := rs.currentTable()
	var wg sync.WaitGroup
	for _, l := range rs.order {
		cc := l.conn()
		if cc == nil {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), pushWait)
			defer cancel()
			if err := rs.pushTo(ctx, l, cc, t); err != nil {
				rs.log.Warn("an agent did not take the link rules in time", "region", l.region, "agent", l.addr, "err", err)
			}
		})
	}
	wg.Wait()
}

// pushWait bounds how long a change of the links waits for one agent.
const pushWait = 3 * time.Second

func (rs *remoteSet) pushTo(ctx context.Context, l *agentLink, cc *ctlConn, t *linkTable) error {
	if _, err := cc.call(ctx, &message{Op: ctlLinks, Links: t}); err != nil {
		return err
	}
	l.mu.Lock()
	l.acked = max(l.acked, t.Version)
	l.mu.Unlock()
	return nil
}

// rule is the link's rule as an agent enforces it.
func (l *link) rule() linkRule {
	l.mu.Lock()
	defer l.mu.Unlock()
	return linkRule{From: l.from, To: l.to, Up: l.up, RTTMs: l.rttMs, MeasuredMs: l.measured,
		DelayMs: float64(l.delay) / float64(time.Millisecond), JitterMs: float64(l.jitter) / float64(time.Millisecond)}
}

// measure takes the agents' round trips into the links: each pair's is
// the mean of what its two agents measured. It reports whether a link
// changed (the first measurement, then by more than half a millisecond
// and 5 %, so that noise does not churn the rules).
func (rs *remoteSet) measure() (changed bool) {
	rtt := map[[2]string][]float64{}
	for _, l := range rs.order {
		st := l.lastStatus()
		if st == nil {
			continue
		}
		for _, p := range st.Peers {
			if p.Samples > 0 {
				k := [2]string{min(l.region, p.Region), max(l.region, p.Region)}
				rtt[k] = append(rtt[k], p.RTTMs)
			}
		}
	}
	for k, v := range rtt {
		m := 0.0
		for _, x := range v {
			m += x
		}
		m /= float64(len(v))
		for _, pair := range [][2]string{k, {k[1], k[0]}} {
			l := rs.c.fabric.link(pair[0], pair[1])
			if l == nil {
				continue
			}
			l.mu.Lock()
			old := l.measured
			l.mu.Unlock()
			if (old == 0) != (m == 0) || math.Abs(m-old) > max(0.5, 0.05*old) {
				l.setMeasured(m)
				changed = true
			}
		}
	}
	return changed
}

// measureLoop follows the round trips while the lab runs.
func (rs *remoteSet) measureLoop() {
	defer rs.bg.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-rs.stop:
			return
		case <-t.C:
			if rs.measure() {
				rs.push()
				rs.c.changed()
			}
		}
	}
}

// transfer asks the leader's member, through its agent, to hand
// leadership to region's member.
func (rs *remoteSet) transfer(ctx context.Context, leader, region string) error {
	id := rs.memberID(region)
	if id == 0 {
		return fmt.Errorf("%s's member id is not known yet", region)
	}
	_, err := rs.c.memberClients[leader].MoveLeader(ctx, id)
	return err
}

// close ends the lab's service: every agent it holds stops its region's
// servers (and, for a lab without a data directory, deletes their data
// and forgets the lab), the control connections close, and the agents
// this process runs itself stop.
func (rs *remoteSet) close() {
	if rs.closing.Swap(true) {
		return
	}
	var wg sync.WaitGroup
	for _, l := range rs.order {
		cc := l.conn()
		if cc == nil {
			if l.regionStatus().Up {
				rs.log.Warn("an agent is out of reach as the lab stops: its region keeps running", "region", l.region, "agent", l.addr)
			}
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := cc.call(ctx, &message{Op: ctlStop, Stop: &stopOrder{Discard: rs.temporary}}); err != nil {
				rs.log.Warn("an agent did not stop its region", "region", l.region, "agent", l.addr, "err", err)
			}
		})
	}
	wg.Wait()
	close(rs.stop)
	for _, l := range rs.order {
		if cc := l.conn(); cc != nil {
			cc.close()
		}
	}
	rs.bg.Wait()
	for _, l := range rs.order { // a supervisor may have called again meanwhile
		if cc := l.conn(); cc != nil {
			cc.close()
		}
	}
	for _, a := range rs.local {
		_ = a.Close()
	}
}

// LabCertificate is the fingerprint of the certificate the lab's agents
// pin, "" when every region runs in this process.
func (c *Cluster) LabCertificate() string {
	if c.remote == nil {
		return ""
	}
	return c.remote.id.fingerprint()
}
