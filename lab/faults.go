package lab

import (
	"context"
	"fmt"
	"strings"
	"time"

	"caplab/nodes"
)

// ---- network and region faults ----

// MaxRTTMs bounds a link's round-trip time (the fabric's rule).
const MaxRTTMs = nodes.MaxRTTMs

// Partition splits the regions into groups (every region in exactly one).
func (l *Lab) Partition(groups [][]string) error {
	for _, g := range groups {
		for _, r := range g {
			if err := l.CheckRegion(r); err != nil {
				return err
			}
		}
	}
	if err := l.cluster.Fabric().Partition(groups); err != nil {
		return wrapNodes(err)
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = strings.Join(g, ",")
	}
	l.faultHappened(FaultPartition, nil, strings.Join(parts, " | "), &RecordedAction{Kind: ActPartition, Groups: groups})
	l.awaitStreams()
	return nil
}

// awaitStreams gives etcd's peer streams over links that just came up a
// moment to reconnect (bounded), so that the next write through a follower
// does not fall into the gap and wait out its deadline. See
// nodes.Cluster.AwaitStreams.
func (l *Lab) awaitStreams() {
	ctx, cancel := context.WithTimeout(context.Background(), max(2*time.Second, l.cfg.RequestTimeout))
	defer cancel()
	if err := l.cluster.AwaitStreams(ctx); err != nil {
		l.cfg.Logger.Warn("links came up but raft streams are slow to reconnect", "err", err)
	}
}

// HealAll brings every link up; latencies are kept.
func (l *Lab) HealAll() error {
	l.cluster.Fabric().HealAll()
	l.healZoneLinks()
	l.faultHappened(FaultHeal, nil, "all links up", &RecordedAction{Kind: ActHeal})
	l.awaitStreams()
	return nil
}

// SetLink cuts or heals one link, both ways unless oneWay.
func (l *Lab) SetLink(from, to string, up, oneWay bool) error {
	if l.cluster.IsZone(from) || l.cluster.IsZone(to) {
		return l.setZoneLink(from, to, up, oneWay)
	}
	if err := l.CheckRegion(from); err != nil {
		return err
	}
	if err := l.CheckRegion(to); err != nil {
		return err
	}
	if err := l.cluster.Fabric().SetLink(from, to, up, oneWay); err != nil {
		return wrapNodes(err)
	}
	defer func() {
		if up {
			l.awaitStreams() // after the fault is recorded and published
		}
	}()
	l.linkFault(from, to, up, oneWay, &RecordedAction{Kind: linkAction(up), Regions: []string{from, to}, OneWay: oneWay})
	return nil
}

// SetLatency sets the round-trip time between two regions (oneWay: only
// from → to gets rttMs/2 of one-way delay).
func (l *Lab) SetLatency(from, to string, rttMs float64, oneWay bool) error {
	if l.cluster.IsZone(from) || l.cluster.IsZone(to) {
		return l.setZoneLatency(from, to, rttMs, oneWay)
	}
	if err := l.CheckRegion(from); err != nil {
		return err
	}
	if err := l.CheckRegion(to); err != nil {
		return err
	}
	if err := l.cluster.Fabric().SetRTT(from, to, rttMs, oneWay); err != nil {
		return wrapNodes(err)
	}
	arrow := "<->"
	if oneWay {
		arrow = "->"
	}
	l.faultHappened(FaultLatency, []string{from, to}, fmt.Sprintf("%s %s %s: %g ms round trip", from, arrow, to, rttMs),
		&RecordedAction{Kind: ActLatency, Regions: []string{from, to}, RTTMs: rttMs, OneWay: oneWay})
	return nil
}

// Isolate cuts every link of one region.
func (l *Lab) Isolate(region string) error {
	return l.regionFault(region, l.cluster.Fabric().Isolate, FaultPartition, region+" isolated", ActIsolate)
}

// Bridge leaves the other regions able to talk only through via.
func (l *Lab) Bridge(via string) error {
	return l.regionFault(via, l.cluster.Fabric().Bridge, FaultPartition, "bridge through "+via, ActBridge)
}

// Crash stops a region abruptly.
func (l *Lab) Crash(region string) error {
	return l.regionFault(region, l.cluster.Crash, FaultCrash, region+" crashed", ActCrash)
}

// Restart brings a crashed region back from its data directory.
func (l *Lab) Restart(region string) error {
	return l.regionFault(region, l.cluster.Restart, FaultRestart, region+" restarted", ActRestart)
}

// regionFault applies a fault to one region (or zone) and records it, as
// action act.
func (l *Lab) regionFault(region string, apply func(string) error, kind FaultKind, detail string, act ActionKind) error {
	zones := kind == FaultCrash || kind == FaultRestart // zones crash and restart too
	if !zones || !l.cluster.IsZone(region) {
		if err := l.CheckRegion(region); err != nil {
			if zones {
				return l.unknownRegionOrZone(region)
			}
			return err
		}
	}
	if err := apply(region); err != nil {
		return wrapNodes(err)
	}
	a := RecordedAction{Kind: act, Regions: []string{region}}
	if act == ActBridge { // the links left cut
		f := l.cluster.Fabric()
		for _, from := range l.regions {
			for _, to := range l.regions {
				if from != to && !f.Up(from, to) {
					a.Cuts = append(a.Cuts, [2]string{from, to})
				}
			}
		}
	}
	l.faultHappened(kind, []string{region}, detail, &a)
	if kind == FaultRestart {
		l.geo.kickRecovery() // pending transfers are settled after a restart
	}
	return nil
}

// Lead moves consensus leadership to a region and returns once it leads.
// It fails with ErrUnavailable when the region cannot lead (crashed, cut
// off, no leader to hand over from). It keeps trying (the region may
// still be catching up with the leader) until ctx ends, or for
// max(5 s, 4 × RequestTimeout) when ctx has no deadline: a lesson's
// "lead" gives it the lesson's wait (30 s), which a busy machine may need
// after a reset.
func (l *Lab) Lead(ctx context.Context, region string) error {
	if err := l.CheckRegion(region); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, max(5*time.Second, 4*l.cfg.RequestTimeout))
		defer cancel()
	}
	if err := l.cluster.MoveLeader(ctx, region); err != nil {
		return fmt.Errorf("%w: %s cannot lead now: %s", ErrUnavailable, region, strings.TrimPrefix(err.Error(), "nodes: "))
	}
	l.faultHappened(FaultLead, []string{region}, region+" leads", &RecordedAction{Kind: ActLead, Regions: []string{region}})
	return nil
}

// SetQuorum configures the replicated store's W and R.
func (l *Lab) SetQuorum(w, r int) error {
	if err := ValidateQuorum(len(l.regions), w, r); err != nil {
		return err
	}
	l.replicated.SetQuorum(QuorumState{N: len(l.regions), W: w, R: r})
	l.faultHappened(FaultQuorum, nil, fmt.Sprintf("W=%d R=%d (N=%d)", w, r, len(l.regions)), &RecordedAction{Kind: ActQuorum, W: w, R: r})
	return nil
}

// Quorum is the replicated store's configuration.
func (l *Lab) Quorum() QuorumState { return l.replicated.Quorum() }

// linkFault records a link (region or zone) cut or healed, one way or
// both, as action act (nil: none, a zone link).
func (l *Lab) linkFault(from, to string, up, oneWay bool, act *RecordedAction) {
	arrow := "<->"
	if oneWay {
		arrow = "->"
	}
	kind := FaultCut
	if up {
		kind = FaultHeal
	}
	l.faultHappened(kind, []string{from, to}, from+" "+arrow+" "+to, act)
}
