package lab

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"caplab/lab/history"
	"caplab/lab/inventory"
)

// Any moment since the last reset, shown again: the State as it was at a
// time T, rebuilt from what the lab recorded — the History's operations,
// and its faults, each of which carries the network as it left it
// (inventory.FaultNet). Pure functions over recorded data and the live State (which
// gives the regions' names, places and links): nothing is kept or
// computed while nobody asks, and a rebuild reads each recorded operation
// once.

// NetOf is st's network as a FaultNet: with start nil every link's round
// trip (a History's start), else only the round trips that differ from
// start's.
func NetOf(st State, start *inventory.FaultNet) *inventory.FaultNet {
	n := &inventory.FaultNet{W: st.Replicated.W, R: st.Replicated.R, Speed: st.Speed, RTTMs: map[string]float64{}}
	for _, ls := range [][]LinkState{st.Links, st.ZoneLinks} {
		for _, k := range ls {
			key := inventory.LinkKey(k.From, k.To)
			if k.State == "cut" {
				n.Cut = append(n.Cut, key)
			}
			if start == nil || start.RTTMs[key] != k.RTTMs {
				n.RTTMs[key] = k.RTTMs
			}
		}
	}
	for _, r := range st.Regions {
		if !r.Up {
			n.Down = append(n.Down, r.Name)
		}
		if r.Up && r.Consensus.Role == "leader" {
			n.Leader = r.Name
		}
		if r.Clock.OffsetMs != 0 || r.Clock.DriftPpm != 0 {
			if n.Clocks == nil {
				n.Clocks = map[string]inventory.NetClock{}
			}
			n.Clocks[r.Name] = inventory.NetClock{OffsetMs: r.Clock.OffsetMs, DriftPpm: r.Clock.DriftPpm}
		}
		for _, z := range r.Zones {
			switch {
			case !z.Up:
				n.Down = append(n.Down, z.Name)
			case z.Role == "leader":
				n.ZoneLeaders = append(n.ZoneLeaders, z.Name)
			}
		}
	}
	if n.Leader == "" { // no member says it leads: the leader the others name
		for _, r := range st.Regions {
			if r.Up && r.Consensus.Leader != "" {
				n.Leader = r.Consensus.Leader
				break
			}
		}
	}
	if len(n.RTTMs) == 0 {
		n.RTTMs = nil
	}
	return n
}

// Moment is the lab as it was at one moment, rebuilt (GET
// /api/state?at=T): the State then, the last answer each shop showed,
// and what the rebuild covers.
type Moment struct {
	State
	At time.Time `json:"at"`
	// Shops: per store and region, the last buy or read answered by At
	// (operations a person or a lesson made; a load's are not shown one
	// by one), in inventory.Stores order then the regions' order.
	Shops  []inventory.Operation `json:"-"`
	Replay ReplayWindow          `json:"replay"`
}

// ReplayWindow is what can be shown again: from the History's start (the
// last reset, or the lab's start) to now.
type ReplayWindow struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// RecordedUntil is set when the History stopped keeping operations or
	// faults (its caps): nothing after it is in a rebuilt moment.
	RecordedUntil time.Time `json:"recordedUntil,omitzero"`
	// AsRecorded says, in sentences, what a rebuilt State holds only
	// approximately or not at all.
	AsRecorded []string `json:"asRecorded"`
}

// What a rebuilt State cannot know, said with every Moment.
var asRecorded = []string{
	"Roles are as the lab knew them at the last fault before this moment: an election in between is not recorded.",
	"Counts are of the recorded operations (a load records a sample); oversold counts units sold past each restock; stale reads and stranded refusals are not rebuilt.",
	"Link traffic, breakers, terms and log indexes are not recorded: they show as zero and closed.",
}

