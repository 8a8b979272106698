package check

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/anishathalye/porcupine"

	"caplab/lab/inventory"
)

// Explanations from evidence. When the linearizability search fails, it
// has found a longest order of events that explains a prefix of the
// history (porcupine's partial linearizations). The answer it could not
// add is the unplaced operation with the earliest return: everything the
// search could try before that return it tried. Replaying the model along
// the longest orders gives the counts the answers before it allow, and
// the answer against those counts says what went wrong, in numbers a
// learner can check. Pure functions over the search's result.

// Anomaly names what an unplaced answer shows.
type Anomaly string

const (
	// AnomalyVanished: a count lower than the answers before it allow —
	// units sold by an operation the history does not hold, or counted
	// twice.
	AnomalyVanished Anomaly = "vanished"
	// AnomalyDoubleSale: a sale when the answers before it leave too few
	// units: the same unit sold twice.
	AnomalyDoubleSale Anomaly = "double-sale"
	// AnomalyLostUpdate: a count higher than the answers before it allow
	// after a buy: it wrote over another buy's sale.
	AnomalyLostUpdate Anomaly = "lost-update"
	// AnomalyStaleRead: a linearizable read returned a count from before
	// writes that had finished.
	AnomalyStaleRead Anomaly = "stale-read"
	// AnomalySoldOutInStock: "sold out" while the answers before it leave
	// enough units.
	AnomalySoldOutInStock Anomaly = "sold-out-in-stock"
	// AnomalyOrder: the count alone fits, but no order of the operations
	// it overlaps does.
	AnomalyOrder Anomaly = "order"
)

// Unplaced is the answer the checker could not place in any order of
// events, with what the answers before it allow.
type Unplaced struct {
	SKU string `json:"sku"`
	// ID is the lab's operation ID (0 for a call of the geo store's log).
	ID       int            `json:"id,omitempty"`
	Region   string         `json:"region"`
	Op       string         `json:"op"` // stock, buy, read; for a geo call its kind
	Qty      int            `json:"qty,omitempty"`
	Outcome  inventory.Kind `json:"outcome,omitempty"`
	Answered int            `json:"answered"` // buy: units left after it; read: the count read
	// CountMin and CountMax bound the count just before it that the
	// longest orders explaining the answers before it leave.
	CountMin int `json:"countMin"`
	CountMax int `json:"countMax"`
	// Placed is how many answers those orders explain.
	Placed   int     `json:"placed"`
	Anomaly  Anomaly `json:"anomaly"`
	Units    int     `json:"units,omitempty"` // units that vanished, or reappeared
	Sentence string  `json:"sentence"`

	// Where it sits in the search's input (for the visualisation).
	client    int
	call, ret int64
}

// partitionIndices groups ops the way key partitions them (first
// appearance order, input order within), as indices into ops.
func partitionIndices(ops []porcupine.Operation, key func(porcupine.Operation) string) [][]int {
	at := map[string]int{}
	var parts [][]int
	for i, o := range ops {
		k := key(o)
		p, ok := at[k]
		if !ok {
			p = len(parts)
			at[k] = p
			parts = append(parts, nil)
		}
		parts[p] = append(parts[p], i)
	}
	return parts
}

// stuck is one longest order of a partition that failed: the operation
// after it that could not be placed (index into the search's input), the
// state the order leaves, and the states along it.
type stuck struct {
	blocked int
	placed  int
	state   any
	along   []any
}

// findStuck returns, for the first partition the search could not
// linearize, its longest orders with the operation each could not place;
// nil when every partition was linearized (or info holds nothing).
func findStuck(ops []porcupine.Operation, parts [][]int, model porcupine.Model, info porcupine.LinearizationInfo, less func(a, b int) int) []stuck {
	partials := info.PartialLinearizations()
	if len(partials) != len(parts) {
		return nil
	}
	for p, part := range parts {
		longest := 0
		for _, l := range partials[p] {
			longest = max(longest, len(l))
		}
		if longest >= len(part) {
			continue
		}
		var out []stuck
		for _, l := range partials[p] {
			if len(l) != longest {
				continue
			}
			in := make([]bool, len(part))
			st := stuck{blocked: -1, placed: len(l), state: model.Init()}
			st.along = append(st.along, st.state)
			for _, id := range l {
				in[id] = true
				_, st.state = model.Step(st.state, ops[part[id]].Input, ops[part[id]].Output)
				st.along = append(st.along, st.state)
			}
			for id, i := range part {
				if !in[id] && (st.blocked < 0 || less(i, st.blocked) < 0) {
					st.blocked = i
				}
			}
			out = append(out, st)
		}
		return out
	}
	return nil
}

