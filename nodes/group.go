package nodes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// The consensus group as the lab sees it: readiness at start, the agreed
// leader, raft streams after a heal, catching up, moving leadership, and
// a region's crash and restart.

// electionReport says, for a start that timed out, what each consensus
// member and replica server knows: its term and leader (0: none), so that
// a slow first election reads apart from a server that never started.
func (c *Cluster) electionReport() string {
	var parts []string
	for _, r := range c.regions {
		m, rep := r.servers()
		for _, e := range []struct {
			what string
			e    *embed.Etcd
		}{{"member", m}, {"replica", rep}} {
			if !running(e.e) {
				parts = append(parts, r.place.Name+" "+e.what+" stopped")
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %s term %d leader %x", r.place.Name, e.what, e.e.Server.Term(), uint64(e.e.Server.Leader())))
		}
	}
	return strings.Join(parts, ", ")
}

func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ReadyTimeout)
	defer cancel()
	start := time.Now()
	// A member that has not become ready after many election timeouts
	// while the others agree on a leader has stopped hearing them: seen in
	// .ci/run, one member stayed at term 1 for 60 s while the others led
	// at term 2. Dropping every exchange through the peer proxies makes
	// etcd dial its streams again (it does so on any stream error).
	kick := time.NewTicker(max(5*time.Second, 10*time.Duration(c.cfg.ElectionMs)*time.Millisecond))
	defer kick.Stop()
	for _, r := range c.regions {
		m, rep := r.servers()
		for _, e := range []struct {
			what  string
			ready <-chan struct{}
			errc  <-chan error
		}{{"member", m.Server.ReadyNotify(), m.Err()}, {"replica", rep.Server.ReadyNotify(), rep.Err()}} {
		wait:
			for {
				select {
				case <-e.ready:
					break wait
				case err := <-e.errc:
					return fmt.Errorf("nodes: %s %s failed: %w", r.place.Name, e.what, err)
				case <-kick.C:
					c.cfg.Logger.Warn("a server is slow to become ready: reconnecting the members' streams", "server", r.place.Name+" "+e.what,
						"after", time.Since(start).Round(time.Millisecond), "state", c.electionReport())
					for _, p := range c.peerProxies {
						p.dropAll()
					}
				case <-ctx.Done():
					return fmt.Errorf("nodes: %s %s not ready after %s (%s): %w", r.place.Name, e.what, time.Since(start).Round(time.Millisecond), c.electionReport(), ctx.Err())
				}
			}
		}
	}
	return nil
}

// Crash stops both of a region's servers abruptly: no leadership hand-off.
// It returns once both are closed. A region that is partly down (one
// server stopped on its own) is crashed entirely.
func (c *Cluster) Crash(name string) error {
	if c.IsZone(name) { // zones (zones.go)
		return c.crashZone(name)
	}
	if c.remote != nil { // its agent crashes it (remote_state.go)
		return c.remoteFault(name, c.remote.crash)
	}
	r, err := c.region(name)
	if err != nil {
		return fmt.Errorf("nodes: crash: %w", err)
	}
	if err := r.do(opCrash); err != nil {
		if errors.Is(err, ErrClosed) {
			return fmt.Errorf("nodes: crash %s: %w", name, err)
		}
		return err
	}
	c.crashRegionZones(name) // zones (zones.go)
	c.changed()
	return nil
}

// Restart starts a crashed region again from its data directory; a
// region partly down (a server stopped on its own) is repaired: whatever
// does not run is closed and started again. It returns once both servers
// run; the member rejoins the group when it reaches a quorum (watch its
// Ready in the snapshot). Crash, Restart and Close of one region are
// carried out one after another, each to the end, whoever calls them.
func (c *Cluster) Restart(name string) error {
	if c.IsZone(name) { // zones (zones.go)
		return c.restartZone(name)
	}
	if c.remote != nil { // its agent starts it (remote_state.go)
		return c.remoteFault(name, c.remote.restart)
	}
	r, err := c.region(name)
	if err != nil {
		return fmt.Errorf("nodes: restart: %w", err)
	}
	if err := r.do(opStart); err != nil {
		if errors.Is(err, ErrClosed) {
			return fmt.Errorf("nodes: restart %s: %w", name, err)
		}
		c.changed()
		return err
	}
	if err := c.restartRegionZones(name); err != nil { // zones (zones.go)
		return err
	}
	c.changed()
	return nil
}

