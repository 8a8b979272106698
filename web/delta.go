package web

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"

	"caplab/lab"
)

// A viewer's cost during a load is mostly running totals: outcome
// counters, link traffic, log indexes — numbers that change every few
// milliseconds while nothing a person would call a change happens. The hub
// sends those at most every SummaryInterval, a State change of any other
// field (a role, a cut, a breaker, a crash) within Interval; and viewers
// that ask for it (?delta=1) get each State after the first as a delta
// frame: only the fields that changed.

// sameShape reports whether a and b differ at most in running totals.
func sameShape(a, b lab.State) bool {
	return reflect.DeepEqual(shapeOf(a), shapeOf(b))
}

// shapeOf is st without its running totals: the version, the outcome
// counters, link traffic, the consensus log's indexes, the replicas'
// revisions and the clocks' skew (which grows under drift). Every other
// field — including any a later State adds — counts as a change worth
// showing at once.
func shapeOf(st lab.State) lab.State {
	st.Version, st.Counters = 0, nil
	st.Regions = slices.Clone(st.Regions)
	for i := range st.Regions {
		r := &st.Regions[i]
		r.Consensus.CommitIndex, r.Consensus.AppliedIndex = 0, 0
		r.Replica = lab.ReplicaState{}
		r.Clock.SkewMs = 0
	}
	st.Links, st.ZoneLinks = withoutTraffic(st.Links), withoutTraffic(st.ZoneLinks)
	return st
}

func withoutTraffic(links []lab.LinkState) []lab.LinkState {
	out := slices.Clone(links)
	for i := range out {
		out[i].Bytes, out[i].Messages = 0, 0
	}
	return out
}

// jsonTree is a State as generic JSON (maps, slices, float64, string,
// bool, nil): what a delta is computed on, and what a browser holds.
func jsonTree(st *lab.State) (any, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	var t any
	return t, json.Unmarshal(b, &t)
}

// diffJSON returns the delta that turns a into b, both decoded JSON, and
// whether anything changed. A delta is a JSON merge patch (RFC 7396: an
// object holds the members that changed, null removes one, anything else
// replaces the value) with one addition: where a and b are arrays of the
// same length, the delta is an object whose keys are the indexes of the
// elements that changed ({"2":{"bytes":5}}) — the receiver tells it from a
// replacement because its own value there is an array. ok is false when a
// change cannot be said this way (an array that became an object); the
// sender then sends the whole State.
func diffJSON(a, b any) (delta any, changed, ok bool) {
	switch bv := b.(type) {
	case map[string]any:
		av, isMap := a.(map[string]any)
		if !isMap {
			if _, isArray := a.([]any); isArray {
				return nil, true, false
			}
			return b, true, true // a new object replaces a scalar or null
		}
		out := map[string]any{}
		for k, v := range bv {
			old, had := av[k]
			if !had {
				out[k] = v
				continue
			}
			d, ch, ok := diffJSON(old, v)
			if !ok {
				return nil, true, false
			}
			if ch {
				out[k] = d
			}
		}
		for k := range av {
			if _, has := bv[k]; !has {
				out[k] = nil
			}
		}
		return out, len(out) > 0, true
	case []any:
		av, isArray := a.([]any)
		if !isArray || len(av) != len(bv) {
			return b, true, true // replaced whole
		}
		out := map[string]any{}
		for i := range bv {
			d, ch, ok := diffJSON(av[i], bv[i])
			if !ok {
				return nil, true, false
			}
			if ch {
				out[strconv.Itoa(i)] = d
			}
		}
		return out, len(out) > 0, true
	default: // scalars and null
		if _, isComposite := a.(map[string]any); isComposite {
			return b, true, true
		}
		if _, isComposite := a.([]any); isComposite {
			return b, true, true
		}
		return b, a != b, true
	}
}

// applyJSON applies a delta made by diffJSON to a, as the page does
// (static/app.js applyDelta); tests check that it gives b back.
func applyJSON(a, delta any) any {
	d, isMap := delta.(map[string]any)
	if !isMap {
		return delta
	}
	if arr, isArray := a.([]any); isArray {
		out := slices.Clone(arr)
		for k, v := range d {
			if i, err := strconv.Atoi(k); err == nil && i >= 0 && i < len(out) {
				out[i] = applyJSON(out[i], v)
			}
		}
		return out
	}
	obj, isObj := a.(map[string]any)
	out := map[string]any{}
	if isObj {
		for k, v := range obj {
			out[k] = v
		}
	}
	for k, v := range d {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = applyJSON(out[k], v)
	}
	return out
}