// unplacedOp finds the answer the inventory model's search could not
// place, for in (the checked operations) and pops (their porcupine form).
func unplacedOp(in []checkedOp, pops []porcupine.Operation, model porcupine.Model, info porcupine.LinearizationInfo, sku string) *Unplaced {
	parts := partitionIndices(pops, func(o porcupine.Operation) string { return o.Input.(checkInput).SKU })
	byReturn := func(a, b int) int {
		return cmp.Or(cmp.Compare(pops[a].Return, pops[b].Return), cmp.Compare(pops[a].Call, pops[b].Call), cmp.Compare(in[a].op.ID, in[b].op.ID))
	}
	stucks := findStuck(pops, parts, model, info, byReturn)
	if len(stucks) == 0 {
		return nil
	}
	x := stucks[0].blocked
	for _, s := range stucks[1:] {
		if byReturn(s.blocked, x) < 0 {
			x = s.blocked
		}
	}
	op := in[x].op
	u := &Unplaced{SKU: op.SKU, ID: op.ID, Region: op.Region, Op: string(op.Op), Qty: op.Qty, Outcome: op.Outcome,
		Answered: op.Quantity, client: in[x].client, call: in[x].call, ret: in[x].ret}
	if in[x].indefinitely {
		u.Outcome = inventory.Unavailable
	}
	first, earlier := true, map[int]bool{}
	for _, s := range stucks {
		if s.blocked != x {
			continue
		}
		q := s.state.(checkState).quantity
		if first || q < u.CountMin {
			u.CountMin = q
		}
		if first || q > u.CountMax {
			u.CountMax = q
		}
		first = false
		u.Placed = max(u.Placed, s.placed)
		for _, a := range s.along[:len(s.along)-1] {
			earlier[a.(checkState).quantity] = true
		}
	}
	describeUnplaced(u, earlier)
	if sku == "" {
		describeUnplacedOf(u, op.SKU)
	}
	return u
}

// describeUnplacedOf names u's SKU in its sentence, for a verdict over
// every SKU.
func describeUnplacedOf(u *Unplaced, sku string) { u.Sentence = sku + ": " + u.Sentence }

// describeUnplaced classifies u and writes its sentence; earlier holds
// the counts the longest orders passed through before it.
func describeUnplaced(u *Unplaced, earlier map[int]bool) {
	who := fmt.Sprintf("%s's %s (#%d)", u.Region, u.Op, u.ID)
	lo, hi, n, q := u.CountMin, u.CountMax, u.Qty, u.Answered
	leave := func() string { // "leave 5 in stock" / "leave 5 to 7 in stock"
		if lo == hi {
			return thousands(lo)
		}
		return thousands(lo) + " to " + thousands(hi)
	}
	switch {
	case u.Outcome == inventory.Unavailable:
		u.Anomaly = AnomalyOrder
		u.Sentence = fmt.Sprintf("%s, which may or may not have applied, fits no order of the answers around it.", who)
	case u.Op == string(inventory.OpBuy) && u.Outcome == inventory.OK && hi < n:
		u.Anomaly, u.Units = AnomalyDoubleSale, n-hi
		stock := "none"
		if hi > 0 {
			stock = "only " + thousands(hi)
		}
		what := "a unit that was not there"
		if n-hi > 1 {
			what = thousands(n-hi) + " units that were not there"
		}
		u.Sentence = fmt.Sprintf("%s sold %s, but the answers before it leave %s in stock: it sold %s — the same unit sold twice.",
			who, unitsPhrase(n), stock, what)
	case u.Op == string(inventory.OpBuy) && u.Outcome == inventory.OK && q < lo-n:
		u.Anomaly, u.Units = AnomalyVanished, lo-n-q
		should := thousands(lo - n)
		if lo != hi {
			should = "at least " + should
		}
		u.Sentence = fmt.Sprintf("%s answered %s left, but the answers before it leave %s in stock, so it should have left %s: %s vanished between them — sold by an operation the history does not hold, or counted twice.",
			who, thousands(q), leave(), should, unitsPhrase(lo-n-q))
	case u.Op == string(inventory.OpBuy) && u.Outcome == inventory.OK && q > hi-n:
		u.Anomaly, u.Units = AnomalyLostUpdate, q-(hi-n)
		should := thousands(hi - n)
		if lo != hi {
			should = "at most " + should
		}
		u.Sentence = fmt.Sprintf("%s answered %s left, but the answers before it leave %s in stock, so it should have left %s: its count is %s too high — it wrote over another buy's sale (a lost update).",
			who, thousands(q), leave(), should, unitsPhrase(q-(hi-n)))
	case u.Op == string(inventory.OpBuy) && u.Outcome == inventory.SoldOut && lo >= n:
		u.Anomaly = AnomalySoldOutInStock
		u.Sentence = fmt.Sprintf("%s answered sold out, but the answers before it leave %s in stock.", who, leave())
	case u.Op == string(inventory.OpRead) && (q < lo || q > hi) && earlier[q]:
		u.Anomaly = AnomalyStaleRead
		u.Sentence = fmt.Sprintf("%s, a linearizable read, returned %s, a count from before writes that had already finished (the answers before it leave %s in stock) — a stale read.",
			who, thousands(q), leave())
	case u.Op == string(inventory.OpRead) && q < lo:
		u.Anomaly, u.Units = AnomalyVanished, lo-q
		u.Sentence = fmt.Sprintf("%s returned %s, but the answers before it leave %s in stock: %s vanished — sold by an operation the history does not hold.",
			who, thousands(q), leave(), unitsPhrase(lo-q))
	case u.Op == string(inventory.OpRead) && q > hi:
		u.Anomaly, u.Units = AnomalyLostUpdate, q-hi
		u.Sentence = fmt.Sprintf("%s returned %s, more than the %s the answers before it leave in stock: a sale was overwritten (a lost update).",
			who, thousands(q), leave())
	default:
		u.Anomaly = AnomalyOrder
		u.Sentence = fmt.Sprintf("%s answered %s, a count the answers before it allow (%s in stock), but in no order that also fits the operations it overlaps.",
			who, answerPhrase(u), leave())
	}
}