// remoteFault has a region's agent crash or restart it.
func (c *Cluster) remoteFault(name string, f func(string) error) error {
	if err := c.checkRegion(name); err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	release, err := c.alive()
	if err != nil {
		return fmt.Errorf("nodes: %s: %w", name, err)
	}
	defer release()
	err = f(name)
	c.changed()
	return err
}

// status is a region's state now (as its agent last reported it, when
// one runs it).
func (c *Cluster) status(name string) RegionStatus {
	if c.remote != nil {
		return c.remote.links[name].regionStatus()
	}
	return c.byName[name].status(c.regionOf)
}

// Leader is the region whose member leads with the agreement of a majority
// of members right now: members in its term that believe it leads and that
// it can reach both ways. Members' beliefs lag (a follower cut off from its
// leader still names it until its election timer fires), so beliefs alone
// would report a leader that has just been cut off. "" when there is none.
func (c *Cluster) Leader() string {
	st := make(map[string]RegionStatus, len(c.cfg.Regions))
	for _, name := range c.cfg.Regions {
		st[name] = c.status(name)
	}
	for name, cand := range st {
		if cand.Role != RoleLeader {
			continue
		}
		votes := 0
		for voter, s := range st {
			if s.Leader == name && s.Term == cand.Term &&
				(voter == name || (c.fabric.Up(name, voter) && c.fabric.Up(voter, name))) {
				votes++
			}
		}
		if votes > len(c.cfg.Regions)/2 {
			return name
		}
	}
	return ""
}

// StreamsPerLink is how many raft streams carry one direction of a link
// when it works: etcd's msgappv2 and message streams.
const StreamsPerLink = 2

