package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"caplab/lab/check"
	"caplab/lab/inventory"
)

// Exports of the history, for checkers outside the lab.
//
//   - jsonl: the audit records themselves, one JSON object a line
//     (Record), every store, operation, fault, reset and start —
//     and what the verdicts are computed from besides operations: the
//     recording gaps (type "gap": writes on a SKU went unrecorded from
//     then on; the last record of a gap ID stands) and the geo store's
//     call log (type "geo_call"). "caplab history check" (ReadHistory,
//     Judge) reproduces the lab's verdicts from it.
//   - porcupine: porcupine's operation log for one store — the
//     porcupine.Operation values the lab's own checker judges (the same
//     operations, cut at the gaps, client ids and nanosecond times since
//     the first call), one JSON object a line:
//     {"clientId","input","call","output","return"}. For the geo store,
//     the judged calls of its log (check.PorcupineGeoCall), one partition per
//     (SKU, region) allocation.
//   - edn: a Jepsen history for one store, one EDN map a line in time
//     order, as Jepsen writes history.edn: {:type :invoke, :f :buy, :value
//     ["SKU" 1], :process 3, :time 1234, :index 0} and its completion
//     (:ok, :fail or :info), with faults and gaps as :nemesis :info pairs
//     (:f :unrecorded-writes), cut at the gaps like porcupine's (an
//     operation in flight at a gap that applied completes :info), and for
//     the geo store its calls (:f :allocation-buy, …, :value ["SKU"
//     ["region" delta left]]). Knossos and Elle read it (wrap the lines in
//     [ ] for a vector).
//
// porcupine and edn cover one store (default consensus) since the last
// reset — the window the lab's own checker judges; a reset empties the
// stores, so a history across it is no single object's.

// Format names an export format.
type Format string

const (
	FormatJSONL     Format = "jsonl"
	FormatPorcupine Format = "porcupine"
	FormatEDN       Format = "edn"
)

// Formats lists the formats.
var Formats = []Format{FormatJSONL, FormatPorcupine, FormatEDN}

// ParseFormat checks a format name; "" is jsonl.
func ParseFormat(s string) (Format, error) {
	if s == "" {
		return FormatJSONL, nil
	}
	if f := Format(s); slices.Contains(Formats, f) {
		return f, nil
	}
	return "", fmt.Errorf("%w: format %s is not one the lab writes (formats: jsonl, porcupine, edn)", inventory.ErrBadInput, inventory.Echo(s))
}

// Filter narrows an export. Store applies to porcupine and edn
// (default consensus) and, when set, to jsonl operations; SKU ("" = every
// SKU) to operations.
type Filter struct {
	Store inventory.Store
	SKU   string
}

func (f Filter) Check() error {
	if f.Store != "" {
		if _, err := inventory.ParseStore(string(f.Store)); err != nil {
			return err
		}
	}
	if f.SKU != "" {
		return inventory.CheckSKU(f.SKU)
	}
	return nil
}

func (f Filter) keeps(r Record) bool {
	switch {
	case r.Operation != nil:
		return (f.Store == "" || r.Operation.Store == f.Store) && (f.SKU == "" || r.Operation.SKU == f.SKU)
	case r.Gap != nil:
		return (f.Store == "" || r.Gap.Store == f.Store) && (f.SKU == "" || r.Gap.SKU == f.SKU || r.Gap.SKU == "")
	case r.GeoCall != nil:
		return (f.Store == "" || f.Store == inventory.Geo) && (f.SKU == "" || r.GeoCall.SKU == f.SKU)
	}
	return true
}

// Export writes the audit log in dir in format.
func Export(dir string, w io.Writer, format Format, f Filter) error {
	if err := f.Check(); err != nil {
		return err
	}
	return Write(w, format, f, func(fn func(Record) error) error { return Read(dir, fn) })
}

func Write(w io.Writer, format Format, f Filter, each func(func(Record) error) error) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var err error
	switch format {
	case FormatJSONL:
		enc := json.NewEncoder(bw)
		err = each(func(r Record) error {
			if !f.keeps(r) {
				return nil
			}
			return enc.Encode(r)
		})
	case FormatPorcupine, FormatEDN:
		if f.Store == "" {
			f.Store = inventory.Consensus
		}
		h := &HistoryFile{}
		err = each(func(r Record) error {
			if r.Fault != nil || r.Type == RecordReset || f.keeps(r) {
				h.add(r)
			}
			return nil
		})
		rec := h.Recorded(f.Store, f.SKU)
		switch {
		case err != nil:
		case format == FormatPorcupine && f.Store == inventory.Geo:
			err = writePorcupineGeo(bw, rec)
		case format == FormatPorcupine:
			err = writePorcupine(bw, rec, f)
		default:
			err = writeEDN(bw, rec, f.Store, h.Faults)
		}
	default:
		_, err = ParseFormat(string(format))
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// writePorcupineGeo writes the geo store's judged calls.
func writePorcupineGeo(w io.Writer, rec check.Recorded) error {
	enc := json.NewEncoder(w)
	for _, line := range check.PorcupineGeo(rec) {
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return nil
}

// writePorcupine writes the operations Judge judges: cut at the gaps,
// those that enter the check.
func writePorcupine(w io.Writer, rec check.Recorded, f Filter) error {
	enc := json.NewEncoder(w)
	for _, line := range check.Porcupine(rec, f.Store, f.SKU) {
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return nil
}
