package check

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"caplab/lab/inventory"
)

// Recorded is everything a verdict is computed from — nothing live: the
// recorded operations, the gaps in the record (history.Gaps), and the geo
// store's call log. The lab's Check and "caplab history check" (a history
// read back from an export) hand the same Recorded to Judge and get the
// same verdict.
type Recorded struct {
	Operations []inventory.Operation
	Gaps       []inventory.RecordingGap
	GeoCalls   []inventory.GeoCall
	// Regions whose geo allocations are judged; empty: the regions the
	// calls name.
	Regions []string
	// Dropped counts operations the History did not keep past its cap
	// (Result.Unjudged).
	Dropped int
}

// Judge is the checker's verdict on one store's SKU ("" = every SKU, each
// on its own) from recorded data alone: the history is cut at its gaps
// (cut.go), judged segment by segment (segments.go) with porcupine, and
// explained from the evidence (evidence.go). The geo store's verdict is
// its allocation histories' (geo.go). A timeout of 0 means no limit.
func Judge(rec Recorded, store inventory.Store, sku string, timeout time.Duration) Result {
	return judge(rec, store, sku, timeout, &Memo{})
}

// Judge is the package's Judge, remembering the verdicts of segments that
// no longer change in m.
func (m *Memo) Judge(rec Recorded, store inventory.Store, sku string, timeout time.Duration) Result {
	return judge(rec, store, sku, timeout, m)
}

func judge(rec Recorded, store inventory.Store, sku string, timeout time.Duration, memo *Memo) Result {
	var ops []inventory.Operation
	for i := range rec.Operations {
		op := &rec.Operations[i]
		if op.Store == store && (sku == "" || op.SKU == sku) && Relevant(op) {
			ops = append(ops, *op)
		}
	}
	gaps := rec.Gaps
	if sku != "" {
		gaps = gapsFor(gaps, store, sku)
	}
	judged, cuts, leftOut := cutOperations(ops, store, gaps)
	r := checkSegmented(judged, store, sku, timeout, memo)
	r.Cuts, r.NotJudged = cuts, leftOut
	if store == inventory.Geo {
		judgeGeo(&r, rec, sku, timeout)
	} else {
		r.Explanation = explainCheck(r)
		if !r.Linearizable && !r.TimedOut {
			r.Counterexample = SmallestCounterexample(judged, sku, r.Unplaced)
		}
	}
	noteCap(&r, rec.Dropped)
	return explainSkew(r, judged)
}

// judgeGeo replaces the single-register verdict with the per-region one
// of the geo store's call log, cut at the same gaps.
func judgeGeo(r *Result, rec Recorded, sku string, timeout time.Duration) {
	var calls []inventory.GeoCall
	for _, c := range rec.GeoCalls {
		if sku == "" || c.SKU == sku {
			calls = append(calls, c)
		}
	}
	calls, _ = cutGeoCalls(calls, rec.Gaps)
	regions := rec.Regions
	if len(regions) == 0 {
		for _, c := range calls {
			if !slices.Contains(regions, c.Region) {
				regions = append(regions, c.Region)
			}
		}
		slices.Sort(regions)
	}
	lin, unplaced := checkGeo(calls, regions, timeout)
	r.Geo = &GeoResult{GeoLinearizability: lin}
	r.Linearizable, r.TimedOut = lin.Linearizable, lin.TimedOut
	r.StaleReads, r.LostUpdates = 0, 0
	r.Unplaced = unplaced
	var bad []string
	for _, reg := range regions {
		if !lin.Regions[reg] {
			bad = append(bad, reg)
		}
	}
	switch {
	case len(bad) > 0:
		r.Explanation = fmt.Sprintf("The allocation history of %s is not linearizable.", strings.Join(bad, ", "))
		if unplaced != nil {
			r.Explanation += " " + unplaced.Sentence
		}
	default:
		r.Explanation = "Every region's allocation history is linearizable (each in its own Raft group)."
	}
	if r.Oversold > 0 {
		r.Explanation += fmt.Sprintf(" %d units oversold.", r.Oversold)
	}
	if c := explainCuts(*r); c != "" {
		r.Explanation += " " + c
	}
}

// VisualizeRecorded writes the checker's HTML view of one store's SKU from
// recorded data: what Judge judged, the answer it could not place, and
// what the cuts left out.
func VisualizeRecorded(rec Recorded, store inventory.Store, sku string, w io.Writer) error {
	if store == inventory.Geo {
		var calls []inventory.GeoCall
		for _, c := range rec.GeoCalls {
			if sku == "" || c.SKU == sku {
				calls = append(calls, c)
			}
		}
		calls, _ = cutGeoCalls(calls, rec.Gaps)
		return visualizeGeo(calls, w)
	}
	return visualize(rec.Operations, rec.Gaps, store, sku, w)
}
