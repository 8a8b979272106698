package lab

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"caplab/lab/guard"
	"caplab/lab/inventory"
	"caplab/lab/store/consensus"
	"caplab/lab/store/geo"
	"caplab/lab/store/replicated"
	"caplab/nodes"
)

// Faults is the lab's room for faults and configuration changes: links
// between regions and between a region's zones (cut, heal, latency,
// partitions, bridges), crashes and restarts of regions and zones, the
// consensus group's leader and the replicated store's W and R. Each change
// is recorded once, everywhere it must go (Lab.faultHappened).
type Faults struct {
	cluster    *nodes.Cluster
	regions    []string
	timeout    time.Duration // the request deadline
	logger     *slog.Logger
	replicated *replicated.Store // W and R
	consensus  *consensus.Store  // group commit on or off
	// admission's consensus ceiling follows group commit (applyGroupCommit);
	// maxInFlight is the lab's own (Config.MaxInFlight).
	admission   *guard.Admission
	maxInFlight int
	geo         *geo.Store // its transfer recovery, kicked after a restart
	happened    func(kind inventory.FaultKind, regions []string, detail string, act *RecordedAction)
	// healed is told when links came up (the replicated store's merges
	// are then told once its copies agree: merge.go).
	healed func()
}

// Faults is the lab's room for faults and configuration changes.
func (l *Lab) Faults() *Faults { return l.faults }

func (f *Faults) checkRegion(name string) error { return inventory.CheckRegion(f.regions, name) }

// MaxRTTMs bounds a link's round-trip time (the fabric's rule).
const MaxRTTMs = nodes.MaxRTTMs

// Partition splits the regions into groups (every region in exactly one).
func (f *Faults) Partition(groups [][]string) error {
	for _, g := range groups {
		for _, r := range g {
			if err := f.checkRegion(r); err != nil {
				return err
			}
		}
	}
	if err := f.cluster.Fabric().Partition(groups); err != nil {
		return wrapNodes(err)
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = strings.Join(g, ",")
	}
	f.happened(inventory.FaultPartition, nil, strings.Join(parts, " | "), &RecordedAction{Kind: ActPartition, Groups: groups})
	f.awaitStreams()
	return nil
}

// awaitStreams gives etcd's peer streams over links that just came up a
// moment to reconnect (bounded), so that the next write through a follower
// does not fall into the gap and wait out its deadline; after a heal
// (healed: the regions whose links came up) also until those members hear
// their leader again. See nodes.Cluster.AwaitStreams and AwaitLeaderHeard.
func (f *Faults) awaitStreams(healed ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), max(2*time.Second, f.timeout))
	defer cancel()
	if err := f.cluster.AwaitStreams(ctx); err != nil {
		f.logger.Warn("links came up but raft streams are slow to reconnect", "err", err)
		return
	}
	if len(healed) == 0 {
		return
	}
	if err := f.cluster.AwaitLeaderHeard(ctx, healed); err != nil {
		f.logger.Warn("links came up but a member has not heard from its leader yet", "err", err)
	}
}

// HealAll brings every link up; latencies are kept.
func (f *Faults) HealAll() error {
	f.cluster.Fabric().HealAll()
	f.healZoneLinks()
	f.happened(inventory.FaultHeal, nil, "all links up", &RecordedAction{Kind: ActHeal})
	f.awaitStreams(f.regions...)
	f.healed()
	return nil
}

// SetLink cuts or heals one link, both ways unless oneWay.
func (f *Faults) SetLink(from, to string, up, oneWay bool) error {
	if f.cluster.IsZone(from) || f.cluster.IsZone(to) {
		return f.setZoneLink(from, to, up, oneWay)
	}
	if err := f.checkRegion(from); err != nil {
		return err
	}
	if err := f.checkRegion(to); err != nil {
		return err
	}
	if err := f.cluster.Fabric().SetLink(from, to, up, oneWay); err != nil {
		return wrapNodes(err)
	}
	defer func() {
		if up {
			f.awaitStreams(from, to) // after the fault is recorded and published
			f.healed()
		}
	}()
	f.linkFault(from, to, up, oneWay, &RecordedAction{Kind: linkAction(up), Regions: []string{from, to}, OneWay: oneWay})
	return nil
}

// SetLatency sets the round-trip time between two regions (oneWay: only
// from → to gets rttMs/2 of one-way delay).
func (f *Faults) SetLatency(from, to string, rttMs float64, oneWay bool) error {
	if f.cluster.IsZone(from) || f.cluster.IsZone(to) {
		return f.setZoneLatency(from, to, rttMs, oneWay)
	}
	if err := f.checkRegion(from); err != nil {
		return err
	}
	if err := f.checkRegion(to); err != nil {
		return err
	}
	if err := f.cluster.Fabric().SetRTT(from, to, rttMs, oneWay); err != nil {
		return wrapNodes(err)
	}
	arrow := "<->"
	if oneWay {
		arrow = "->"
	}
	f.happened(inventory.FaultLatency, []string{from, to}, fmt.Sprintf("%s %s %s: %g ms round trip", from, arrow, to, rttMs),
		&RecordedAction{Kind: ActLatency, Regions: []string{from, to}, RTTMs: rttMs, OneWay: oneWay})
	return nil
}

