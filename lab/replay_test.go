package lab_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/history"
	"caplab/lab/inventory"
)

// Tests of the rebuilt moment (replay.go) on recorded data: what the
// History holds, drawn again as it was.

var replayT0 = time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return replayT0.Add(time.Duration(ms) * time.Millisecond) }

// liveState is a lab's shape: three regions, every link up at its model
// round trip, us-east-1 leading.
func liveState() lab.State {
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-1"}
	st := lab.State{LatencyScale: 1, Speed: 1, Replicated: inventory.QuorumState{N: 3, W: 1, R: 1}}
	for _, r := range regions {
		role := "follower"
		if r == "us-east-1" {
			role = "leader"
		}
		st.Regions = append(st.Regions, lab.RegionState{Name: r, City: r + "-city", Up: true,
			Consensus: lab.MemberState{Role: role, Leader: "us-east-1", Term: 7}})
		for _, o := range regions {
			if o != r {
				st.Links = append(st.Links, lab.LinkState{From: r, To: o, State: "up", RTTMs: 100, Bytes: 5})
			}
		}
	}
	return st
}

// cutSingapore is the network with ap-southeast-1 cut off both ways.
func cutSingapore(st lab.State) lab.State {
	st.Links = append([]lab.LinkState(nil), st.Links...)
	for i, k := range st.Links {
		if k.From == "ap-southeast-1" || k.To == "ap-southeast-1" {
			st.Links[i].State = "cut"
		}
	}
	return st
}

func replayBuy(id int, region string, store inventory.Store, out inventory.Kind, left, callMs, retMs int) inventory.Operation {
	return inventory.Operation{ID: id, Store: store, SKU: "X", Region: region, Op: inventory.OpBuy, Qty: 1, Outcome: out, Quantity: left,
		Call: at(callMs), Return: at(retMs), Message: "said " + string(out)}
}

// replayHistory: stocked at 0.1 s, Singapore cut off at 1 s, a sale on
// each side during the cut (1.5 s, 2 s), latency to Ireland raised at
// 2.5 s, healed at 3 s, a sale after (4 s).
func replayHistory() history.View {
	live := liveState()
	start := lab.NetOf(live, nil)
	cut := cutSingapore(live)
	slow := cut
	slow.Links = append([]lab.LinkState(nil), cut.Links...)
	for i, k := range slow.Links {
		if (k.From == "us-east-1" && k.To == "eu-west-1") || (k.From == "eu-west-1" && k.To == "us-east-1") {
			slow.Links[i].RTTMs = 400
		}
	}
	healed := slow
	healed.Links = append([]lab.LinkState(nil), slow.Links...)
	for i := range healed.Links {
		healed.Links[i].State = "up"
	}
	stock := inventory.Operation{ID: 1, Store: inventory.Replicated, SKU: "X", Region: "us-east-1", Op: inventory.OpStock, Qty: 1, Outcome: inventory.OK, Quantity: 1,
		Call: at(90), Return: at(100), Message: "stocked"}
	return history.View{
		StartedAt: replayT0, Start: start,
		Operations: []inventory.Operation{
			stock,
			replayBuy(2, "ap-southeast-1", inventory.Replicated, inventory.OK, 0, 1400, 1500),
			replayBuy(3, "us-east-1", inventory.Replicated, inventory.OK, 0, 1900, 2000),
			replayBuy(4, "ap-southeast-1", inventory.Consensus, inventory.Unavailable, 0, 1950, 2300),
			{ID: 5, Store: inventory.Replicated, SKU: "X", Region: "eu-west-1", Op: inventory.OpBuy, Qty: 1, Outcome: inventory.SoldOut, Call: at(2100), Return: at(2200)}, // a load's: no words
			replayBuy(6, "us-east-1", inventory.Replicated, inventory.SoldOut, 0, 3900, 4000),
		},
		Faults: []inventory.Fault{
			{ID: 1, Kind: inventory.FaultPartition, Detail: "us-east-1,eu-west-1 | ap-southeast-1", At: at(1000), Net: lab.NetOf(cut, start)},
			{ID: 2, Kind: inventory.FaultLatency, Regions: []string{"us-east-1", "eu-west-1"}, At: at(2500), Net: lab.NetOf(slow, start)},
			{ID: 3, Kind: inventory.FaultHeal, At: at(3000), Net: lab.NetOf(healed, start)},
		},
	}
}

func linkOf(st lab.State, from, to string) lab.LinkState {
	for _, k := range st.Links {
		if k.From == from && k.To == to {
			return k
		}
	}
	return lab.LinkState{}
}

