package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"caplab/lab/check"
	"caplab/lab/inventory"
)

// Histories read back from a file, for "caplab history check": JSON Lines
// as the lab exports them (its audit records: operations, faults, resets,
// gaps and geo calls) or porcupine's operation log (the lab's porcupine
// export, or another service's in that format). Judge then gives the
// verdict the lab gave on the same history.

// MaxHistoryLine bounds one line of a history file.
const MaxHistoryLine = 1 << 20

// HistoryFile is a history read from a file: what followed its last reset.
type HistoryFile struct {
	// Format is the file's: jsonl or porcupine.
	Format Format
	// Regions: the lab's, from the last start record (jsonl).
	Regions    []string
	Operations []inventory.Operation
	Faults     []inventory.Fault
	GeoCalls   []inventory.GeoCall
	// Dropped counts operations the lab's History did not keep (a memory
	// export past the cap says so).
	Dropped int

	gaps     map[gapID]inventory.RecordingGap
	gapOrder []gapID
	// runOpen: a run started (a start record) and has not stopped
	// cleanly (a stop record).
	runOpen  bool
	restarts int64
}

// gapID names a gap across a log's runs (IDs restart with every run).
type gapID struct {
	run string
	id  int64
}

// add takes one record in.
func (h *HistoryFile) add(r Record) {
	switch r.Type {
	case RecordStart:
		if h.runOpen {
			h.killed(r)
		}
		h.runOpen = true
		h.Regions = slices.Clone(r.Regions)
	case RecordStop:
		h.runOpen = false
	case RecordReset:
		h.Operations, h.Faults, h.GeoCalls, h.Dropped = nil, nil, nil, 0
		h.gaps, h.gapOrder = nil, nil
	case RecordDropped:
		h.Dropped = r.Dropped
	}
	switch {
	case r.Operation != nil:
		h.Operations = append(h.Operations, *r.Operation)
	case r.Fault != nil:
		h.Faults = append(h.Faults, *r.Fault)
	case r.GeoCall != nil:
		h.GeoCalls = append(h.GeoCalls, *r.GeoCall)
	case r.Gap != nil:
		if h.gaps == nil {
			h.gaps = map[gapID]inventory.RecordingGap{}
		}
		k := gapID{r.Run, r.Gap.ID}
		if _, ok := h.gaps[k]; !ok {
			h.gapOrder = append(h.gapOrder, k)
		}
		h.gaps[k] = *r.Gap // the latest record of a gap stands
	}
}

// killed notes that the run before start r ended without a stop record:
// the process was killed, and operations it had in flight then were
// never recorded — some may have applied, and recorded answers may show
// it. Nothing since the last reset is judged, per store, before the
// first clean restock after the restart (a store-wide gap from the
// earliest recorded call to the restart; cut.go).
func (h *HistoryFile) killed(r Record) {
	var from time.Time
	for _, op := range h.Operations {
		if from.IsZero() || op.Call.Before(from) {
			from = op.Call
		}
	}
	for _, c := range h.GeoCalls {
		if from.IsZero() || c.Call.Before(from) {
			from = c.Call
		}
	}
	if from.IsZero() || r.At.Before(from) {
		return // nothing recorded since the last reset: nothing to doubt
	}
	h.restarts++
	for i, s := range inventory.Stores {
		g := inventory.RecordingGap{ID: h.restarts*int64(len(inventory.Stores)) + int64(i), Store: s, Reason: inventory.GapResumed, From: from, To: r.At, Writes: 1}
		h.add(Record{Type: RecordGap, Run: "restart:" + r.Run, At: r.At, Gap: &g})
	}
}

// Gaps are the file's recording gaps (the latest record of each).
func (h *HistoryFile) Gaps() []inventory.RecordingGap {
	out := make([]inventory.RecordingGap, 0, len(h.gapOrder))
	for _, k := range h.gapOrder {
		out = append(out, h.gaps[k])
	}
	return out
}

// Recorded is what Judge needs for one store's SKU ("" = every SKU).
func (h *HistoryFile) Recorded(store inventory.Store, sku string) check.Recorded {
	rec := check.Recorded{Regions: h.Regions, Dropped: h.Dropped}
	for _, op := range h.Operations {
		if op.Store == store && (sku == "" || op.SKU == sku) {
			rec.Operations = append(rec.Operations, op)
		}
	}
	if store == inventory.Geo {
		for _, c := range h.GeoCalls {
			if sku == "" || c.SKU == sku {
				rec.GeoCalls = append(rec.GeoCalls, c)
			}
		}
	}
	for _, g := range h.Gaps() {
		if g.Store == store && (sku == "" || g.SKU == sku || g.SKU == "") {
			rec.Gaps = append(rec.Gaps, g)
		}
	}
	return rec
}

