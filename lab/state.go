package lab

import (
	"sync/atomic"
	"time"

	"caplab/nodes"
)

// State is the whole lab now.
func (l *Lab) State() State {
	return l.stateFrom(l.cluster.State())
}

func (l *Lab) stateFrom(s nodes.Snapshot) State {
	st := State{LatencyScale: s.LatencyScale, Speed: l.Speed(), Replicated: l.Quorum()}
	urls := clientURLs(l.cluster.Endpoints())
	for _, r := range s.Regions {
		st.Regions = append(st.Regions, RegionState{
			Name: r.Name, City: r.City, Lat: r.Lat, Lon: r.Lon, Up: r.Up,
			Consensus: MemberState{
				Role: string(r.Role), Term: r.Term, Leader: r.Leader,
				CommitIndex: r.CommitIndex, AppliedIndex: r.AppliedIndex,
			},
			Replica:    ReplicaState{Revision: r.ReplicaRev},
			Breakers:   l.breakers.States(r.Name),
			ClientURLs: urls[r.Name],
			Clock:      l.clocks.State(r.Name),
			Zones:      zoneStates(s, r.Name),
		})
	}
	st.ZoneLinks = zoneLinkStates(s) // geo (geo_lab.go)
	for _, k := range s.Links {
		state := "up"
		if !k.Up {
			state = "cut"
		}
		st.Links = append(st.Links, LinkState{
			From: k.From, To: k.To, State: state, RTTMs: k.RTTMs, DelayMs: k.DelayMs,
			Estimated: k.Estimated, Bytes: k.Bytes, Messages: k.Messages,
		})
	}
	st.Version = l.version.Load() + int64(s.Seq)
	for _, store := range Stores {
		st.Counters = append(st.Counters, l.counters[store].snapshot(store))
	}
	for i := range st.Counters {
		if st.Counters[i].Store == Geo { // geo_lab.go
			st.Counters[i].Stranded = int(l.geo.stranded.Load())
		}
	}
	return st
}

// Subscribe returns a channel of events: a state event whenever the cluster
// changes (links, roles, breakers, quorum) and, at most every StateEvery,
// when operations changed the counters; every operation as it returns;
// every fault as it is recorded. Every event carries the full State: a
// fault or state event its own, an operation event the newest State
// published before it (operations do not build one each). A
// subscriber that does not keep up loses events (the channel holds 256),
// never blocks the lab; the next event it gets says how many it lost
// (Event.Missed). cancel ends the subscription; Close ends all.
func (l *Lab) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 256)
	l.subMu.Lock()
	select {
	case <-l.stop:
		close(ch)
	default:
		l.subs[ch] = new(atomic.Int64)
	}
	l.subMu.Unlock()
	return ch, func() {
		l.subMu.Lock()
		defer l.subMu.Unlock()
		if _, ok := l.subs[ch]; ok {
			delete(l.subs, ch)
			close(ch)
		}
	}
}

// publish sends e to every subscriber that has room; State is filled in
// when e has none.
func (l *Lab) publish(e Event) {
	l.recorders.call(e) // auditlog.go: before anything that may drop e
	l.subMu.RLock()
	none := len(l.subs) == 0
	l.subMu.RUnlock()
	if none {
		return
	}
	if e.State == nil {
		st := l.State()
		l.snap.Store(&st)
		e.State = &st
	}
	l.subMu.RLock()
	defer l.subMu.RUnlock()
	for ch, missed := range l.subs {
		ev := e
		if missed.Load() != 0 { // a write only when there is something to report
			ev.Missed = missed.Swap(0)
		}
		select {
		case ch <- ev:
		default: // slow subscriber: it misses this one; the next says so and carries State
			missed.Add(ev.Missed + 1)
			l.missed.Add(1)
		}
	}
}

// MissedEvents is how many events subscribers have lost, in all, since the
// lab started: each one an event some subscriber (a viewer hub, metrics)
// had no room for.
func (l *Lab) MissedEvents() int64 { return l.missed.Load() }

func (l *Lab) publishState() { l.publish(Event{Type: EventState}) }

// forwardSnapshots turns cluster snapshots into state events until the
// cluster closes the channel.
func (l *Lab) forwardSnapshots(snaps <-chan nodes.Snapshot) {
	for s := range snaps {
		l.consensus.leader.refresh(l.cluster)
		st := l.stateFrom(s)
		l.snap.Store(&st)
		l.publish(Event{Type: EventState, State: &st})
	}
}

// StateEvery is how often, at most, operations' changes (counters, the
// auditor's counts) are published as a state event.
const StateEvery = 50 * time.Millisecond

// coalesceState publishes a state event at most every StateEvery, and only
// when operations changed something since the last State published:
// a burst of operations costs one State, not one each.
func (l *Lab) coalesceState() {
	t := time.NewTicker(StateEvery)
	defer t.Stop()
	last := l.version.Load()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if v := l.version.Load(); v != last {
			last = v
			l.publishState()
		}
	}
}

// fault records a fault or configuration change and publishes it.
func (l *Lab) fault(kind FaultKind, regions []string, detail string) {
	// replay.go: the network as the fault left it, against the History's start
	net := NetOf(l.State(), l.netStart.Load())
	f := l.history.AddFault(Fault{Kind: kind, Regions: regions, Detail: detail, At: time.Now(), Net: net})
	l.consensus.leader.refresh(l.cluster) // answers name the leader as it is after the fault
	l.version.Add(1)
	l.publish(Event{Type: EventFault, Fault: &f})
}

// cityOf names a region for a person: "Singapore (ap-southeast-1)".
func cityOf(region string) string {
	if p, ok := nodes.Lookup(region); ok {
		return p.City + " (" + region + ")"
	}
	return region
}
