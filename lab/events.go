package lab

import (
	"sync"
	"sync/atomic"
	"time"

	"caplab/lab/guard"
	"caplab/lab/inventory"
	"caplab/lab/store/consensus"
	"caplab/lab/store/geo"
	"caplab/lab/store/replicated"
	"caplab/nodes"
)

// The event stream: the State viewers see, built from the cluster and the
// lab's rooms, and the events every subscriber gets.

// events owns the subscribers, the newest State published and the version
// viewers see. It publishes to the recorders (hooks) first, so nothing
// that may drop an event (a slow subscriber) can keep it from the audit
// log.
type events struct {
	cluster *nodes.Cluster
	hooks   *hooks
	stop    <-chan struct{}
	// What a State adds to the cluster's snapshot.
	breakers   *guard.Breakers
	clocks     *nodes.Clocks
	counters   *storeCounters
	replicated *replicated.Store // W and R
	consensus  *consensus.Store  // group commit, rounds per unit, the regional caches
	geo        *geo.Store        // stranded buys

	version atomic.Int64          // bumped by every change viewers see
	snap    atomic.Pointer[State] // the newest State published; operation events carry it

	subMu  sync.RWMutex
	subs   map[chan Event]*atomic.Int64 // each subscriber's events missed since its last delivery
	missed atomic.Int64                 // events lost by any subscriber, ever (MissedEvents)
}

// State is the whole lab now.
func (l *Lab) State() State { return l.events.state(l.cluster.State()) }

