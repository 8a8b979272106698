package web

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"caplab/lab"
	"caplab/lab/inventory"
	"caplab/nodes"
)

// dropNulls removes object members whose value is null: a delta says
// "absent" for both, as a browser's state does.
func dropNulls(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if e != nil {
				out[k] = dropNulls(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = dropNulls(e)
		}
		return out
	}
	return v
}

func decodeAny(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDiffJSONCases(t *testing.T) {
	for _, c := range []struct{ a, b, delta string }{
		{`{"x":1,"y":2}`, `{"x":1,"y":3}`, `{"y":3}`},
		{`{"x":1,"y":2}`, `{"x":1}`, `{"y":null}`},
		{`{"x":1}`, `{"x":1,"z":{"a":true}}`, `{"z":{"a":true}}`},
		{`{"l":[{"b":1},{"b":2},{"b":3}]}`, `{"l":[{"b":1},{"b":5},{"b":3}]}`, `{"l":{"1":{"b":5}}}`},
		{`{"l":[1,2]}`, `{"l":[1,2,3]}`, `{"l":[1,2,3]}`},
		{`{"l":[1,2]}`, `{"l":null}`, `{"l":null}`},
		{`{"l":null}`, `{"l":[1]}`, `{"l":[1]}`},
		{`{"o":{"a":1}}`, `{"o":"gone"}`, `{"o":"gone"}`},
		{`{"s":"x"}`, `{"s":{"a":1}}`, `{"s":{"a":1}}`},
	} {
		a, b := decodeAny(t, c.a), decodeAny(t, c.b)
		d, changed, ok := diffJSON(a, b)
		if !ok || !changed {
			t.Errorf("%s → %s: changed %v ok %v", c.a, c.b, changed, ok)
			continue
		}
		if got, _ := json.Marshal(d); string(got) != c.delta {
			t.Errorf("%s → %s: delta %s, want %s", c.a, c.b, got, c.delta)
		}
		if got := applyJSON(a, d); !reflect.DeepEqual(dropNulls(got), dropNulls(b)) {
			t.Errorf("%s + %s = %v, want %s", c.a, c.delta, got, c.b)
		}
	}
	if _, changed, ok := diffJSON(decodeAny(t, `{"x":[1]}`), decodeAny(t, `{"x":[1]}`)); changed || !ok {
		t.Errorf("equal values: changed %v ok %v", changed, ok)
	}
	if _, _, ok := diffJSON(decodeAny(t, `{"x":[1]}`), decodeAny(t, `{"x":{"0":2}}`)); ok {
		t.Error("an array that became an object cannot be said as a delta; diffJSON said it could")
	}
}

// randomState is a lab State with random values where a lab's change
// would put them: counters, traffic, roles, cuts, zones appearing.
func randomState(r *rand.Rand) lab.State {
	roles := []string{"leader", "follower", "candidate", "offline"}
	st := lab.State{Version: r.Int64N(1000), LatencyScale: 1, Replicated: inventory.QuorumState{N: 3, W: 1 + r.IntN(3), R: 1 + r.IntN(3)}}
	for _, name := range []string{"us-east-1", "eu-west-1", "ap-southeast-1"} {
		reg := lab.RegionState{Name: name, City: "c", Up: r.IntN(5) > 0,
			Consensus: lab.MemberState{Role: roles[r.IntN(len(roles))], Term: uint64(r.IntN(4)), CommitIndex: uint64(r.IntN(1e6))},
			Replica:   lab.ReplicaState{Revision: r.Int64N(1e6)},
			Breakers:  map[inventory.Store]string{inventory.Consensus: "closed", inventory.Replicated: []string{"closed", "open"}[r.IntN(2)]},
			Clock:     nodes.ClockState{SkewMs: float64(r.IntN(3))}}
		if r.IntN(2) == 0 {
			reg.Zones = []lab.ZoneState{{Name: name + "a", Up: true, Role: roles[r.IntN(2)]}}
		}
		st.Regions = append(st.Regions, reg)
	}
	for i := range 6 {
		st.Links = append(st.Links, lab.LinkState{From: "a", To: "b", State: []string{"up", "cut"}[r.IntN(2)], RTTMs: float64(i), Bytes: r.Int64N(1e9), Messages: r.Int64N(1e6)})
	}
	for range r.IntN(3) {
		st.Counters = append(st.Counters, lab.StoreCounter{Store: inventory.Consensus, OK: r.IntN(1e6)})
	}
	return st
}

// TestDeltaRoundTrip: for random pairs of States, applying the delta to
// the first gives the second (a property against the whole State).
func TestDeltaRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		a, b := randomState(r), randomState(r)
		ta, err := jsonTree(&a)
		if err != nil {
			t.Fatal(err)
		}
		tb, _ := jsonTree(&b)
		d, _, ok := diffJSON(ta, tb)
		if !ok {
			t.Fatalf("pair %d: no delta", i)
		}
		// Through JSON, as on the wire.
		wire, _ := json.Marshal(d)
		var back any
		_ = json.Unmarshal(wire, &back)
		if got := applyJSON(ta, back); !reflect.DeepEqual(dropNulls(got), dropNulls(tb)) {
			ga, _ := json.Marshal(got)
			gb, _ := json.Marshal(tb)
			t.Fatalf("pair %d: applied\n%s\nwant\n%s\ndelta %s", i, ga, gb, wire)
		}
	}
}

// TestSameShape: running totals are not a change of shape; anything else is.
func TestSameShape(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	base := randomState(r)
	base.Counters = []lab.StoreCounter{{Store: inventory.Consensus, OK: 1}}
	totals := base
	totals.Version++
	totals.Counters = []lab.StoreCounter{{Store: inventory.Consensus, OK: 99, Oversold: 1}}
	totals.Regions = append([]lab.RegionState(nil), base.Regions...)
	totals.Regions[0].Consensus.CommitIndex += 40
	totals.Regions[1].Replica.Revision += 3
	totals.Regions[2].Clock.SkewMs += 0.5
	totals.Links = append([]lab.LinkState(nil), base.Links...)
	totals.Links[0].Bytes += 1000
	totals.Links[0].Messages += 10
	if !sameShape(base, totals) {
		t.Error("a change of running totals counted as a change of shape")
	}
	for name, change := range map[string]func(*lab.State){
		"role":    func(s *lab.State) { s.Regions[0].Consensus.Role = "candidate" },
		"term":    func(s *lab.State) { s.Regions[0].Consensus.Term++ },
		"crash":   func(s *lab.State) { s.Regions[1].Up = !s.Regions[1].Up },
		"cut":     func(s *lab.State) { s.Links[2].State = "cut" + s.Links[2].State },
		"rtt":     func(s *lab.State) { s.Links[2].RTTMs++ },
		"breaker": func(s *lab.State) { s.Regions[2].Breakers = map[inventory.Store]string{inventory.Consensus: "open"} },
		"quorum":  func(s *lab.State) { s.Replicated.W++ },
		"zone":    func(s *lab.State) { s.Regions[0].Zones = append(s.Regions[0].Zones, lab.ZoneState{Name: "z"}) },
		"clock":   func(s *lab.State) { s.Regions[0].Clock.OffsetMs += 5000 },
	} {
		s := base
		s.Regions = append([]lab.RegionState(nil), base.Regions...)
		s.Links = append([]lab.LinkState(nil), base.Links...)
		change(&s)
		if sameShape(base, s) {
			t.Errorf("%s: a change of shape counted as running totals", name)
		}
	}
}
