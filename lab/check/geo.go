package check

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"caplab/lab/inventory"
)

// geoModel is the sequential specification of one (sku, region)
// allocation: set replaces it, a write adds Delta (never below zero) and
// must leave Left, a read returns it. A call that failed may or may not
// have applied: the model keeps both states (nondeterministic, so the
// power-set model stays small — states are integers).
var geoModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var order []string
		for _, o := range history {
			c := o.Input.(inventory.GeoCall)
			k := c.SKU + "@" + c.Region
			if _, ok := by[k]; !ok {
				order = append(order, k)
			}
			by[k] = append(by[k], o)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, k := range order {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() []any { return []any{0} },
	Step: func(state, input, _ any) []any {
		s, c := state.(int), input.(inventory.GeoCall)
		apply := func() (int, bool) {
			if c.Kind == inventory.GeoSet {
				return c.Set, true
			}
			return s + c.Delta, s+c.Delta >= 0
		}
		switch {
		case c.Kind == inventory.GeoRead:
			if s == c.Left {
				return []any{s}
			}
			return nil
		case c.Unknown:
			if n, ok := apply(); ok && n != s {
				return []any{s, n}
			}
			return []any{s}
		default:
			if n, ok := apply(); ok && n == c.Left {
				return []any{n}
			}
			return nil
		}
	},
	Equal: func(a, b any) bool { return a.(int) == b.(int) },
	DescribeOperation: func(input, _ any) string {
		c := input.(inventory.GeoCall)
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s", c.Region, c.Kind)
		switch {
		case c.Kind == inventory.GeoSet:
			fmt.Fprintf(&b, " %d", c.Set)
		case c.Kind != inventory.GeoRead:
			fmt.Fprintf(&b, " %+d", c.Delta)
		}
		if c.Unknown {
			b.WriteString(" → unknown (may have applied)")
		} else {
			fmt.Fprintf(&b, " → %d", c.Left)
		}
		return b.String()
	},
	DescribeState: func(state any) string { return fmt.Sprintf("allocation %d", state.(int)) },
}

// geoPorcupine turns calls into porcupine operations on one time axis; a
// call that may have applied never returns (after every other event).
// Client ids never overlap: the lowest id free at the call.
func geoPorcupine(calls []inventory.GeoCall) []porcupine.Operation {
	if len(calls) == 0 {
		return nil
	}
	calls = slices.Clone(calls)
	slices.SortStableFunc(calls, func(a, b inventory.GeoCall) int { return a.Call.Compare(b.Call) })
	origin := calls[0].Call
	var latest int64
	for _, c := range calls {
		latest = max(latest, c.Return.Sub(origin).Nanoseconds())
	}
	var busyUntil []int64 // per client id: return time of its last call; -1 retired
	ops := make([]porcupine.Operation, 0, len(calls))
	for _, c := range calls {
		call := c.Call.Sub(origin).Nanoseconds()
		ret := max(call, c.Return.Sub(origin).Nanoseconds())
		if c.Unknown {
			ret = latest + 1
		}
		id := -1
		for i, until := range busyUntil {
			if until >= 0 && until < call {
				id = i
				break
			}
		}
		if id < 0 {
			id = len(busyUntil)
			busyUntil = append(busyUntil, 0)
		}
		busyUntil[id] = ret
		if c.Unknown {
			busyUntil[id] = -1
		}
		ops = append(ops, porcupine.Operation{ClientId: id, Input: c, Output: nil, Call: call, Return: ret})
	}
	return ops
}

// GeoLinearizability is the per-(sku, region) verdict of the geo store.
type GeoLinearizability struct {
	Linearizable bool            `json:"linearizable"`
	TimedOut     bool            `json:"timedOut,omitempty"`
	Regions      map[string]bool `json:"regions"` // region → its allocation history is linearizable
	Calls        int             `json:"calls"`   // calls into regional groups checked
}

// checkGeo judges every (sku, region) allocation history separately, and
// names the first call a failed search could not place.
func checkGeo(calls []inventory.GeoCall, regions []string, timeout time.Duration) (GeoLinearizability, *Unplaced) {
	res := GeoLinearizability{Linearizable: true, Regions: map[string]bool{}, Calls: len(calls)}
	model := geoModel.ToModel()
	var unplaced *Unplaced
	for _, r := range regions {
		var mine []inventory.GeoCall
		for _, c := range calls {
			if c.Region == r {
				mine = append(mine, c)
			}
		}
		pops := geoPorcupine(mine)
		out, info := porcupine.CheckOperationsVerbose(model, pops, timeout)
		res.Regions[r] = out == porcupine.Ok
		if out != porcupine.Ok {
			res.Linearizable = false
			res.TimedOut = res.TimedOut || out == porcupine.Unknown
		}
		if out == porcupine.Illegal && unplaced == nil {
			unplaced = unplacedGeoCall(pops, info)
		}
	}
	return res, unplaced
}

// visualizeGeo draws the allocation histories of one SKU (one partition
// per region), marking the call the search could not place.
func visualizeGeo(calls []inventory.GeoCall, w io.Writer) error {
	model := geoModel.ToModel()
	calls = slices.Clone(calls)
	slices.SortStableFunc(calls, func(a, b inventory.GeoCall) int { return cmp.Compare(a.Region, b.Region) })
	pops := geoPorcupine(calls)
	res, info := porcupine.CheckOperationsVerbose(model, pops, Timeout)
	if res == porcupine.Illegal {
		if u := unplacedGeoCall(pops, info); u != nil {
			info.AddAnnotations([]porcupine.Annotation{{ClientId: u.client, Start: u.call, End: u.ret,
				Description: "could not be placed", Details: u.Sentence, BackgroundColor: "#f7b7b7"}})
		}
	}
	return porcupine.Visualize(model, info, w)
}
