package lab

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// geoKind names one call into a regional group.
type geoKind string

const (
	geoSet    geoKind = "set"          // stock: the allocation becomes Set
	geoBuy    geoKind = "buy"          // allocation −= qty
	geoOut    geoKind = "transfer-out" // debit at a borrowing's source
	geoIn     geoKind = "transfer-in"  // credit at the destination (and the sale)
	geoRefund geoKind = "refund"       // an aborted transfer back at its source
	geoRead   geoKind = "read"         // the row's quantity, read or returned by a failed compare
)

// geoCall is one call into one region's group on one SKU, as the checker
// sees it: a register holding the allocation. Delta is the change a write
// makes (set: Set); Left is the allocation after (or read); Unknown: the
// call failed and may still have applied.
type geoCall struct {
	SKU, Region  string
	Kind         geoKind
	Delta, Set   int
	Left         int
	Unknown      bool
	Call, Return time.Time
}

// geoLog records every call into the regional groups (capped like History).
type geoLog struct {
	mu      sync.Mutex
	calls   []geoCall
	dropped int
}

// logCall records c in the store's log unless the operation it serves is
// left out of the History (lab.WithOpRecording: a load's unchecked SKUs
// and its reads past the sample), as the History leaves it out: the geo
// checker then judges the same operations the History holds, and a
// ten-minute load does not fill the log with calls nobody will check.
func (s *geoStore) logCall(ctx context.Context, c geoCall) {
	if opRecordingOf(ctx).SkipHistory {
		return
	}
	s.log.add(c)
}

func (g *geoLog) add(c geoCall) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.calls) >= MaxHistoryOperations {
		g.dropped++
		return
	}
	g.calls = append(g.calls, c)
}

func (g *geoLog) snapshot(sku string) []geoCall {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []geoCall
	for _, c := range g.calls {
		if sku == "" || c.SKU == sku {
			out = append(out, c)
		}
	}
	return out
}

func (g *geoLog) clear() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls, g.dropped = nil, 0
}

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
			c := o.Input.(geoCall)
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
		s, c := state.(int), input.(geoCall)
		apply := func() (int, bool) {
			if c.Kind == geoSet {
				return c.Set, true
			}
			return s + c.Delta, s+c.Delta >= 0
		}
		switch {
		case c.Kind == geoRead:
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
		c := input.(geoCall)
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s", c.Region, c.Kind)
		switch {
		case c.Kind == geoSet:
			fmt.Fprintf(&b, " %d", c.Set)
		case c.Kind != geoRead:
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
func geoPorcupine(calls []geoCall) []porcupine.Operation {
	if len(calls) == 0 {
		return nil
	}
	calls = slices.Clone(calls)
	slices.SortStableFunc(calls, func(a, b geoCall) int { return a.Call.Compare(b.Call) })
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

// checkGeo judges every (sku, region) allocation history separately.
func checkGeo(calls []geoCall, regions []string, timeout time.Duration) (GeoLinearizability, porcupine.LinearizationInfo) {
	res := GeoLinearizability{Linearizable: true, Regions: map[string]bool{}, Calls: len(calls)}
	model := geoModel.ToModel()
	var info porcupine.LinearizationInfo
	for _, r := range regions {
		var mine []geoCall
		for _, c := range calls {
			if c.Region == r {
				mine = append(mine, c)
			}
		}
		out, inf := porcupine.CheckOperationsVerbose(model, geoPorcupine(mine), timeout)
		if r == regions[0] || out != porcupine.Ok {
			info = inf
		}
		res.Regions[r] = out == porcupine.Ok
		if out != porcupine.Ok {
			res.Linearizable = false
			res.TimedOut = res.TimedOut || out == porcupine.Unknown
		}
	}
	return res, info
}

// visualizeGeo draws the allocation histories of one SKU (one partition
// per region).
func visualizeGeo(calls []geoCall, w io.Writer) error {
	model := geoModel.ToModel()
	slices.SortStableFunc(calls, func(a, b geoCall) int { return cmp.Compare(a.Region, b.Region) })
	_, info := porcupine.CheckOperationsVerbose(model, geoPorcupine(calls), CheckTimeout)
	return porcupine.Visualize(model, info, w)
}