// AwaitStreams waits until every up link between two running, ready
// members carries raft streams opened since it last came up. A member
// learns that a stream broke (a cut closes it) only when it next writes to
// it, and that message is lost: a write forwarded right after a heal would
// otherwise wait out its whole deadline. It returns ctx's error if the
// streams are not back in time; nothing is wrong then but speed.
func (c *Cluster) AwaitStreams(ctx context.Context) error {
	if c.cfg.BypassFabric {
		return nil
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		ready := true
		st := c.State()
		for _, a := range st.Regions {
			for _, b := range st.Regions {
				if a.Name == b.Name || !a.Ready || !b.Ready {
					continue
				}
				if l := c.fabric.link(a.Name, b.Name); l.isUp() && c.freshStreams(l) < StreamsPerLink {
					ready = false
				}
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes: raft streams not back: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// AwaitLeaderHeard waits until every running member among regions that
// the consensus leader can reach and hear from knows that leader again
// (when there is one; a member behind another cut rightly stays
// leaderless). A member whose election timer ran out during a cut has
// forgotten its leader (a pre-candidate) until the leader's next heartbeat
// reaches it, and etcd answers a write through it "no leader" at once
// until then — streams being back (AwaitStreams) does not mean that
// heartbeat has arrived: on a starved machine it came after the write that
// followed the heal. It returns ctx's error if it has not in time.
func (c *Cluster) AwaitLeaderHeard(ctx context.Context, regions []string) error {
	if c.cfg.BypassFabric {
		return nil
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		st := c.State()
		leader := ""
		for _, r := range st.Regions {
			if r.MemberUp && r.Role == RoleLeader {
				leader = r.Name
			}
		}
		waiting := ""
		for _, r := range st.Regions {
			if leader != "" && r.Name != leader && r.MemberUp && r.Leader == "" && slices.Contains(regions, r.Name) &&
				c.fabric.link(leader, r.Name).isUp() && c.fabric.link(r.Name, leader).isUp() {
				waiting = r.Name
			}
		}
		if waiting == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes: %s has not heard from the leader %s yet: %w", waiting, leader, ctx.Err())
		case <-t.C:
		}
	}
}

// freshStreams is how many raft streams carry a link's data, opened since
// it last came up.
func (c *Cluster) freshStreams(l *link) int {
	if c.remote != nil {
		return c.remote.freshStreams(l.from, l.to)
	}
	return l.freshStreams()
}

// CaughtUp reports whether every running member knows the agreed leader
// and has applied everything the leader has committed.
func (c *Cluster) CaughtUp() bool {
	leader := c.Leader()
	if leader == "" {
		return false
	}
	lst := c.status(leader)
	for _, name := range c.cfg.Regions {
		s := c.status(name)
		if !s.Up {
			continue
		}
		if s.Leader != leader || s.AppliedIndex < lst.CommitIndex {
			return false
		}
	}
	return true
}

// WaitLeader waits until a majority of members agree on a leader.
func (c *Cluster) WaitLeader(ctx context.Context) (string, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if l := c.Leader(); l != "" {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("nodes: no leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// ErrNoLeader is wrapped when an operation needs a leader and there is none.
var ErrNoLeader = errors.New("the consensus group has no leader")

// MoveLeader hands leadership of the consensus group to a region's member
// (etcd MoveLeader) and waits until it leads. Raft abandons a transfer
// that takes longer than an election timeout (the target was still
// catching up, say after a heal), so each attempt first waits for the
// target to catch up and is retried until ctx ends.
func (c *Cluster) MoveLeader(ctx context.Context, name string) error {
	if err := c.checkRegion(name); err != nil {
		return fmt.Errorf("nodes: move leader: %w", err)
	}
	election := time.Duration(c.cfg.ElectionMs) * time.Millisecond
	var last error
	// A target that has not caught up after many election timeouts gets
	// the members' streams dialled again (see waitReady).
	behindSince := time.Time{}
	for {
		if !c.memberRuns(name) {
			return fmt.Errorf("nodes: move leader to %s: %w", name, ErrRegionDown)
		}
		leader := c.Leader()
		switch {
		case leader == name:
			c.changed()
			return nil
		case leader == "":
			last = fmt.Errorf("nodes: move leader to %s: %w", name, ErrNoLeader)
		case !c.fabric.Up(leader, name) || !c.fabric.Up(name, leader):
			return fmt.Errorf("nodes: move leader to %s: %w: it is cut off from leader %s", name, ErrNoLeader, leader)
		default:
			if c.memberRuns(leader) && c.caughtUp(name, leader) {
				behindSince = time.Time{}
				actx, cancel := context.WithTimeout(ctx, 3*election)
				err := c.transfer(actx, leader, name)
				cancel()
				if err == nil {
					continue // confirm with Leader() above
				}
				last = fmt.Errorf("nodes: move leader %s → %s: %w", leader, name, err)
			} else {
				last = fmt.Errorf("nodes: move leader to %s: it has not caught up with leader %s", name, leader)
				if behindSince.IsZero() {
					behindSince = time.Now()
				} else if time.Since(behindSince) > max(3*time.Second, 10*election) {
					c.cfg.Logger.Warn("a member is slow to catch up with the leader: reconnecting the members' streams", "member", name, "leader", leader)
					c.kickStreams()
					behindSince = time.Now()
				}
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = fmt.Errorf("nodes: move leader to %s: %w", name, ctx.Err())
			}
			return last
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// caughtUp reports whether region's member follows leader and has applied
// everything the leader committed.
func (c *Cluster) caughtUp(region, leader string) bool {
	ls, rs := c.status(leader), c.status(region)
	return rs.Up && rs.Leader == leader && rs.AppliedIndex >= ls.CommitIndex
}

// memberRuns reports whether a region's consensus member runs.
func (c *Cluster) memberRuns(name string) bool {
	if c.remote != nil {
		return c.status(name).MemberUp
	}
	m, _ := c.byName[name].servers()
	return m != nil
}

// transfer asks leader's member to hand leadership to region's.
func (c *Cluster) transfer(ctx context.Context, leader, region string) error {
	if c.remote != nil {
		return c.remote.transfer(ctx, leader, region)
	}
	lm, _ := c.byName[leader].servers()
	tm, _ := c.byName[region].servers()
	if lm == nil || tm == nil {
		return ErrRegionDown
	}
	return lm.Server.MoveLeader(ctx, uint64(lm.Server.MemberID()), uint64(tm.Server.MemberID()))
}

// kickStreams ends every raft exchange through the members' proxies, so
// etcd dials its streams again.
func (c *Cluster) kickStreams() {
	if c.remote != nil {
		c.remote.kickAll()
		return
	}
	for _, p := range c.peerProxies {
		p.dropAll()
	}
}
