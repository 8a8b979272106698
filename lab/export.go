package lab

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"caplab/lab/check"
	"caplab/lab/history"
	"caplab/lab/inventory"
)

// Exports of the history, for checkers outside the lab.
//
//   - jsonl: the audit records themselves, one JSON object a line
//     (AuditRecord), every store, operation, fault, reset and start —
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
//     the judged calls of its log (PorcupineGeoCall), one partition per
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

// ExportFormat names an export format.
type ExportFormat string

const (
	ExportJSONL     ExportFormat = "jsonl"
	ExportPorcupine ExportFormat = "porcupine"
	ExportEDN       ExportFormat = "edn"
)

// ExportFormats lists the formats.
var ExportFormats = []ExportFormat{ExportJSONL, ExportPorcupine, ExportEDN}

// ParseExportFormat checks a format name; "" is jsonl.
func ParseExportFormat(s string) (ExportFormat, error) {
	if s == "" {
		return ExportJSONL, nil
	}
	if f := ExportFormat(s); slices.Contains(ExportFormats, f) {
		return f, nil
	}
	return "", fmt.Errorf("%w: format %s is not one the lab writes (formats: jsonl, porcupine, edn)", ErrBadInput, Echo(s))
}

// ExportFilter narrows an export. Store applies to porcupine and edn
// (default consensus) and, when set, to jsonl operations; SKU ("" = every
// SKU) to operations.
type ExportFilter struct {
	Store Store
	SKU   string
}

func (f ExportFilter) check() error {
	if f.Store != "" {
		if _, err := ParseStore(string(f.Store)); err != nil {
			return err
		}
	}
	if f.SKU != "" {
		return CheckSKU(f.SKU)
	}
	return nil
}

func (f ExportFilter) keeps(r AuditRecord) bool {
	switch {
	case r.Operation != nil:
		return (f.Store == "" || r.Operation.Store == f.Store) && (f.SKU == "" || r.Operation.SKU == f.SKU)
	case r.Gap != nil:
		return (f.Store == "" || r.Gap.Store == f.Store) && (f.SKU == "" || r.Gap.SKU == f.SKU || r.Gap.SKU == "")
	case r.GeoCall != nil:
		return (f.Store == "" || f.Store == Geo) && (f.SKU == "" || r.GeoCall.SKU == f.SKU)
	}
	return true
}

// Export writes the lab's history in format: from its audit log when one
// is attached (OpenAudit; everything since the log began), else from
// memory (since the last reset, at most MaxHistoryOperations operations; a
// jsonl export then ends with a "dropped" record when some were not kept).
func (l *Lab) Export(w io.Writer, format ExportFormat, f ExportFilter) error {
	if err := f.check(); err != nil {
		return err
	}
	if a := l.hooks.log(); a != nil {
		l.gaps.All(true) // the log hears of every gap change before it is read
		if err := a.Flush(); err != nil {
			return err
		}
		return ExportAudit(a.Dir(), w, format, f)
	}
	return exportRecords(w, format, f, memoryRecords(l.history, l.geoLog, l.gaps, l.regions))
}

// ExportAudit writes the audit log in dir in format.
func ExportAudit(dir string, w io.Writer, format ExportFormat, f ExportFilter) error {
	if err := f.check(); err != nil {
		return err
	}
	return exportRecords(w, format, f, func(fn func(AuditRecord) error) error { return ReadAuditLog(dir, fn) })
}

