package check

import (
	"cmp"
	"slices"

	"github.com/anishathalye/porcupine"

	"caplab/lab/inventory"
)

// PorcupineInput and PorcupineOutput are the Input and Output of one
// operation of a porcupine export: what the lab's inventory model reads.
// Class and Rank group indeterminate operations (see Operations).
type PorcupineInput struct {
	SKU    string       `json:"sku"`
	Region string       `json:"region"`
	Op     inventory.Op `json:"op"`
	Qty    int          `json:"qty"`
	Class  int          `json:"class,omitempty"`
	Rank   int          `json:"rank,omitempty"`
}

// PorcupineOutput: Unknown marks an operation answered unavailable (it may
// or may not have applied; its Return is after every other event).
type PorcupineOutput struct {
	Outcome  inventory.Kind `json:"outcome"`
	Unknown  bool           `json:"unknown,omitempty"`
	Quantity int            `json:"quantity"`
}

// PorcupineOperation is one line of a porcupine export, field for field
// porcupine.Operation.
type PorcupineOperation struct {
	ClientID int             `json:"clientId"`
	Input    PorcupineInput  `json:"input"`
	Call     int64           `json:"call"`
	Output   PorcupineOutput `json:"output"`
	Return   int64           `json:"return"`
	ID       int             `json:"id"` // the lab's operation ID
}

// PorcupineGeoCall is one line of a geo store's porcupine export: a call
// of its log, as the per-allocation model (geoModel) reads it — Input is
// the call (its times are the line's call and return), Output is unused.
type PorcupineGeoCall struct {
	ClientID int            `json:"clientId"`
	Input    PorcupineGeoIn `json:"input"`
	Call     int64          `json:"call"`
	Output   struct{}       `json:"output"`
	Return   int64          `json:"return"`
}

// PorcupineGeoIn is a geo call without its times.
type PorcupineGeoIn struct {
	SKU     string                `json:"sku"`
	Region  string                `json:"region"`
	Kind    inventory.GeoCallKind `json:"kind"`
	Delta   int                   `json:"delta,omitempty"`
	Set     int                   `json:"set,omitempty"`
	Left    int                   `json:"left"`
	Unknown bool                  `json:"unknown,omitempty"`
}

// Porcupine is the operations Judge judges of one store's SKU ("" = every
// SKU) as porcupine reads them: cut at the recording gaps, those that
// enter the check, with indeterminate ones ranked.
func Porcupine(rec Recorded, store inventory.Store, sku string) []PorcupineOperation {
	ops, _, _ := cutOperations(rec.Operations, store, rec.Gaps)
	in, _, _ := prepareCheck(ops, store, sku)
	rankIndeterminate(in)
	pops := toPorcupine(in)
	out := make([]PorcupineOperation, len(pops))
	for i, p := range pops {
		ci, co := p.Input.(checkInput), p.Output.(checkOutput)
		out[i] = PorcupineOperation{
			ClientID: p.ClientId, Call: p.Call, Return: p.Return,
			Input:  PorcupineInput(ci),
			Output: PorcupineOutput{Outcome: co.Kind, Unknown: co.Unknown, Quantity: co.Quantity},
			ID:     in[i].op.ID,
		}
	}
	return out
}

// PorcupineGeo is the geo store's judged calls as porcupine reads them
// (per allocation), in region order.
func PorcupineGeo(rec Recorded) []PorcupineGeoCall {
	calls := JudgedGeoCalls(rec)
	slices.SortStableFunc(calls, func(a, b inventory.GeoCall) int { return cmp.Compare(a.Region, b.Region) })
	pops := geoPorcupine(calls)
	out := make([]PorcupineGeoCall, len(pops))
	for i, p := range pops {
		c := p.Input.(inventory.GeoCall)
		out[i] = PorcupineGeoCall{ClientID: p.ClientId, Call: p.Call, Return: p.Return,
			Input: PorcupineGeoIn{SKU: c.SKU, Region: c.Region, Kind: c.Kind, Delta: c.Delta, Set: c.Set, Left: c.Left, Unknown: c.Unknown}}
	}
	return out
}

// JudgedOperations is the operations of store that Judge judges: those
// the recording gaps do not cut.
func JudgedOperations(rec Recorded, store inventory.Store) []inventory.Operation {
	ops, _, _ := cutOperations(rec.Operations, store, rec.Gaps)
	return ops
}

// JudgedGeoCalls is the geo calls Judge judges: those the recording gaps
// do not cut.
func JudgedGeoCalls(rec Recorded) []inventory.GeoCall {
	calls, _ := cutGeoCalls(rec.GeoCalls, rec.Gaps)
	return calls
}

// PorcupineLinearizable re-judges an exported porcupine log (Porcupine's
// lines, read back) with the inventory model: whether one order of events
// explains every answer.
func PorcupineLinearizable(ops []PorcupineOperation) bool {
	classes := 0
	pops := make([]porcupine.Operation, len(ops))
	for i, o := range ops {
		if o.Output.Unknown {
			classes = max(classes, o.Input.Class+1)
		}
		pops[i] = porcupine.Operation{ClientId: o.ClientID, Call: o.Call, Return: o.Return,
			Input:  checkInput(o.Input),
			Output: checkOutput{Kind: o.Output.Outcome, Unknown: o.Output.Unknown, Quantity: o.Output.Quantity}}
	}
	return porcupine.CheckOperations(inventoryModel(classes), pops)
}