// state is the State of snapshot s: the cluster's, with the lab's
// breakers, clocks, counters and the replicated store's quorum.
func (ev *events) state(s nodes.Snapshot) State {
	st := State{LatencyScale: s.LatencyScale, Speed: ev.cluster.Fabric().Speed(), Replicated: ev.replicated.Quorum(),
		Consensus: consensusState(ev.consensus)}
	urls := clientURLs(ev.cluster.Endpoints())
	for _, r := range s.Regions {
		st.Regions = append(st.Regions, RegionState{
			Name: r.Name, City: r.City, Lat: r.Lat, Lon: r.Lon, Up: r.Up,
			Consensus: MemberState{
				Role: string(r.Role), Term: r.Term, Leader: r.Leader,
				CommitIndex: r.CommitIndex, AppliedIndex: r.AppliedIndex,
			},
			Replica:    ReplicaState{Revision: r.ReplicaRev},
			Breakers:   ev.breakers.States(r.Name),
			ClientURLs: urls[r.Name],
			Clock:      ev.clocks.State(r.Name),
			Zones:      zoneStates(s, r.Name),
			Agent:      r.Agent,
			Stale:      r.Stale,
			Cache:      cacheLag(ev.consensus, r.Name),
		})
	}
	st.ZoneLinks = zoneLinkStates(s) // the geo store's zones
	for _, k := range s.Links {
		state := "up"
		if !k.Up {
			state = "cut"
		}
		st.Links = append(st.Links, LinkState{
			From: k.From, To: k.To, State: state, RTTMs: k.RTTMs, DelayMs: k.DelayMs,
			Estimated: k.Estimated, Bytes: k.Bytes, Messages: k.Messages,
			MeasuredRTTMs: k.MeasuredRTTMs, OverModel: k.OverModel,
		})
	}
	st.Version = ev.version.Load() + int64(s.Seq)
	st.Counters = ev.counters.snapshot()
	for i := range st.Counters {
		if st.Counters[i].Store == inventory.Geo {
			st.Counters[i].Stranded = ev.geo.Stranded()
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
func (l *Lab) Subscribe() (<-chan Event, func()) { return l.events.subscribe() }

func (ev *events) subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 256)
	ev.subMu.Lock()
	select {
	case <-ev.stop:
		close(ch)
	default:
		ev.subs[ch] = new(atomic.Int64)
	}
	ev.subMu.Unlock()
	return ch, func() {
		ev.subMu.Lock()
		defer ev.subMu.Unlock()
		if _, ok := ev.subs[ch]; ok {
			delete(ev.subs, ch)
			close(ch)
		}
	}
}

// closeAll ends every subscription (Close, after the lab stopped).
func (ev *events) closeAll() {
	ev.subMu.Lock()
	defer ev.subMu.Unlock()
	for ch := range ev.subs {
		close(ch)
	}
	clear(ev.subs)
}

// publish sends e to every subscriber that has room; State is filled in
// when e has none.
func (ev *events) publish(e Event) {
	ev.hooks.call(e) // hooks.go: before anything that may drop e
	ev.subMu.RLock()
	none := len(ev.subs) == 0
	ev.subMu.RUnlock()
	if none {
		return
	}
	if e.State == nil {
		st := ev.state(ev.cluster.State())
		ev.snap.Store(&st)
		e.State = &st
	}
	ev.subMu.RLock()
	defer ev.subMu.RUnlock()
	for ch, missed := range ev.subs {
		e := e
		if missed.Load() != 0 { // a write only when there is something to report
			e.Missed = missed.Swap(0)
		}
		select {
		case ch <- e:
		default: // slow subscriber: it misses this one; the next says so and carries State
			missed.Add(e.Missed + 1)
			ev.missed.Add(1)
		}
	}
}

// MissedEvents is how many events subscribers have lost, in all, since the
// lab started: each one an event some subscriber (a viewer hub, metrics)
// had no room for.
func (l *Lab) MissedEvents() int64 { return l.events.missed.Load() }

// publishState publishes a state event with a fresh State.
func (ev *events) publishState() { ev.publish(Event{Type: EventState}) }

// publishNew builds the State now, makes it the newest and publishes e
// with it (a reset).
func (ev *events) publishNew(e Event) {
	st := ev.state(ev.cluster.State())
	ev.snap.Store(&st)
	e.State = &st
	ev.publish(e)
}

// forward turns cluster snapshots into state events until the cluster
// closes the channel; changed is told of each first (the consensus
// store's leader cache).
func (ev *events) forward(snaps <-chan nodes.Snapshot, changed func()) {
	for s := range snaps {
		changed()
		st := ev.state(s)
		ev.snap.Store(&st)
		ev.publish(Event{Type: EventState, State: &st})
	}
}

// StateEvery is how often, at most, operations' changes (counters, the
// counting goroutine's tally) are published as a state event.
const StateEvery = 50 * time.Millisecond

// coalesce publishes a state event at most every StateEvery, and only
// when operations changed something since the last State published:
// a burst of operations costs one State, not one each.
func (ev *events) coalesce() {
	t := time.NewTicker(StateEvery)
	defer t.Stop()
	last := ev.version.Load()
	for {
		select {
		case <-ev.stop:
			return
		case <-t.C:
		}
		if v := ev.version.Load(); v != last {
			last = v
			ev.publishState()
		}
	}
}

// faultHappened records a fault or configuration change everywhere it
// must go: the History, the consensus store's leader (answers name the
// leader as it is after the fault), the version viewers see, the event
// stream and the recorders (the audit log) — and, when act is not nil,
// the lesson recording, as that action. Every room that changes the lab
// reports through it.
func (l *Lab) faultHappened(kind inventory.FaultKind, regions []string, detail string, act *RecordedAction) {
	// the network as the fault left it, against the History's start (replay.go)
	net := NetOf(l.State(), l.history.Start())
	f := l.history.AddFault(inventory.Fault{Kind: kind, Regions: regions, Detail: detail, At: time.Now(), Net: net})
	l.consensus.LeaderChanged()
	l.events.version.Add(1)
	l.events.publish(Event{Type: EventFault, Fault: &f})
	if act != nil {
		l.recorder.add(*act)
	}
}

// cityOf names a region for a person: "Singapore (ap-southeast-1)".
func cityOf(region string) string {
	if p, ok := nodes.Lookup(region); ok {
		return p.City + " (" + region + ")"
	}
	return region
}