// memoryRecords turns the in-memory history into records: a start record
// naming the regions, then operations (by return time), faults, geo calls
// and gaps merged in time order. Read in that order (the History, the
// geo log, the gaps last), every gap a recorded answer could have seen is
// in it.
func memoryRecords(h *History, geoLog *history.GeoLog, g *history.Gaps, regions []string) func(func(AuditRecord) error) error {
	v := h.View("")
	dropped, _ := h.Dropped()
	calls := geoLog.Calls("")
	gaps := g.All(false)
	recs := make([]AuditRecord, 0, len(v.Operations)+len(v.Faults)+len(calls)+len(gaps)+2)
	for i := range v.Operations {
		recs = append(recs, AuditRecord{Type: AuditOperation, At: v.Operations[i].Return, Operation: &v.Operations[i]})
	}
	for i := range v.Faults {
		recs = append(recs, AuditRecord{Type: AuditFault, At: v.Faults[i].At, Fault: &v.Faults[i]})
	}
	for i := range calls {
		recs = append(recs, AuditRecord{Type: AuditGeoCall, At: calls[i].Return, GeoCall: &calls[i]})
	}
	for i := range gaps {
		recs = append(recs, AuditRecord{Type: AuditGap, At: gaps[i].From, Gap: &gaps[i]})
	}
	slices.SortStableFunc(recs, func(a, b AuditRecord) int { return a.At.Compare(b.At) })
	recs = slices.Insert(recs, 0, AuditRecord{Type: AuditStart, At: h.StartedAt(), Regions: slices.Clone(regions)})
	if dropped > 0 {
		recs = append(recs, AuditRecord{Type: AuditDropped, At: time.Now(), Dropped: dropped})
	}
	for i := range recs {
		recs[i].Seq = int64(i + 1)
	}
	return func(fn func(AuditRecord) error) error {
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
}

func exportRecords(w io.Writer, format ExportFormat, f ExportFilter, each func(func(AuditRecord) error) error) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var err error
	switch format {
	case ExportJSONL:
		enc := json.NewEncoder(bw)
		err = each(func(r AuditRecord) error {
			if !f.keeps(r) {
				return nil
			}
			return enc.Encode(r)
		})
	case ExportPorcupine, ExportEDN:
		if f.Store == "" {
			f.Store = Consensus
		}
		h := &HistoryFile{}
		err = each(func(r AuditRecord) error {
			if r.Fault != nil || r.Type == AuditReset || f.keeps(r) {
				h.add(r)
			}
			return nil
		})
		rec := h.Recorded(f.Store, f.SKU)
		switch {
		case err != nil:
		case format == ExportPorcupine && f.Store == Geo:
			err = writePorcupineGeo(bw, rec)
		case format == ExportPorcupine:
			err = writePorcupine(bw, rec, f)
		default:
			err = writeEDN(bw, rec, f.Store, h.Faults)
		}
	default:
		_, err = ParseExportFormat(string(format))
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// writePorcupineGeo writes the geo store's judged calls.
func writePorcupineGeo(w io.Writer, rec Recorded) error {
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
func writePorcupine(w io.Writer, rec Recorded, f ExportFilter) error {
	enc := json.NewEncoder(w)
	for _, line := range check.Porcupine(rec, f.Store, f.SKU) {
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return nil
}

// ---- Jepsen EDN

// ednEvent is one line of an EDN export before it is numbered.
type ednEvent struct {
	at       time.Time
	invoke   bool // an invocation (sorts before completions at the same instant)
	op       *Operation
	call     *GeoCall
	fault    *Fault
	complete string // completion type: ok, fail, info
	process  int
	seq      int // tie-breaker: order of creation
}

// ednCompletion maps an outcome to Jepsen's completion type: ok applied;
// fail did not (sold out, breaker open, conflict, overloaded, a read that
// got no answer); info may have (a stock or buy answered unavailable).
func ednCompletion(op Operation) string {
	switch {
	case op.Outcome == OK:
		return "ok"
	case op.Outcome == Unavailable && op.Op != OpRead:
		return "info"
	}
	return "fail"
}

// writeEDN writes ops and faults as a Jepsen history. Processes are
// logically single-threaded: an operation gets the lowest process whose
// previous operation completed before it was invoked, and a process whose
// operation ended :info is never used again (Jepsen's rule for crashed
// processes). Faults are :nemesis :info pairs.
func writeEDN(w io.Writer, rec Recorded, store Store, faults []Fault) error {
	ops := check.JudgedOperations(rec, store)
	faults = slices.Clone(faults)
	for _, g := range rec.Gaps {
		if g.Harmless() {
			continue
		}
		detail := fmt.Sprintf("writes on %s went unrecorded (%s) from here", cmp.Or(g.SKU, "every SKU"), g.Reason)
		if g.Ended() {
			detail += fmt.Sprintf(" until %s", g.To.UTC().Format(time.RFC3339Nano))
		}
		faults = append(faults, Fault{ID: int(g.ID), Kind: "unrecorded_writes", Regions: []string{}, Detail: detail, At: g.From})
	}
	var calls []GeoCall
	if store == Geo {
		calls = check.JudgedGeoCalls(rec)
	}
	return writeEDNEvents(w, ops, calls, faults)
}

// writeEDNEvents writes operations, geo calls and faults as one history.
func writeEDNEvents(w io.Writer, ops []Operation, calls []GeoCall, faults []Fault) error {
	slices.SortStableFunc(ops, func(a, b Operation) int {
		return cmp.Or(a.Call.Compare(b.Call), a.Return.Compare(b.Return), cmp.Compare(a.ID, b.ID))
	})
	slices.SortStableFunc(calls, func(a, b GeoCall) int { return cmp.Or(a.Call.Compare(b.Call), a.Return.Compare(b.Return)) })
	var evs []ednEvent
	procs := ednProcesses{}
	for i := range ops {
		op := &ops[i]
		kind := ednCompletion(*op)
		proc, ret := procs.take(op.Call, op.Return, kind == "info")
		evs = append(evs,
			ednEvent{at: op.Call, invoke: true, op: op, process: proc, seq: len(evs)},
			ednEvent{at: ret, op: op, complete: kind, process: proc, seq: len(evs) + 1})
	}
	calls = slices.Clone(calls)
	for i := range calls {
		c := &calls[i]
		kind := "ok"
		if c.Unknown {
			kind = "info"
		}
		proc, ret := procs.take(c.Call, c.Return, c.Unknown)
		evs = append(evs,
			ednEvent{at: c.Call, invoke: true, call: c, process: proc, seq: len(evs)},
			ednEvent{at: ret, call: c, complete: kind, process: proc, seq: len(evs) + 1})
	}
	for i := range faults {
		f := &faults[i]
		evs = append(evs,
			ednEvent{at: f.At, invoke: true, fault: f, seq: len(evs)},
			ednEvent{at: f.At, fault: f, complete: "info", seq: len(evs) + 1})
	}
	slices.SortStableFunc(evs, func(a, b ednEvent) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		// At one instant: invocations first, so no completion appears to
		// precede an invocation it may have overlapped.
		if a.invoke != b.invoke {
			if a.invoke {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.seq, b.seq)
	})
	if len(evs) == 0 {
		return nil
	}
	origin := evs[0].at
	var b strings.Builder
	for i, e := range evs {
		b.Reset()
		t := e.at.Sub(origin).Nanoseconds()
		switch {
		case e.fault != nil:
			writeEDNFault(&b, e, t, i)
		case e.call != nil:
			writeEDNGeoCall(&b, e, t, i)
		default:
			writeEDNOp(&b, e, t, i)
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
	}
	return nil
}

func writeEDNOp(b *strings.Builder, e ednEvent, t int64, index int) {
	op := e.op
	typ := "invoke"
	if !e.invoke {
		typ = e.complete
	}
	f := string(op.Op)
	if op.Op == OpRead && op.Consistency == Serializable {
		f = "read-serializable" // may be stale by contract; the lab's checker leaves it out
	}
	// :value is a jepsen.independent tuple [sku v]: stock → quantity set,
	// buy → [qty left] (left nil until an ok), read → quantity read (nil on
	// the invocation and when nothing was read).
	var v string
	switch op.Op {
	case OpStock:
		v = strconv.Itoa(op.Qty)
	case OpBuy:
		left := "nil"
		if !e.invoke && typ == "ok" {
			left = strconv.Itoa(op.Quantity)
		}
		v = "[" + strconv.Itoa(op.Qty) + " " + left + "]"
	default:
		v = "nil"
		if !e.invoke && typ == "ok" {
			v = strconv.Itoa(op.Quantity)
		}
	}
	fmt.Fprintf(b, "{:type :%s, :f :%s, :value [%s %s], :process %d, :time %d, :index %d, :store :%s, :region %s, :id %d",
		typ, f, ednString(op.SKU), v, e.process, t, index, ednKeyword(string(op.Store)), ednString(op.Region), op.ID)
	if !e.invoke {
		fmt.Fprintf(b, ", :outcome :%s, :latency-ms %s", ednKeyword(string(op.Outcome)), strconv.FormatFloat(float64(op.Return.Sub(op.Call).Microseconds())/1000, 'f', -1, 64))
		if typ != "ok" {
			fmt.Fprintf(b, ", :error :%s", ednKeyword(string(op.Outcome)))
		}
	}
	b.WriteByte('}')
}

// ednProcesses hands out Jepsen processes: an operation gets the lowest
// process whose previous operation completed strictly before its call,
// and a process whose operation ended :info is never used again.
type ednProcesses struct {
	running []ednBusy // processes with an operation in flight
	free    []int     // idle processes
	next    int
}

type ednBusy struct {
	until time.Time
	proc  int
}

// take returns the process for an operation called at call, and its
// completion time (never before the call).
func (p *ednProcesses) take(call, ret time.Time, crashed bool) (int, time.Time) {
	kept := p.running[:0]
	for _, b := range p.running {
		if b.until.Before(call) {
			p.free = append(p.free, b.proc)
		} else {
			kept = append(kept, b)
		}
	}
	p.running = kept
	slices.Sort(p.free)
	proc := p.next
	if len(p.free) > 0 {
		proc, p.free = p.free[0], p.free[1:]
	} else {
		p.next++
	}
	if ret.Before(call) {
		ret = call
	}
	if !crashed {
		p.running = append(p.running, ednBusy{until: ret, proc: proc})
	}
	return proc, ret
}

// writeEDNGeoCall writes a call of the geo store's log: :f
// :allocation-<kind>, :value ["SKU" ["region" delta left]] (left nil until
// an :ok).
func writeEDNGeoCall(b *strings.Builder, e ednEvent, t int64, index int) {
	c := e.call
	typ := "invoke"
	if !e.invoke {
		typ = e.complete
	}
	delta := c.Delta
	if c.Kind == inventory.GeoSet {
		delta = c.Set
	}
	left := "nil"
	if !e.invoke && typ == "ok" {
		left = strconv.Itoa(c.Left)
	}
	fmt.Fprintf(b, "{:type :%s, :f :allocation-%s, :value [%s [%s %d %s]], :process %d, :time %d, :index %d, :store :geo, :region %s}",
		typ, ednKeyword(string(c.Kind)), ednString(c.SKU), ednString(c.Region), delta, left, e.process, t, index, ednString(c.Region))
}

func writeEDNFault(b *strings.Builder, e ednEvent, t int64, index int) {
	f := e.fault
	regions := make([]string, len(f.Regions))
	for i, r := range f.Regions {
		regions[i] = ednString(r)
	}
	fmt.Fprintf(b, "{:type :info, :f :%s, :value [%s], :process :nemesis, :time %d, :index %d, :id %d",
		ednKeyword(string(f.Kind)), strings.Join(regions, " "), t, index, f.ID)
	if !e.invoke {
		fmt.Fprintf(b, ", :detail %s", ednString(f.Detail))
	}
	b.WriteByte('}')
}

// ednKeyword turns a lab name into a keyword's name: sold_out → sold-out;
// anything but letters, digits, '-', '.' and '_' becomes '-'.
func ednKeyword(s string) string {
	if s == "" {
		return "none"
	}
	out := []byte(s)
	for i, c := range out {
		switch {
		case c == '_':
			out[i] = '-'
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.':
		default:
			out[i] = '-'
		}
	}
	if out[0] >= '0' && out[0] <= '9' {
		return "x" + string(out)
	}
	return string(out)
}

// ednString writes s as an EDN string: \" \\ \n \r \t escaped, other
// control characters and invalid UTF-8 as \uXXXX.
func ednString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
