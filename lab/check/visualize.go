package check

import (
	"fmt"
	"io"
	"time"

	"github.com/anishathalye/porcupine"

	"caplab/lab/inventory"
)

// Visualize writes the checker's view of one store's history on one SKU
// ("" = every SKU) as one self-contained HTML page: each operation on a
// timeline, the order of events the checker found (or how far it got),
// the answer it could not place, and the operations left out of the check
// as annotations.
func Visualize(ops []inventory.Operation, store inventory.Store, sku string, w io.Writer) error {
	return visualize(ops, nil, store, sku, w)
}

// visualize is Visualize with the history cut at gaps (cut.go): what the
// picture shows is what the verdict judged.
func visualize(ops []inventory.Operation, gaps []inventory.RecordingGap, store inventory.Store, sku string, w io.Writer) error {
	var mine []inventory.Operation
	for _, op := range ops {
		if op.Store == store && (sku == "" || op.SKU == sku) {
			mine = append(mine, op)
		}
	}
	judged, cuts, _ := cutOperations(mine, store, gaps)
	kept := map[int]bool{}
	for _, op := range judged {
		kept[op.ID] = true
	}
	answered := map[int]inventory.Kind{}
	for _, op := range mine {
		answered[op.ID] = op.Outcome
	}
	in, left, origin := prepareCheck(judged, store, sku)
	model := inventoryModel(rankIndeterminate(in))
	pops := toPorcupine(in)
	for i, c := range in {
		if answered[c.op.ID] == inventory.OK && c.op.Outcome == inventory.Unavailable {
			pops[i].Metadata = fmt.Sprintf("operation %d, %s store; answered ok, but it was in flight when writes on %s went unrecorded: judged as may-have-applied", c.op.ID, c.op.Store, c.op.SKU)
		}
	}
	res, info := porcupine.CheckOperationsVerbose(model, pops, VisualizeTimeout)
	at := func(t time.Time) int64 { return max(0, t.Sub(origin).Nanoseconds()) }
	var notes []porcupine.Annotation
	for _, op := range left {
		why := "it did not apply"
		if op.Op == inventory.OpRead && op.Outcome == inventory.OK {
			why = string(op.Consistency) + " reads may return an old count by contract" // serializable or cached
		}
		notes = append(notes, porcupine.Annotation{
			Tag:         "not checked",
			Start:       at(op.Call),
			End:         max(at(op.Call), at(op.Return)),
			Description: describeLeftOut(op),
			Details:     fmt.Sprintf("operation %d: left out of the check because %s", op.ID, why),
		})
	}
	if len(in) > 0 {
		for _, op := range mine {
			if kept[op.ID] {
				continue
			}
			notes = append(notes, porcupine.Annotation{
				Tag:         "not judged",
				Start:       at(op.Call),
				End:         max(at(op.Call), at(op.Return)),
				Description: describeLeftOut(op),
				Details:     fmt.Sprintf("operation %d: recorded after writes on %s went unrecorded, so no order of events can be judged for it", op.ID, op.SKU),
			})
		}
		for _, c := range cuts {
			end := "on"
			if !c.Resumed.IsZero() {
				end = fmt.Sprintf("until the restock judging resumed at (+%.1f s)", c.Resumed.Sub(c.At).Seconds())
			}
			notes = append(notes, porcupine.Annotation{
				Tag:             "unrecorded writes",
				Start:           at(c.At),
				End:             max(at(c.At), at(c.Resumed)),
				Description:     fmt.Sprintf("%s: %d unrecorded %s", c.SKU, c.Writes, checkPlural(c.Writes, "write", "writes")),
				Details:         fmt.Sprintf("From here %s, writes on %s were not recorded (%s): the checker judges none of its recorded answers in that stretch.", end, c.SKU, c.Reason),
				BackgroundColor: "#fde2b8",
			})
		}
	}
	if res == porcupine.Illegal {
		if u := unplacedOp(in, pops, model, info, sku); u != nil {
			notes = append(notes, porcupine.Annotation{
				ClientId:        u.client,
				Start:           u.call,
				End:             u.ret,
				Description:     "could not be placed",
				Details:         u.Sentence,
				BackgroundColor: "#f7b7b7",
			})
		}
	}
	info.AddAnnotations(notes)
	if err := porcupine.Visualize(model, info, w); err != nil {
		return fmt.Errorf("lab: visualize %s history of %q: %w", store, sku, err)
	}
	return nil
}

func describeLeftOut(op inventory.Operation) string {
	s := op.Region + " " + string(op.Op)
	if op.Op != inventory.OpRead {
		s += fmt.Sprintf(" %d", op.Qty)
	} else if op.Consistency != "" {
		s += " (" + string(op.Consistency) + ")"
	}
	if op.Op == inventory.OpRead && op.Outcome == inventory.OK {
		return s + fmt.Sprintf(" → %d", op.Quantity)
	}
	return s + " → " + string(op.Outcome)
}
