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
)

// Exports of the history, for checkers outside the lab.
//
//   - jsonl: the audit records themselves, one JSON object a line
//     (AuditRecord), every store, operation, fault, reset and start.
//   - porcupine: porcupine's operation log for one store — the
//     porcupine.Operation values the lab's own checker judges (the same
//     operations, client ids and nanosecond times since the first call),
//     one JSON object a line: {"clientId","input","call","output","return"}.
//   - edn: a Jepsen history for one store, one EDN map a line in time
//     order, as Jepsen writes history.edn: {:type :invoke, :f :buy, :value
//     ["SKU" 1], :process 3, :time 1234, :index 0} and its completion
//     (:ok, :fail or :info), with faults as :nemesis :info pairs. Knossos
//     and Elle read it (wrap the lines in [ ] for a vector).
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
	if r.Operation == nil {
		return true
	}
	return (f.Store == "" || r.Operation.Store == f.Store) && (f.SKU == "" || r.Operation.SKU == f.SKU)
}

// Export writes the lab's history in format: from its audit log when one
// is attached (OpenAudit; everything since the log began), else from
// memory (since the last reset, at most MaxHistoryOperations operations; a
// jsonl export then ends with a "dropped" record when some were not kept).
func (l *Lab) Export(w io.Writer, format ExportFormat, f ExportFilter) error {
	if err := f.check(); err != nil {
		return err
	}
	if a := l.AuditLog(); a != nil {
		if err := a.Flush(); err != nil {
			return err
		}
		return ExportAudit(a.Dir(), w, format, f)
	}
	return exportRecords(w, format, f, l.memoryRecords())
}

// ExportAudit writes the audit log in dir in format.
func ExportAudit(dir string, w io.Writer, format ExportFormat, f ExportFilter) error {
	if err := f.check(); err != nil {
		return err
	}
	return exportRecords(w, format, f, func(fn func(AuditRecord) error) error { return ReadAuditLog(dir, fn) })
}

// memoryRecords turns the in-memory history into records: operations (by
// return time) and faults merged in time order.
func (l *Lab) memoryRecords() func(func(AuditRecord) error) error {
	v := l.history.View("")
	dropped, _ := l.history.Dropped()
	recs := make([]AuditRecord, 0, len(v.Operations)+len(v.Faults)+1)
	for i := range v.Operations {
		recs = append(recs, AuditRecord{Type: AuditOperation, At: v.Operations[i].Return, Operation: &v.Operations[i]})
	}
	for i := range v.Faults {
		recs = append(recs, AuditRecord{Type: AuditFault, At: v.Faults[i].At, Fault: &v.Faults[i]})
	}
	slices.SortStableFunc(recs, func(a, b AuditRecord) int { return a.At.Compare(b.At) })
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
		var ops []Operation
		var faults []Fault
		err = each(func(r AuditRecord) error {
			switch {
			case r.Type == AuditReset:
				ops, faults = ops[:0], faults[:0]
			case r.Operation != nil && f.keeps(r):
				ops = append(ops, *r.Operation)
			case r.Fault != nil:
				faults = append(faults, *r.Fault)
			}
			return nil
		})
		if err == nil && format == ExportPorcupine {
			err = writePorcupine(bw, ops, f)
		} else if err == nil {
			err = writeEDN(bw, ops, faults)
		}
	default:
		_, err = ParseExportFormat(string(format))
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// PorcupineInput and PorcupineOutput are the Input and Output of one
// operation of a porcupine export: what the lab's inventory model reads.
// Class and Rank group indeterminate operations (see Check).
type PorcupineInput struct {
	SKU    string `json:"sku"`
	Region string `json:"region"`
	Op     Op     `json:"op"`
	Qty    int    `json:"qty"`
	Class  int    `json:"class,omitempty"`
	Rank   int    `json:"rank,omitempty"`
}

// PorcupineOutput: Unknown marks an operation answered unavailable (it may
// or may not have applied; its Return is after every other event).
type PorcupineOutput struct {
	Outcome  Kind `json:"outcome"`
	Unknown  bool `json:"unknown,omitempty"`
	Quantity int  `json:"quantity"`
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

func writePorcupine(w io.Writer, ops []Operation, f ExportFilter) error {
	in, _, _ := prepareCheck(ops, f.Store, f.SKU)
	rankIndeterminate(in)
	enc := json.NewEncoder(w)
	for i, p := range toPorcupine(in) {
		ci, co := p.Input.(checkInput), p.Output.(checkOutput)
		line := PorcupineOperation{
			ClientID: p.ClientId, Call: p.Call, Return: p.Return,
			Input:  PorcupineInput(ci),
			Output: PorcupineOutput{Outcome: co.Kind, Unknown: co.Unknown, Quantity: co.Quantity},
			ID:     in[i].op.ID,
		}
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
func writeEDN(w io.Writer, ops []Operation, faults []Fault) error {
	slices.SortStableFunc(ops, func(a, b Operation) int {
		return cmp.Or(a.Call.Compare(b.Call), a.Return.Compare(b.Return), cmp.Compare(a.ID, b.ID))
	})
	var evs []ednEvent
	type busy struct {
		until time.Time
		proc  int
	}
	var running []busy // processes with an operation in flight
	var free []int     // idle processes, lowest first
	next := 0
	for i := range ops {
		op := &ops[i]
		// Free processes whose operation completed strictly before this call.
		kept := running[:0]
		for _, b := range running {
			if b.until.Before(op.Call) {
				free = append(free, b.proc)
			} else {
				kept = append(kept, b)
			}
		}
		running = kept
		slices.Sort(free)
		proc := next
		if len(free) > 0 {
			proc, free = free[0], free[1:]
		} else {
			next++
		}
		ret := op.Return
		if ret.Before(op.Call) {
			ret = op.Call
		}
		kind := ednCompletion(*op)
		if kind != "info" {
			running = append(running, busy{until: ret, proc: proc})
		}
		evs = append(evs,
			ednEvent{at: op.Call, invoke: true, op: op, process: proc, seq: len(evs)},
			ednEvent{at: ret, op: op, complete: kind, process: proc, seq: len(evs) + 1})
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
		if e.fault != nil {
			writeEDNFault(&b, e, t, i)
		} else {
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
