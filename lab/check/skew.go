package check

import (
	"fmt"
	"math"
	"time"

	"caplab/lab/inventory"
)

// skewBlame is how far from real time a version's wall stamp must be
// before the checker's explanation blames the clock.
const skewBlame = 500 * time.Millisecond

// explainSkew adds to a replicated store's verdict why its lost updates
// went the way they did, when the version that stands carries a stamp from
// a clock running ahead: last-writer-wins then keeps it over writes made
// later in real time. It reads only the history (the version's wall stamp
// against the time its write returned).
func explainSkew(r Result, ops []inventory.Operation) Result {
	if r.Store != inventory.Replicated || r.LostUpdates == 0 {
		return r
	}
	var win *inventory.Operation
	for i := range ops {
		op := &ops[i]
		if op.Outcome != inventory.OK || (op.Op != inventory.OpBuy && op.Op != inventory.OpStock) || op.Version.IsZero() {
			continue
		}
		if win == nil || win.Version.Less(op.Version) {
			win = op
		}
	}
	if win == nil {
		return r
	}
	ahead := time.Duration(win.Version.Wall-win.Return.UnixMilli()) * time.Millisecond
	if ahead < skewBlame {
		return r
	}
	later := 0
	for _, op := range ops {
		if op.Outcome == inventory.OK && (op.Op == inventory.OpBuy || op.Op == inventory.OpStock) && op.SKU == win.SKU && op.Call.After(win.Return) {
			later++
		}
	}
	r.Explanation += fmt.Sprintf(" Why this value stands: its version was stamped by %s's clock, running %.1f s ahead of real time, so last-writer-wins kept it over %d write(s) made later in real time.",
		win.Region, math.Round(ahead.Seconds()*10)/10, later)
	return r
}