// Subjects lists the (store, SKU)s the file holds operations or geo calls
// of, stores in the lab's order, SKUs sorted.
func (h *HistoryFile) Subjects() []CheckSubject {
	seen := map[CheckSubject]bool{}
	for _, op := range h.Operations {
		seen[CheckSubject{op.Store, op.SKU}] = true
	}
	for _, c := range h.GeoCalls {
		seen[CheckSubject{inventory.Geo, c.SKU}] = true
	}
	out := make([]CheckSubject, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b CheckSubject) int {
		return cmp.Or(cmp.Compare(slices.Index(inventory.Stores, a.Store), slices.Index(inventory.Stores, b.Store)), cmp.Compare(a.SKU, b.SKU))
	})
	return out
}

// CheckSubject is one store's SKU.
type CheckSubject struct {
	Store inventory.Store
	SKU   string
}

// ReadHistory reads a history file; name is for errors ("FILE:LINE: …").
// store says which store a porcupine log is of (its lines do not say; a
// log of geo calls is always the geo store's).
func ReadHistory(r io.Reader, name string, store inventory.Store) (*HistoryFile, error) {
	if store == "" {
		store = inventory.Consensus
	}
	rd := bufio.NewReaderSize(r, 64<<10)
	h := &HistoryFile{}
	var porc []porcupineLine
	for n := 1; ; n++ {
		line, err := readLine(rd)
		if errors.Is(err, io.EOF) && len(line) == 0 {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if h.Format == "" {
			h.Format = sniffFormat(line)
			if h.Format == "" {
				return nil, fmt.Errorf("%s:%d is neither a caplab history record (JSON Lines, as GET /api/history/export writes) nor a porcupine operation: %s", name, n, inventory.Echo(string(line)))
			}
		}
		if h.Format == FormatJSONL {
			rec, err := parseRecord(line)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", name, n, err)
			}
			h.add(rec)
			continue
		}
		p, err := parsePorcupineLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n, err)
		}
		porc = append(porc, p)
	}
	if h.Format == "" {
		return nil, fmt.Errorf("%s holds no history: it is empty", name)
	}
	if h.Format == FormatPorcupine {
		h.fromPorcupine(porc, store)
	}
	return h, nil
}

// readLine reads one line (without its newline), refusing one longer than
// MaxHistoryLine.
func readLine(rd *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := rd.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxHistoryLine {
			return nil, fmt.Errorf("a line longer than %d bytes is no history record", MaxHistoryLine)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return bytes.TrimSuffix(line, []byte("\n")), err
		}
	}
}

// sniffFormat tells a caplab record ({"type":…}) from a porcupine
// operation ({"clientId":…,"input":…}).
func sniffFormat(line []byte) Format {
	var probe map[string]json.RawMessage
	if json.Unmarshal(line, &probe) != nil {
		return ""
	}
	if _, ok := probe["type"]; ok {
		return FormatJSONL
	}
	_, in := probe["input"]
	_, call := probe["call"]
	if in && call {
		return FormatPorcupine
	}
	return ""
}

// parseRecord reads and checks one JSON Lines record.
func parseRecord(line []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("not a history record: %v", err)
	}
	switch r.Type {
	case RecordStart, RecordReset, RecordStop:
	case RecordDropped:
		if r.Dropped < 0 {
			return r, fmt.Errorf("a dropped record with %d operations", r.Dropped)
		}
	case RecordOperation:
		if r.Operation == nil {
			return r, fmt.Errorf("an operation record without its operation")
		}
		return r, checkFileOperation(*r.Operation)
	case RecordFault:
		if r.Fault == nil {
			return r, fmt.Errorf("a fault record without its fault")
		}
	case RecordGap:
		if r.Gap == nil {
			return r, fmt.Errorf("a gap record without its gap")
		}
		if _, err := inventory.ParseStore(string(r.Gap.Store)); err != nil {
			return r, fmt.Errorf("a gap of store %s, which is no store of the lab", inventory.Echo(string(r.Gap.Store)))
		}
		if r.Gap.Ended() && r.Gap.To.Before(r.Gap.From) {
			return r, fmt.Errorf("a gap that ends before it begins")
		}
	case RecordGeoCall:
		if r.GeoCall == nil {
			return r, fmt.Errorf("a geo_call record without its call")
		}
		return r, checkFileGeoCall(*r.GeoCall)
	default:
		return r, fmt.Errorf("a record of type %s, which the lab does not write (types: start, operation, fault, reset, dropped, gap, geo_call, stop)", inventory.Echo(string(r.Type)))
	}
	return r, nil
}

func checkFileOperation(op inventory.Operation) error {
	if _, err := inventory.ParseStore(string(op.Store)); err != nil {
		return fmt.Errorf("operation %d: store %s is no store of the lab (stores: consensus, replicated, geo)", op.ID, inventory.Echo(string(op.Store)))
	}
	switch op.Op {
	case inventory.OpStock, inventory.OpBuy, inventory.OpRead:
	default:
		return fmt.Errorf("operation %d: op %s is none of stock, buy, read", op.ID, inventory.Echo(string(op.Op)))
	}
	if !slices.Contains(inventory.Kinds, op.Outcome) {
		return fmt.Errorf("operation %d: outcome %s is none of %v", op.ID, inventory.Echo(string(op.Outcome)), inventory.Kinds)
	}
	if op.SKU == "" {
		return fmt.Errorf("operation %d has no SKU", op.ID)
	}
	if op.Return.Before(op.Call) {
		return fmt.Errorf("operation %d returns before it is called", op.ID)
	}
	return nil
}

