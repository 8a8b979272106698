package audit

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"caplab/lab/check"
	"caplab/lab/inventory"
)

// ---- Jepsen EDN

// ednEvent is one line of an EDN export before it is numbered.
type ednEvent struct {
	at       time.Time
	invoke   bool // an invocation (sorts before completions at the same instant)
	op       *inventory.Operation
	call     *inventory.GeoCall
	fault    *inventory.Fault
	complete string // completion type: ok, fail, info
	process  int
	seq      int // tie-breaker: order of creation
}

// ednCompletion maps an outcome to Jepsen's completion type: ok applied;
// fail did not (sold out, breaker open, conflict, overloaded, a read that
// got no answer); info may have (a stock or buy answered unavailable).
func ednCompletion(op inventory.Operation) string {
	switch {
	case op.Outcome == inventory.OK:
		return "ok"
	case op.Outcome == inventory.Unavailable && op.Op != inventory.OpRead:
		return "info"
	}
	return "fail"
}

// writeEDN writes ops and faults as a Jepsen history. Processes are
// logically single-threaded: an operation gets the lowest process whose
// previous operation completed before it was invoked, and a process whose
// operation ended :info is never used again (Jepsen's rule for crashed
// processes). Faults are :nemesis :info pairs.
func writeEDN(w io.Writer, rec check.Recorded, store inventory.Store, faults []inventory.Fault) error {
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
		faults = append(faults, inventory.Fault{ID: int(g.ID), Kind: "unrecorded_writes", Regions: []string{}, Detail: detail, At: g.From})
	}
	var calls []inventory.GeoCall
	if store == inventory.Geo {
		calls = check.JudgedGeoCalls(rec)
	}
	return writeEDNEvents(w, ops, calls, faults)
}

// writeEDNEvents writes operations, geo calls and faults as one history.
func writeEDNEvents(w io.Writer, ops []inventory.Operation, calls []inventory.GeoCall, faults []inventory.Fault) error {
	slices.SortStableFunc(ops, func(a, b inventory.Operation) int {
		return cmp.Or(a.Call.Compare(b.Call), a.Return.Compare(b.Return), cmp.Compare(a.ID, b.ID))
	})
	slices.SortStableFunc(calls, func(a, b inventory.GeoCall) int { return cmp.Or(a.Call.Compare(b.Call), a.Return.Compare(b.Return)) })
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
	if op.Op == inventory.OpRead && op.Consistency.MayBeStale() {
		f = "read-" + string(op.Consistency) // may be stale by contract; the lab's checker leaves it out
	}
	// :value is a jepsen.independent tuple [sku v]: stock → quantity set,
	// buy → [qty left] (left nil until an ok), read → quantity read (nil on
	// the invocation and when nothing was read).
	var v string
	switch op.Op {
	case inventory.OpStock:
		v = strconv.Itoa(op.Qty)
	case inventory.OpBuy:
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