func TestMomentShowsTheCutAfterTheHeal(t *testing.T) {
	h := replayHistory()
	now := at(5000)
	for _, tc := range []struct {
		name      string
		ms        int
		singapore string // state of ap-southeast-1 -> us-east-1
		rtt       float64
		shops     map[string]string // store/region → outcome
		ok        int               // replicated store's ok answers
		oversold  int
	}{
		{"before the cut", 500, "up", 100, map[string]string{}, 1, 0},
		{"during the cut, after both sales", 2050, "cut", 100,
			map[string]string{"replicated/ap-southeast-1": "ok", "replicated/us-east-1": "ok"}, 3, 1},
		{"latency raised, still cut", 2600, "cut", 400,
			map[string]string{"replicated/ap-southeast-1": "ok", "replicated/us-east-1": "ok", "consensus/ap-southeast-1": "unavailable"}, 3, 1},
		{"after the heal", 4500, "up", 400,
			map[string]string{"replicated/ap-southeast-1": "ok", "replicated/us-east-1": "sold_out", "consensus/ap-southeast-1": "unavailable"}, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := lab.MomentAt(liveState(), h, at(tc.ms), now)
			if err != nil {
				t.Fatal(err)
			}
			if got := linkOf(m.State, "ap-southeast-1", "us-east-1").State; got != tc.singapore {
				t.Errorf("Singapore's link %s, want %s", got, tc.singapore)
			}
			if got := linkOf(m.State, "us-east-1", "ap-southeast-1").State; got != tc.singapore {
				t.Errorf("the link to Singapore %s, want %s", got, tc.singapore)
			}
			if got := linkOf(m.State, "eu-west-1", "us-east-1").RTTMs; got != tc.rtt {
				t.Errorf("Ireland's round trip %g, want %g", got, tc.rtt)
			}
			if got := linkOf(m.State, "eu-west-1", "ap-southeast-1").RTTMs; got != 100 {
				t.Errorf("a link no fault touched: round trip %g, want 100", got)
			}
			if got := linkOf(m.State, "eu-west-1", "us-east-1").Bytes; got != 0 {
				t.Errorf("traffic is not recorded, yet a rebuilt link says %d bytes", got)
			}
			got := map[string]string{}
			for _, op := range m.Shops {
				got[string(op.Store)+"/"+op.Region] = string(op.Outcome)
				if op.Message == "" {
					t.Errorf("a load's operation %d in a shop", op.ID)
				}
			}
			if len(got) != len(tc.shops) {
				t.Errorf("shops %v, want %v", got, tc.shops)
			}
			for k, v := range tc.shops {
				if got[k] != v {
					t.Errorf("shop %s shows %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
			for _, c := range m.Counters {
				if c.Store == inventory.Replicated && (c.OK != tc.ok || c.Oversold != tc.oversold) {
					t.Errorf("replicated counts ok %d oversold %d, want %d and %d", c.OK, c.Oversold, tc.ok, tc.oversold)
				}
			}
			for _, r := range m.Regions {
				if want := r.Name == "us-east-1"; (r.Consensus.Role == "leader") != want {
					t.Errorf("%s is %s", r.Name, r.Consensus.Role)
				}
			}
			if !m.Replay.From.Equal(replayT0) || !m.Replay.To.Equal(now) || len(m.Replay.AsRecorded) == 0 {
				t.Errorf("window %+v", m.Replay)
			}
		})
	}
}

func TestMomentOutsideTheWindow(t *testing.T) {
	h := replayHistory()
	now := at(5000)
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{"before the last reset", replayT0.Add(-time.Second)},
		{"in the future", now.Add(time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := lab.MomentAt(liveState(), h, tc.at, now)
			if !errors.Is(err, inventory.ErrBadInput) {
				t.Fatalf("err %v, want ErrBadInput", err)
			}
			for _, want := range []string{replayT0.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano), "the last reset"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q does not name %q", err, want)
				}
			}
		})
	}
	for _, edge := range []time.Time{replayT0, now} {
		if _, err := lab.MomentAt(liveState(), h, edge, now); err != nil {
			t.Errorf("the window's edge %v: %v", edge, err)
		}
	}
}

func TestMomentSaysWhenTheHistoryIsFull(t *testing.T) {
	h := replayHistory()
	h.DroppedOperations = 7
	m, err := lab.MomentAt(liveState(), h, at(4500), at(5000))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Replay.RecordedUntil.Equal(at(4000)) {
		t.Errorf("recorded until %v, want the last record's %v", m.Replay.RecordedUntil, at(4000))
	}
	if s := strings.Join(m.Replay.AsRecorded, " "); !strings.Contains(s, "History is full") {
		t.Errorf("the window does not say the History is full: %s", s)
	}
}

func TestReplayStepsInOrder(t *testing.T) {
	h := replayHistory()
	r, err := lab.ReplayOf(liveState(), h, at(500), at(3500), at(5000))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range r.Steps {
		switch {
		case s.Fault != nil:
			if s.State == nil {
				t.Fatalf("fault %d without the network it left", s.Fault.ID)
			}
			got = append(got, string(s.Fault.Kind)+":"+linkOf(*s.State, "us-east-1", "ap-southeast-1").State)
		case s.Operation != nil:
			got = append(got, s.Operation.Region+":"+string(s.Operation.Outcome))
		}
	}
	want := "partition:cut ap-southeast-1:ok us-east-1:ok ap-southeast-1:unavailable latency:cut heal:up"
	if strings.Join(got, " ") != want {
		t.Errorf("steps\n %s\nwant\n %s", strings.Join(got, " "), want)
	}
	if linkOf(r.Start.State, "us-east-1", "ap-southeast-1").State != "up" {
		t.Errorf("the replay starts with Singapore cut off")
	}
	if _, err := lab.ReplayOf(liveState(), h, at(3500), at(500), at(5000)); !errors.Is(err, inventory.ErrBadInput) {
		t.Errorf("an end before the start: %v", err)
	}
}