func answerPhrase(u *Unplaced) string {
	switch {
	case u.Outcome == inventory.SoldOut:
		return "sold out"
	case u.Op == string(inventory.OpBuy):
		return thousands(u.Answered) + " left"
	}
	return thousands(u.Answered)
}

// unitsPhrase: "one unit", "3 units".
func unitsPhrase(n int) string {
	if n == 1 {
		return "one unit"
	}
	return thousands(n) + " units"
}

// unplacedGeoCall finds the geo call the per-allocation search could not
// place in calls (one region's, any SKUs), as geoPorcupine ordered them.
func unplacedGeoCall(pops []porcupine.Operation, info porcupine.LinearizationInfo) *Unplaced {
	model := geoModel.ToModel()
	parts := partitionIndices(pops, func(o porcupine.Operation) string {
		c := o.Input.(inventory.GeoCall)
		return c.SKU + "@" + c.Region
	})
	byReturn := func(a, b int) int {
		return cmp.Or(cmp.Compare(pops[a].Return, pops[b].Return), cmp.Compare(pops[a].Call, pops[b].Call))
	}
	stucks := findStuck(pops, parts, model, info, byReturn)
	if len(stucks) == 0 {
		return nil
	}
	slices.SortStableFunc(stucks, func(a, b stuck) int { return byReturn(a.blocked, b.blocked) })
	x := stucks[0].blocked
	c := pops[x].Input.(inventory.GeoCall)
	u := &Unplaced{SKU: c.SKU, Region: c.Region, Op: string(c.Kind), Qty: c.Delta, Answered: c.Left, client: pops[x].ClientId, call: pops[x].Call, ret: pops[x].Return}
	first := true
	for _, s := range stucks {
		if s.blocked != x {
			continue
		}
		u.Placed = max(u.Placed, s.placed)
		for _, v := range s.state.([]any) {
			a := v.(int)
			if first || a < u.CountMin {
				u.CountMin = a
			}
			if first || a > u.CountMax {
				u.CountMax = a
			}
			first = false
		}
	}
	allows := thousands(u.CountMin)
	if u.CountMin != u.CountMax {
		allows += " to " + thousands(u.CountMax)
	}
	what := fmt.Sprintf("a %s call (%+d)", c.Kind, c.Delta)
	switch c.Kind {
	case inventory.GeoRead:
		what = "a read"
	case inventory.GeoSet:
		what = fmt.Sprintf("a set to %d", c.Set)
	}
	switch want := u.CountMin + c.Delta; {
	case c.Kind != inventory.GeoRead && c.Kind != inventory.GeoSet && c.Left < want && u.CountMin == u.CountMax:
		u.Anomaly, u.Units = AnomalyVanished, want-c.Left
		u.Sentence = fmt.Sprintf("In %s's allocation of %s, %s answered %s left, but the calls before it leave %s, so it should have left %s: %s vanished.",
			c.Region, c.SKU, what, thousands(c.Left), allows, thousands(want), unitsPhrase(want-c.Left))
	case c.Kind != inventory.GeoRead && c.Kind != inventory.GeoSet && c.Delta < 0 && u.CountMax+c.Delta < 0:
		u.Anomaly, u.Units = AnomalyDoubleSale, -(u.CountMax + c.Delta)
		u.Sentence = fmt.Sprintf("In %s's allocation of %s, %s took %s, but the calls before it leave %s: it took units that were not there.",
			c.Region, c.SKU, what, unitsPhrase(-c.Delta), allows)
	default:
		u.Anomaly = AnomalyOrder
		u.Sentence = fmt.Sprintf("In %s's allocation of %s, %s answered %s, but the calls before it leave %s.",
			c.Region, c.SKU, what, thousands(c.Left), allows)
	}
	return u
}