// windowOf is h's replay window as of now.
func windowOf(h history.View, now time.Time) ReplayWindow {
	w := ReplayWindow{From: h.StartedAt, To: now, AsRecorded: slices.Clone(asRecorded)}
	if h.DroppedOperations > 0 || h.DroppedFaults > 0 {
		var last time.Time
		for i := range h.Operations {
			last = maxTime(last, h.Operations[i].Return)
		}
		for i := range h.Faults {
			last = maxTime(last, h.Faults[i].At)
		}
		w.RecordedUntil = last
		w.AsRecorded = append(w.AsRecorded, fmt.Sprintf(
			"The History is full (it keeps %d operations and %d faults since the last reset): it holds nothing after %s; a reset starts it afresh.",
			history.MaxOperations, history.MaxFaults, last.Format("15:04:05")))
	}
	return w
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// CheckReplayTime says whether at lies in h's replay window (as of now):
// nil, or an inventory.ErrBadInput naming the window.
func CheckReplayTime(h history.View, at, now time.Time) error {
	if at.Before(h.StartedAt) || at.After(now) {
		return fmt.Errorf("%w: %s is outside what can be replayed: from %s (the last reset) to %s (now)",
			inventory.ErrBadInput, at.UTC().Format(time.RFC3339Nano), h.StartedAt.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// MomentAt rebuilds the lab at at from the History h, on the shape of
// live (the lab now: its regions, zones and links), as of now. at must
// lie in the replay window (CheckReplayTime). It reads h once.
func MomentAt(live State, h history.View, at, now time.Time) (Moment, error) {
	if err := CheckReplayTime(h, at, now); err != nil {
		return Moment{}, err
	}
	m := Moment{State: NetworkAt(live, h, at), At: at, Replay: windowOf(h, now)}
	m.Counters, m.Shops = countsAt(h.Operations, at)
	return m, nil
}

// NetworkAt is live's shape with the network, regions and settings as h
// recorded them at at; counters are left empty (MomentAt fills them).
func NetworkAt(live State, h history.View, at time.Time) State {
	net, clockSet := netAt(h, at)
	down := toSet(net.Down)
	cut := toSet(net.Cut)
	zoneLeads := toSet(net.ZoneLeaders)
	st := State{
		LatencyScale: live.LatencyScale, Speed: net.Speed,
		Replicated: inventory.QuorumState{N: live.Replicated.N, W: net.W, R: net.R},
		Counters:   []StoreCounter{}, Links: []LinkState{}, ZoneLinks: []LinkState{},
	}
	if st.Speed == 0 {
		st.Speed = 1
	}
	for _, r := range live.Regions {
		rs := RegionState{Name: r.Name, City: r.City, Lat: r.Lat, Lon: r.Lon, Up: !down[r.Name],
			ClientURLs: r.ClientURLs, Breakers: map[inventory.Store]string{}, Zones: []ZoneState{}}
		switch {
		case !rs.Up:
			rs.Consensus = MemberState{Role: "offline"}
		case net.Leader == r.Name:
			rs.Consensus = MemberState{Role: "leader", Leader: r.Name}
		default:
			rs.Consensus = MemberState{Role: "follower", Leader: net.Leader}
		}
		if c, ok := net.Clocks[r.Name]; ok {
			rs.Clock.OffsetMs, rs.Clock.DriftPpm = c.OffsetMs, c.DriftPpm
			rs.Clock.SkewMs = c.OffsetMs + c.DriftPpm*float64(at.Sub(clockSet[r.Name]).Milliseconds())/1e6
		}
		for _, z := range r.Zones {
			zs := ZoneState{Name: z.Name, Up: !down[z.Name], Role: "follower"}
			switch {
			case !zs.Up:
				zs.Role = "offline"
			case zoneLeads[z.Name]:
				zs.Role, zs.Leader = "leader", z.Name
			}
			rs.Zones = append(rs.Zones, zs)
		}
		st.Regions = append(st.Regions, rs)
	}
	link := func(k LinkState) LinkState {
		key := inventory.LinkKey(k.From, k.To)
		out := LinkState{From: k.From, To: k.To, State: "up", RTTMs: k.RTTMs, Estimated: k.Estimated}
		if rtt, ok := net.RTTMs[key]; ok {
			out.RTTMs = rtt
		}
		if cut[key] {
			out.State = "cut"
		}
		out.DelayMs = out.RTTMs / 2 * st.LatencyScale * st.Speed
		return out
	}
	for _, k := range live.Links {
		st.Links = append(st.Links, link(k))
	}
	for _, k := range live.ZoneLinks {
		st.ZoneLinks = append(st.ZoneLinks, link(k))
	}
	return st
}

// netAt is the network h recorded at at — the start's, changed by the
// last fault at or before at — and when each region's clock was last set.
func netAt(h history.View, at time.Time) (inventory.FaultNet, map[string]time.Time) {
	var net inventory.FaultNet
	if h.Start != nil {
		net = *h.Start
	} else {
		net = inventory.FaultNet{W: 1, R: 1}
	}
	start := net.RTTMs
	clockSet := map[string]time.Time{}
	var last *inventory.Fault
	for i := range h.Faults {
		f := &h.Faults[i]
		if f.At.After(at) {
			continue
		}
		if last == nil || f.At.After(last.At) || (f.At.Equal(last.At) && f.ID > last.ID) {
			last = f
		}
		if f.Kind == inventory.FaultClock {
			rs := f.Regions
			if len(rs) == 0 { // every clock reset
				clear(clockSet)
			}
			for _, r := range rs {
				clockSet[r] = f.At
			}
		}
	}
	if last != nil && last.Net != nil {
		net = *last.Net
		rtt := maps.Clone(start)
		if rtt == nil {
			rtt = map[string]float64{}
		}
		maps.Copy(rtt, last.Net.RTTMs)
		net.RTTMs = rtt
	}
	for r := range net.Clocks {
		if _, ok := clockSet[r]; !ok {
			clockSet[r] = h.StartedAt
		}
	}
	return net, clockSet
}

func toSet(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// shopOp reports whether op is one a shop shows: a buy or read a person
// or a lesson made (a load's operations keep no words: sentence.go).
func shopOp(op *inventory.Operation) bool {
	return (op.Op == inventory.OpBuy || op.Op == inventory.OpRead) && op.Message != ""
}

// countsAt counts the outcomes of the operations answered by at, per
// store, and finds each shop's last answer.
func countsAt(ops []inventory.Operation, at time.Time) ([]StoreCounter, []inventory.Operation) {
	counters := make([]StoreCounter, len(inventory.Stores))
	idx := map[inventory.Store]int{}
	for i, s := range inventory.Stores {
		counters[i].Store = s
		idx[s] = i
	}
	type shop struct {
		store  inventory.Store
		region string
	}
	type window struct{ stocked, sold int }
	last := map[shop]int{}
	windows := map[inventory.Store]map[string]*window{}
	for i := range ops {
		op := &ops[i]
		if op.Return.After(at) {
			continue
		}
		si, ok := idx[op.Store]
		if !ok {
			continue
		}
		c := &counters[si]
		switch op.Outcome {
		case inventory.OK:
			c.OK++
		case inventory.SoldOut:
			c.SoldOut++
		case inventory.Unavailable:
			c.Unavailable++
		case inventory.FailFast:
			c.FailFast++
		case inventory.Conflict:
			c.Conflict++
		case inventory.Overloaded:
			c.Overloaded++
		}
		if op.Outcome == inventory.OK && (op.Op == inventory.OpStock || op.Op == inventory.OpBuy) {
			ws := windows[op.Store]
			if ws == nil {
				ws = map[string]*window{}
				windows[op.Store] = ws
			}
			w := ws[op.SKU]
			if w == nil {
				w = &window{stocked: -1}
				ws[op.SKU] = w
			}
			if op.Op == inventory.OpStock {
				w.stocked, w.sold = op.Qty, 0
			} else {
				w.sold += max(1, op.Qty)
			}
		}
		if shopOp(op) {
			k := shop{op.Store, op.Region}
			if j, ok := last[k]; !ok || !ops[j].Return.After(op.Return) {
				last[k] = i
			}
		}
	}
	for s, ws := range windows {
		for _, w := range ws {
			if w.stocked >= 0 && w.sold > w.stocked {
				counters[idx[s]].Oversold += w.sold - w.stocked
			}
		}
	}
	shops := make([]inventory.Operation, 0, len(last))
	for _, i := range last {
		shops = append(shops, ops[i])
	}
	slices.SortFunc(shops, func(a, b inventory.Operation) int {
		return cmp.Or(cmp.Compare(idx[a.Store], idx[b.Store]), cmp.Compare(a.Region, b.Region))
	})
	return counters, shops
}

// ReplayStep is one thing that happened in a replayed stretch: a fault,
// with the network it left (State: NetworkAt just after it), or a shop's
// answer (Operation, a buy or read a shop showed).
type ReplayStep struct {
	At        time.Time            `json:"at"`
	Fault     *inventory.Fault     `json:"fault,omitempty"`
	State     *State               `json:"state,omitempty"`
	Operation *inventory.Operation `json:"operation,omitempty"`
}

// MaxReplaySteps bounds a replay's steps: past it, the replay ends
// early (Replay.Until says where).
const MaxReplaySteps = 5000

// Replay is a stretch of the History to play again: the Moment at its
// start, then its steps in time order.
type Replay struct {
	Start Moment       `json:"-"`
	From  time.Time    `json:"from"`
	To    time.Time    `json:"to"`
	Steps []ReplayStep `json:"-"`
	// Until is set when the stretch held more than MaxReplaySteps: the
	// steps end there.
	Until time.Time `json:"until,omitzero"`
}

// ReplayOf is the stretch of h from from to to (both in the replay
// window as of now, from not after to): the Moment at from, then every
// fault (with the network it left) and every shop's answer (by its
// return) after from up to to.
func ReplayOf(live State, h history.View, from, to, now time.Time) (Replay, error) {
	if err := CheckReplayTime(h, from, now); err != nil {
		return Replay{}, err
	}
	if err := CheckReplayTime(h, to, now); err != nil {
		return Replay{}, err
	}
	if to.Before(from) {
		return Replay{}, fmt.Errorf("%w: a replay's end (%s) is before its start (%s)", inventory.ErrBadInput,
			to.UTC().Format(time.RFC3339Nano), from.UTC().Format(time.RFC3339Nano))
	}
	start, err := MomentAt(live, h, from, now)
	if err != nil {
		return Replay{}, err
	}
	r := Replay{Start: start, From: from, To: to}
	in := func(t time.Time) bool { return t.After(from) && !t.After(to) }
	for i := range h.Operations {
		if op := &h.Operations[i]; shopOp(op) && in(op.Return) {
			r.Steps = append(r.Steps, ReplayStep{At: op.Return, Operation: op})
		}
	}
	for i := range h.Faults {
		if f := &h.Faults[i]; in(f.At) {
			r.Steps = append(r.Steps, ReplayStep{At: f.At, Fault: f})
		}
	}
	slices.SortStableFunc(r.Steps, func(a, b ReplayStep) int { return a.At.Compare(b.At) })
	if len(r.Steps) > MaxReplaySteps {
		r.Until = r.Steps[MaxReplaySteps-1].At
		r.Steps = r.Steps[:MaxReplaySteps]
	}
	for i := range r.Steps {
		if s := &r.Steps[i]; s.Fault != nil {
			st := NetworkAt(live, h, s.At)
			s.State = &st
		}
	}
	return r, nil
}