// Isolate cuts every link of one region.
func (f *Faults) Isolate(region string) error {
	return f.regionFault(region, f.cluster.Fabric().Isolate, inventory.FaultPartition, region+" isolated", ActIsolate)
}

// Bridge leaves the other regions able to talk only through via.
func (f *Faults) Bridge(via string) error {
	return f.regionFault(via, f.cluster.Fabric().Bridge, inventory.FaultPartition, "bridge through "+via, ActBridge)
}

// Crash stops a region abruptly.
func (f *Faults) Crash(region string) error {
	return f.regionFault(region, f.cluster.Crash, inventory.FaultCrash, region+" crashed", ActCrash)
}

// Restart brings a crashed region back from its data directory.
func (f *Faults) Restart(region string) error {
	return f.regionFault(region, f.cluster.Restart, inventory.FaultRestart, region+" restarted", ActRestart)
}

// regionFault applies a fault to one region (or zone) and records it, as
// action act.
func (f *Faults) regionFault(region string, apply func(string) error, kind inventory.FaultKind, detail string, act ActionKind) error {
	zones := kind == inventory.FaultCrash || kind == inventory.FaultRestart // zones crash and restart too
	if !zones || !f.cluster.IsZone(region) {
		if err := f.checkRegion(region); err != nil {
			if zones {
				return f.unknownRegionOrZone(region)
			}
			return err
		}
	}
	if err := apply(region); err != nil {
		return wrapNodes(err)
	}
	a := RecordedAction{Kind: act, Regions: []string{region}}
	if act == ActBridge { // the links left cut
		fab := f.cluster.Fabric()
		for _, from := range f.regions {
			for _, to := range f.regions {
				if from != to && !fab.Up(from, to) {
					a.Cuts = append(a.Cuts, [2]string{from, to})
				}
			}
		}
	}
	f.happened(kind, []string{region}, detail, &a)
	if kind == inventory.FaultRestart {
		f.geo.Kick() // pending transfers are settled after a restart
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
func (f *Faults) Lead(ctx context.Context, region string) error {
	if err := f.checkRegion(region); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, max(5*time.Second, 4*f.timeout))
		defer cancel()
	}
	if err := f.cluster.MoveLeader(ctx, region); err != nil {
		return fmt.Errorf("%w: %s cannot lead now: %s", inventory.ErrUnavailable, region, strings.TrimPrefix(err.Error(), "nodes: "))
	}
	f.happened(inventory.FaultLead, []string{region}, region+" leads", &RecordedAction{Kind: ActLead, Regions: []string{region}})
	return nil
}

// SetQuorum configures the replicated store's W and R.
func (f *Faults) SetQuorum(w, r int) error {
	if err := inventory.ValidateQuorum(len(f.regions), w, r); err != nil {
		return err
	}
	f.replicated.SetQuorum(inventory.QuorumState{N: len(f.regions), W: w, R: r})
	f.happened(inventory.FaultQuorum, nil, fmt.Sprintf("W=%d R=%d (N=%d)", w, r, len(f.regions)), &RecordedAction{Kind: ActQuorum, W: w, R: r})
	return nil
}

// Quorum is the replicated store's configuration.
func (f *Faults) Quorum() inventory.QuorumState { return f.replicated.Quorum() }

// SetGroupCommit turns the consensus store's group commit on or off (a
// region's concurrent buys share one Txn, a compare-and-set per SKU:
// lab/store/consensus).
func (f *Faults) SetGroupCommit(on bool) {
	f.applyGroupCommit(on)
	detail := "group commit off: every buy is its own Txn"
	if on {
		detail = "group commit on: a region's concurrent buys share one Txn (a compare-and-set per SKU)"
	}
	f.happened(inventory.FaultGroupCommit, nil, detail, &RecordedAction{Kind: ActGroupCommit, On: on})
}

// applyGroupCommit switches group commit in the store and the consensus
// gateways' admission ceiling with it: off, each buy in flight is a
// compare-and-swap of its own and the lab's ceiling holds
// (Config.MaxInFlight); on, a region's queued buys go up to
// consensus.MaxBatch to a Txn — 128 buys in flight are one or two Raft
// rounds, not 128 racing compares — so the gateway admits two full Txns
// (at 32, bursts at 1,200 buys/s with two reads each were answered
// overloaded while the store's p99 was 30 ms; at 128, 1,800 and 2,100
// buys/s missed 99.9 % answered by a few overloaded answers at p99 40 ms:
// docs/benchmarks.md, "Doorbuster at the limit").
func (f *Faults) applyGroupCommit(on bool) {
	f.consensus.SetGroupCommit(on)
	ceiling := f.maxInFlight
	if on {
		ceiling = max(ceiling, 2*consensus.MaxBatch)
	}
	f.admission.SetCeiling(inventory.Consensus, ceiling)
}

