package lab

import (
	"time"

	"caplab/nodes"
)

// State is the whole lab now.
func (l *Lab) State() State {
	return l.stateFrom(l.cluster.State())
}

func (l *Lab) stateFrom(s nodes.Snapshot) State {
	st := State{LatencyScale: s.LatencyScale, Replicated: l.Quorum()}
	for _, r := range s.Regions {
		st.Regions = append(st.Regions, RegionState{
			Name: r.Name, City: r.City, Lat: r.Lat, Lon: r.Lon, Up: r.Up,
			Consensus: MemberState{
				Role: string(r.Role), Term: r.Term, Leader: r.Leader,
				CommitIndex: r.CommitIndex, AppliedIndex: r.AppliedIndex,
			},
			Replica:  ReplicaState{Revision: r.ReplicaRev},
			Breakers: l.breakers.States(r.Name),
			Zones:    zoneStates(s, r.Name),
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
	l.mu.Lock()
	st.Version = l.version + int64(s.Seq)
	for _, store := range Stores {
		st.Counters = append(st.Counters, *l.counters[store])
	}
	for i := range st.Counters {
		if st.Counters[i].Store == Geo { // geo_lab.go
			st.Counters[i].Stranded = int(l.geo.stranded.Load())
		}
	}
	l.mu.Unlock()
	return st
}

// Subscribe returns a channel of events: a state event whenever the cluster
// changes (links, roles, breakers, quorum), every operation as it returns,
// every fault as it is recorded. Every event carries the full State. A
// subscriber that does not keep up loses events (the channel holds 256),
// never blocks the lab. cancel ends the subscription; Close ends all.
func (l *Lab) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 256)
	l.subMu.Lock()
	select {
	case <-l.stop:
		close(ch)
	default:
		l.subs[ch] = struct{}{}
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

// publish sends e to every subscriber that has room; State is filled in.
func (l *Lab) publish(e Event) {
	l.subMu.Lock()
	none := len(l.subs) == 0
	l.subMu.Unlock()
	if none {
		return
	}
	if e.State == nil {
		st := l.State()
		e.State = &st
	}
	l.subMu.Lock()
	defer l.subMu.Unlock()
	for ch := range l.subs {
		select {
		case ch <- e:
		default: // slow subscriber: it misses this one, the next carries State
		}
	}
}

func (l *Lab) publishState() { l.publish(Event{Type: EventState}) }

// forwardSnapshots turns cluster snapshots into state events until the
// cluster closes the channel.
func (l *Lab) forwardSnapshots(snaps <-chan nodes.Snapshot) {
	for s := range snaps {
		st := l.stateFrom(s)
		l.publish(Event{Type: EventState, State: &st})
	}
}

// fault records a fault or configuration change and publishes it.
func (l *Lab) fault(kind FaultKind, regions []string, detail string) {
	f := l.history.AddFault(Fault{Kind: kind, Regions: regions, Detail: detail, At: time.Now()})
	l.mu.Lock()
	l.version++
	l.mu.Unlock()
	l.publish(Event{Type: EventFault, Fault: &f})
}

// cityOf names a region for a person: "Singapore (ap-southeast-1)".
func cityOf(region string) string {
	if p, ok := nodes.Lookup(region); ok {
		return p.City + " (" + region + ")"
	}
	return region
}
