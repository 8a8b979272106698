package lab

import (
	"io"
	"slices"

	"caplab/lab/check"
	"caplab/lab/history"
	"caplab/lab/inventory"
)

// records is what the lab records for its verdicts: the History, the geo
// store's call log and the recording gaps between them.
type records struct {
	history *history.History
	geoLog  *history.GeoLog
	gaps    *history.Gaps
	regions []string
}

// opRecord is what the lab decided at an operation's call about recording
// it: keep it in the History, or — a write left out (WithOpRecording, or
// past the History's cap) — note a recording gap before it can reach a
// store.
type opRecord struct {
	keep bool
	gap  bool
	tok  history.GapToken
}

// begin decides, at op's call (op.Call set, nothing sent yet),
// whether op will be recorded.
func (rs *records) begin(rec OpRecording, op inventory.Operation) opRecord {
	if !rec.SkipHistory && rs.history.Reserve() {
		rs.gaps.RecordedBegin(op.Store, op.SKU, op.Op, op.Call)
		return opRecord{keep: true}
	}
	if op.Op != inventory.OpStock && op.Op != inventory.OpBuy {
		return opRecord{} // a read changes nothing: leaving it out is harmless
	}
	why := inventory.GapSkipped
	if !rec.SkipHistory {
		why = inventory.GapHistoryFull
	}
	return opRecord{gap: true, tok: rs.gaps.Begin(op.Store, op.SKU, op.Call, why)}
}

// end records op as begin decided (with its answer and return
// time) and reports whether the History kept it; an operation dropped at
// the cap still gets an ID.
func (rs *records) end(r opRecord, rec OpRecording, op inventory.Operation) (inventory.Operation, bool) {
	if r.gap {
		wrote, mayLand := history.MayWrite(op)
		rs.gaps.End(r.tok, op.Return, wrote, mayLand)
	}
	switch {
	case r.keep:
		return rs.history.AddReserved(op)
	case !rec.SkipHistory:
		return rs.history.Drop(op), false
	}
	return op, false
}

// Recorded is what the lab recorded of one store's SKU ("" = every SKU)
// since the last reset: the input of its verdict. The History is read
// first, the gaps last, so that every gap a recorded answer could have
// seen is in it (gaps are noted before their writes are sent).
func (l *Lab) Recorded(store inventory.Store, sku string) check.Recorded {
	return l.records.of(store, sku, check.Relevant)
}

// of is what was recorded of store's SKU, of the operations keep keeps.
func (rs *records) of(store inventory.Store, sku string, keep func(*inventory.Operation) bool) check.Recorded {
	ops := rs.history.Select(store, sku, keep)
	dropped, _ := rs.history.Dropped()
	rec := check.Recorded{Operations: ops, Regions: slices.Clone(rs.regions), Dropped: dropped}
	if store == inventory.Geo {
		rec.GeoCalls = rs.geoLog.Calls(sku)
	}
	rec.Gaps = rs.gaps.Snapshot(store, sku)
	return rec
}

// Check runs the checker on one store and SKU ("" for every SKU): Judge on
// what the lab recorded. It judges each SKU's history in segments cut at
// restocks and remembers the verdicts of segments that no longer change
// (see segments.go), so a long history is judged in the time its newest
// segment takes. For the geo store it adds the live conservation audit of
// the regional groups (GeoCheck.Conservation), which reads the stores and
// so is no part of the verdict a recorded history reproduces.
func (l *Lab) Check(store inventory.Store, sku string) (check.Result, error) {
	if _, err := inventory.ParseStore(string(store)); err != nil {
		return check.Result{}, err
	}
	if sku != "" {
		if err := inventory.CheckSKU(sku); err != nil {
			return check.Result{}, err
		}
	}
	res := l.verdicts.Judge(l.Recorded(store, sku), store, sku, check.Timeout)
	if store == inventory.Geo {
		l.geoRoom.live(&res)
	}
	return res, nil
}

// Visualize writes the checker's HTML view of one store and SKU.
func (l *Lab) Visualize(store inventory.Store, sku string, w io.Writer) error {
	if _, err := inventory.ParseStore(string(store)); err != nil {
		return err
	}
	if err := inventory.CheckSKU(sku); err != nil {
		return err
	}
	all := func(*inventory.Operation) bool { return true } // the picture shows what was left out too
	return check.VisualizeRecorded(l.records.of(store, sku, all), store, sku, w)
}

// History returns the recorded operations (of one SKU, "" for all) and
// every fault.
func (l *Lab) History(sku string) history.View { return l.history.View(sku) }