// GroupCommit reports whether the consensus store's group commit is on.
func (f *Faults) GroupCommit() bool { return f.consensus.GroupCommit() }

// linkFault records a link (region or zone) cut or healed, one way or
// both, as action act (nil: none, a zone link).
func (f *Faults) linkFault(from, to string, up, oneWay bool, act *RecordedAction) {
	arrow := "<->"
	if oneWay {
		arrow = "->"
	}
	kind := inventory.FaultCut
	if up {
		kind = inventory.FaultHeal
	}
	f.happened(kind, []string{from, to}, from+" "+arrow+" "+to, act)
}

// resetZones restarts crashed zones, puts zone links back to their model
// latencies and waits for every regional group's leader. Called by Reset
// with the gate held, before it empties the geo store.
func (f *Faults) resetZones(ctx context.Context) error {
	f.cluster.ResetZoneLinks()
	for _, r := range f.regions {
		for _, z := range f.cluster.Zones(r) {
			if !f.cluster.ZoneUp(z) {
				if err := f.cluster.Restart(z); err != nil {
					return wrapNodes(err)
				}
			}
		}
	}
	if err := f.cluster.WaitRegionalLeaders(ctx); err != nil {
		return err
	}
	return nil
}

func (f *Faults) healZoneLinks() {
	for _, r := range f.regions {
		if zf, err := f.cluster.ZoneFabric(r); err == nil {
			zf.HealAll()
		}
	}
}

// checkZonePair checks that a and b are zones of one region.
func (f *Faults) checkZonePair(a, b string) (*nodes.Fabric, error) {
	for _, n := range []string{a, b} {
		if !f.cluster.IsZone(n) && f.checkRegion(n) != nil {
			return nil, f.unknownRegionOrZone(n)
		}
	}
	ra, rb := f.cluster.ZoneRegion(a), f.cluster.ZoneRegion(b)
	if ra == "" || rb == "" || ra != rb {
		return nil, fmt.Errorf("%w: a zone link joins two zones of one region (got %s and %s); between regions, name the regions", inventory.ErrBadInput, a, b)
	}
	zf, err := f.cluster.ZoneFabric(ra)
	if err != nil {
		return nil, wrapNodes(err)
	}
	return zf, nil
}

func (f *Faults) unknownRegionOrZone(n string) error {
	return fmt.Errorf("%w: region %s is not in this lab (regions: %s) and is no zone either (zones: %s)", inventory.ErrUnknownRegion, inventory.Echo(n),
		strings.Join(f.regions, ", "), strings.Join(f.allZones(), ", "))
}

func (f *Faults) allZones() []string {
	var out []string
	for _, r := range f.regions {
		out = append(out, f.cluster.Zones(r)...)
	}
	return out
}

func (f *Faults) setZoneLink(from, to string, up, oneWay bool) error {
	zf, err := f.checkZonePair(from, to)
	if err != nil {
		return err
	}
	if err := zf.SetLink(from, to, up, oneWay); err != nil {
		return wrapNodes(err)
	}
	f.linkFault(from, to, up, oneWay, nil) // zone links are no lesson actions
	return nil
}

func (f *Faults) setZoneLatency(from, to string, rttMs float64, oneWay bool) error {
	zf, err := f.checkZonePair(from, to)
	if err != nil {
		return err
	}
	if err := zf.SetRTT(from, to, rttMs, oneWay); err != nil {
		return wrapNodes(err)
	}
	f.happened(inventory.FaultLatency, []string{from, to}, fmt.Sprintf("%s <-> %s: %g ms round trip", from, to, rttMs), nil)
	return nil
}

// IsZone reports whether name is a zone of this lab (us-east-1a).
func (f *Faults) IsZone(name string) bool { return f.cluster.IsZone(name) }

// Zones lists a region's zones.
func (f *Faults) Zones(region string) []string { return slices.Clone(f.cluster.Zones(region)) }

// SetSpeed makes every link between regions faster than the lab started:
// each delay factor × its start (0 < factor ≤ 1; 1 is the start). Raft's
// timers were set for the start's delays, so the lab never gets slower
// than that. A reset keeps the factor. Bad input changes nothing.
func (f *Faults) SetSpeed(factor float64) error {
	if err := f.cluster.Fabric().SetSpeed(factor); err != nil {
		return wrapNodes(err)
	}
	f.happened(inventory.FaultSpeed, nil, fmt.Sprintf("links at %g × their start delay", factor), nil)
	return nil
}

// Speed is the factor SetSpeed set (1 at the start).
func (f *Faults) Speed() float64 { return f.cluster.Fabric().Speed() }