func checkFileGeoCall(c inventory.GeoCall) error {
	switch c.Kind {
	case inventory.GeoSet, inventory.GeoBuy, inventory.GeoTransferOut, inventory.GeoTransferIn, inventory.GeoRefund, inventory.GeoRead:
	default:
		return fmt.Errorf("a geo call of kind %s (kinds: set, buy, transfer-out, transfer-in, refund, read)", inventory.Echo(string(c.Kind)))
	}
	if c.SKU == "" || c.Region == "" {
		return fmt.Errorf("a geo call without its SKU or region")
	}
	if c.Return.Before(c.Call) {
		return fmt.Errorf("a geo call that returns before it is called")
	}
	return nil
}

// porcupineLine is one line of a porcupine log: an inventory operation or
// a geo call.
type porcupineLine struct {
	op   *check.PorcupineOperation
	geo  *check.PorcupineGeoCall
	call int64
	ret  int64
}

func parsePorcupineLine(line []byte) (porcupineLine, error) {
	var probe struct {
		Input map[string]json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(line, &probe); err != nil || probe.Input == nil {
		return porcupineLine{}, fmt.Errorf("not a porcupine operation (%s)", inventory.Echo(string(line)))
	}
	if _, geo := probe.Input["kind"]; geo {
		var g check.PorcupineGeoCall
		if err := json.Unmarshal(line, &g); err != nil {
			return porcupineLine{}, fmt.Errorf("not a porcupine geo call: %v", err)
		}
		c := inventory.GeoCall{SKU: g.Input.SKU, Region: g.Input.Region, Kind: g.Input.Kind}
		if err := checkFileGeoCall(c); err != nil {
			return porcupineLine{}, err
		}
		if g.Return < g.Call {
			return porcupineLine{}, fmt.Errorf("a call that returns before it is called")
		}
		return porcupineLine{geo: &g, call: g.Call, ret: g.Return}, nil
	}
	var p check.PorcupineOperation
	if err := json.Unmarshal(line, &p); err != nil {
		return porcupineLine{}, fmt.Errorf("not a porcupine operation: %v", err)
	}
	switch {
	case p.Input.SKU == "":
		return porcupineLine{}, fmt.Errorf("an operation without its SKU (input.sku)")
	case p.Input.Op != inventory.OpStock && p.Input.Op != inventory.OpBuy && p.Input.Op != inventory.OpRead:
		return porcupineLine{}, fmt.Errorf("input.op %s is none of stock, buy, read", inventory.Echo(string(p.Input.Op)))
	case !p.Output.Unknown && p.Output.Outcome != inventory.OK && p.Output.Outcome != inventory.SoldOut:
		return porcupineLine{}, fmt.Errorf("output.outcome %s: an operation the inventory model judges answered ok or sold_out, or is unknown", inventory.Echo(string(p.Output.Outcome)))
	case !p.Output.Unknown && p.Return < p.Call:
		return porcupineLine{}, fmt.Errorf("an operation that returns before it is called")
	}
	return porcupineLine{op: &p, call: p.Call, ret: p.Return}, nil
}

// fromPorcupine turns porcupine lines into operations of store (and geo
// calls): times are nanoseconds from an origin the lines share. Class,
// rank and client ids are the checker's own business and computed anew,
// so a log written by another service need not get them right.
func (h *HistoryFile) fromPorcupine(lines []porcupineLine, store inventory.Store) {
	origin := time.Unix(0, 0).UTC()
	for i, l := range lines {
		call, ret := origin.Add(time.Duration(l.call)), origin.Add(time.Duration(max(l.ret, l.call)))
		if l.geo != nil {
			in := l.geo.Input
			h.GeoCalls = append(h.GeoCalls, inventory.GeoCall{SKU: in.SKU, Region: in.Region, Kind: in.Kind, Delta: in.Delta, Set: in.Set,
				Left: in.Left, Unknown: in.Unknown, Call: call, Return: ret})
			continue
		}
		p := l.op
		op := inventory.Operation{ID: cmp.Or(p.ID, i+1), Store: store, SKU: p.Input.SKU, Region: p.Input.Region, Op: p.Input.Op, Qty: p.Input.Qty,
			Outcome: p.Output.Outcome, Quantity: p.Output.Quantity, Call: call, Return: ret}
		if p.Output.Unknown {
			op.Outcome = inventory.Unavailable
		}
		if op.Op == inventory.OpRead {
			op.Consistency, op.Qty = inventory.Linearizable, 0
		}
		h.Operations = append(h.Operations, op)
	}
}
