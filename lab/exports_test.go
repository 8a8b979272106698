package lab

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// A small EDN reader, enough for Jepsen histories: maps, vectors,
// keywords, strings, integers, floats, nil, true/false. It is strict: a
// line that Clojure's reader would refuse fails here too.

type ednKW string

type ednReader struct {
	s string
	i int
}

func (r *ednReader) ws() {
	for r.i < len(r.s) && (r.s[r.i] == ' ' || r.s[r.i] == ',' || r.s[r.i] == '\n' || r.s[r.i] == '\t') {
		r.i++
	}
}

func (r *ednReader) read() (any, error) {
	r.ws()
	if r.i >= len(r.s) {
		return nil, fmt.Errorf("unexpected end")
	}
	switch c := r.s[r.i]; {
	case c == '{':
		r.i++
		m := map[ednKW]any{}
		for {
			r.ws()
			if r.i < len(r.s) && r.s[r.i] == '}' {
				r.i++
				return m, nil
			}
			k, err := r.read()
			if err != nil {
				return nil, err
			}
			kw, ok := k.(ednKW)
			if !ok {
				return nil, fmt.Errorf("map key %v is not a keyword", k)
			}
			if _, dup := m[kw]; dup {
				return nil, fmt.Errorf("duplicate key %s", kw)
			}
			v, err := r.read()
			if err != nil {
				return nil, err
			}
			m[kw] = v
		}
	case c == '[':
		r.i++
		var v []any
		for {
			r.ws()
			if r.i < len(r.s) && r.s[r.i] == ']' {
				r.i++
				return v, nil
			}
			x, err := r.read()
			if err != nil {
				return nil, err
			}
			v = append(v, x)
		}
	case c == ':':
		j := r.i + 1
		for j < len(r.s) && strings.IndexByte(" ,{}[]\n\t", r.s[j]) < 0 {
			j++
		}
		name := r.s[r.i+1 : j]
		if name == "" || (name[0] >= '0' && name[0] <= '9') {
			return nil, fmt.Errorf("bad keyword %q", name)
		}
		for _, ch := range name {
			if !(ch == '-' || ch == '_' || ch == '.' || ch == '?' || ch == '!' || ch == '*' || ch == '+' ||
				(ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) {
				return nil, fmt.Errorf("bad keyword character %q in %q", ch, name)
			}
		}
		r.i = j
		return ednKW(name), nil
	case c == '"':
		var b strings.Builder
		r.i++
		for r.i < len(r.s) {
			ch := r.s[r.i]
			switch {
			case ch == '"':
				r.i++
				return b.String(), nil
			case ch == '\\':
				if r.i+1 >= len(r.s) {
					return nil, fmt.Errorf("escape at end")
				}
				switch e := r.s[r.i+1]; e {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				case '"', '\\':
					b.WriteByte(e)
				case 'u':
					n, err := strconv.ParseUint(r.s[r.i+2:min(len(r.s), r.i+6)], 16, 32)
					if err != nil {
						return nil, fmt.Errorf("bad \\u escape")
					}
					b.WriteRune(rune(n))
					r.i += 4
				default:
					return nil, fmt.Errorf("unknown escape \\%c", e)
				}
				r.i += 2
			case ch < 0x20:
				return nil, fmt.Errorf("raw control character in a string")
			default:
				b.WriteByte(ch)
				r.i++
			}
		}
		return nil, fmt.Errorf("unterminated string")
	default:
		j := r.i
		for j < len(r.s) && strings.IndexByte(" ,{}[]\n\t", r.s[j]) < 0 {
			j++
		}
		tok := r.s[r.i:j]
		r.i = j
		switch tok {
		case "nil":
			return nil, nil
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		if n, err := strconv.ParseInt(tok, 10, 64); err == nil {
			return n, nil
		}
		if f, err := strconv.ParseFloat(tok, 64); err == nil && !strings.ContainsAny(tok, "xXpP_") {
			return f, nil
		}
		return nil, fmt.Errorf("unknown token %q", tok)
	}
}

// checkEDNHistory parses an EDN export line by line and checks it against
// Jepsen's rules for histories (jepsen-io/history README): every line one
// map; :type one of :invoke :ok :fail :info; :index 0, 1, 2, …; :time in
// nanoseconds, never decreasing; client processes are integers, each
// single-threaded (invoke, then its completion with the same :f and key,
// before its next invoke), and a process whose operation ended :info never
// invokes again; the nemesis uses :info for both halves. It wants ops
// client operations (each an invoke + completion) and faults nemesis pairs.
func checkEDNHistory(t *testing.T, history string, ops, faults int) []map[ednKW]any {
	t.Helper()
	var out []map[ednKW]any
	open := map[int64]map[ednKW]any{} // process → its invocation
	crashed := map[int64]bool{}
	var lastTime int64 = -1
	invokes, completions, nemesis := 0, 0, 0
	for n, line := range strings.Split(strings.TrimSuffix(history, "\n"), "\n") {
		if line == "" {
			t.Fatalf("line %d is empty", n+1)
		}
		r := &ednReader{s: line}
		v, err := r.read()
		if err != nil {
			t.Fatalf("line %d: %v: %s", n+1, err, line)
		}
		if r.ws(); r.i != len(line) {
			t.Fatalf("line %d has more after its map: %s", n+1, line)
		}
		m, ok := v.(map[ednKW]any)
		if !ok {
			t.Fatalf("line %d is not a map: %s", n+1, line)
		}
		out = append(out, m)
		if m["index"] != int64(n) {
			t.Errorf("line %d: :index %v, want %d", n+1, m["index"], n)
		}
		tm, ok := m["time"].(int64)
		if !ok || tm < lastTime || tm < 0 {
			t.Errorf("line %d: :time %v after %d", n+1, m["time"], lastTime)
		}
		lastTime = tm
		typ, _ := m["type"].(ednKW)
		if typ != "invoke" && typ != "ok" && typ != "fail" && typ != "info" {
			t.Fatalf("line %d: :type %v", n+1, m["type"])
		}
		if _, ok := m["f"].(ednKW); !ok {
			t.Errorf("line %d: :f %v is not a keyword", n+1, m["f"])
		}
		if m["process"] == ednKW("nemesis") {
			if typ != "info" {
				t.Errorf("line %d: a nemesis op of type %s, want info", n+1, typ)
			}
			nemesis++
			continue
		}
		p, ok := m["process"].(int64)
		if !ok || p < 0 {
			t.Fatalf("line %d: :process %v", n+1, m["process"])
		}
		val, ok := m["value"].([]any)
		if !ok || len(val) != 2 {
			t.Fatalf("line %d: :value %v is not an independent [key value] tuple", n+1, m["value"])
		}
		if _, ok := val[0].(string); !ok {
			t.Errorf("line %d: the tuple's key %v is not a string", n+1, val[0])
		}
		if typ == "invoke" {
			if crashed[p] {
				t.Errorf("line %d: process %d invokes after it crashed (:info)", n+1, p)
			}
			if open[p] != nil {
				t.Errorf("line %d: process %d invokes while its line %v is open", n+1, p, open[p]["index"])
			}
			open[p] = m
			invokes++
			continue
		}
		inv := open[p]
		if inv == nil {
			t.Fatalf("line %d: process %d completes nothing", n+1, p)
		}
		if inv["f"] != m["f"] || inv["value"].([]any)[0] != val[0] || inv["id"] != m["id"] {
			t.Errorf("line %d: completion %v of invocation %v", n+1, m, inv)
		}
		delete(open, p)
		if typ == "info" {
			crashed[p] = true
		}
		completions++
	}
	if len(open) != 0 {
		t.Errorf("%d invocations never complete", len(open))
	}
	if invokes != ops || completions != ops || nemesis != 2*faults {
		t.Errorf("%d invocations, %d completions, %d nemesis lines; want %d, %d and %d", invokes, completions, nemesis, ops, ops, 2*faults)
	}
	return out
}

// TestEDNShape builds a history by hand — overlapping buys, a buy that
// may have applied, a sold-out, a read, a fault, operations of another
// store and a reset before them — and checks every line.
func TestEDNShape(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	op := func(id int, o Op, outcome Kind, call, ret, qty, quantity int) *Operation {
		return &Operation{ID: id, Store: Consensus, SKU: "IPHONE", Region: "us-east-1", Op: o, Qty: qty, Outcome: outcome, Quantity: quantity, Call: at(call), Return: at(ret)}
	}
	recs := []AuditRecord{
		{Type: AuditOperation, Operation: op(90, OpStock, OK, 0, 1, 9, 0)}, // before the reset: left out
		{Type: AuditReset},
		{Type: AuditOperation, Operation: op(1, OpStock, OK, 10, 12, 2, 0)},
		{Type: AuditOperation, Operation: op(2, OpBuy, OK, 20, 40, 1, 1)},
		{Type: AuditOperation, Operation: op(3, OpBuy, Unavailable, 25, 30, 1, 0)},
		{Type: AuditOperation, Operation: op(4, OpBuy, OK, 30, 50, 1, 0)}, // calls when 3 returns: overlaps
		{Type: AuditFault, Fault: &Fault{ID: 1, Kind: FaultPartition, Regions: []string{"ap-southeast-1"}, Detail: "cut \"off\"\n", At: at(26)}},
		{Type: AuditOperation, Operation: op(5, OpBuy, SoldOut, 60, 61, 1, 0)},
		{Type: AuditOperation, Operation: op(6, OpRead, OK, 70, 71, 0, 0)},
		{Type: AuditOperation, Operation: &Operation{ID: 7, Store: Replicated, SKU: "IPHONE", Op: OpBuy, Qty: 1, Outcome: OK, Call: at(72), Return: at(73)}},
	}
	var b bytes.Buffer
	each := func(fn func(AuditRecord) error) error {
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
	if err := exportRecords(&b, ExportEDN, ExportFilter{}, each); err != nil {
		t.Fatal(err)
	}
	lines := checkEDNHistory(t, b.String(), 6, 1)
	byID := map[int64][]map[ednKW]any{}
	for _, m := range lines {
		if id, ok := m["id"].(int64); ok && m["process"] != ednKW("nemesis") {
			byID[id] = append(byID[id], m)
		}
	}
	if _, ok := byID[90]; ok {
		t.Error("an operation before the reset is in the history")
	}
	if _, ok := byID[7]; ok {
		t.Error("a replicated operation is in the consensus history")
	}
	want := map[int64]string{1: "ok", 2: "ok", 3: "info", 4: "ok", 5: "fail", 6: "ok"}
	for id, typ := range want {
		if got := byID[id]; len(got) != 2 || got[1]["type"] != ednKW(typ) {
			t.Errorf("operation %d: %v, want invoke + %s", id, got, typ)
		}
	}
	// 2 and 3 overlap: two processes; 3 crashed, so 4 (which overlaps 2)
	// needs a third; 5 comes after both and reuses the lowest free one.
	p := func(id int64) int64 { return byID[id][0]["process"].(int64) }
	if p(2) == p(3) || p(4) == p(2) || p(4) == p(3) || p(5) != p(1) {
		t.Errorf("processes: 1→%d 2→%d 3→%d 4→%d 5→%d", p(1), p(2), p(3), p(4), p(5))
	}
	if v := byID[2][1]["value"].([]any); v[0] != "IPHONE" || fmt.Sprint(v[1]) != "[1 1]" {
		t.Errorf("buy 2 ok value %v, want [\"IPHONE\" [1 1]]", v)
	}
	if v := byID[2][0]["value"].([]any); fmt.Sprint(v[1]) != "[1 <nil>]" {
		t.Errorf("buy 2 invoke value %v, want [\"IPHONE\" [1 nil]]", v)
	}
	if byID[5][1]["error"] != ednKW("sold-out") || byID[3][1]["error"] != ednKW("unavailable") {
		t.Errorf("errors: %v, %v", byID[5][1], byID[3][1])
	}
	if v := byID[6][1]["value"].([]any); v[1] != int64(0) {
		t.Errorf("read value %v", v)
	}
	if !strings.Contains(b.String(), `:detail "cut \"off\"\n"`) {
		t.Errorf("fault detail not escaped: %s", b.String())
	}
	if lines[0]["time"] != int64(0) {
		t.Errorf("first :time %v, want 0", lines[0]["time"])
	}
	t.Log("\n" + b.String())
}

func TestEDNString(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\" back\\ nl\n tab\t cr\r", "ctl\x01\x7f", "日本", "bad\xff"} {
		enc := ednString(s)
		r := &ednReader{s: enc}
		v, err := r.read()
		want := strings.ToValidUTF8(s, "\ufffd")
		if err != nil || v != want || !utf8.ValidString(enc) {
			t.Errorf("ednString(%q) = %s → %q, %v", s, enc, v, err)
		}
	}
	if ednKeyword("sold_out") != "sold-out" || ednKeyword("a b") != "a-b" || ednKeyword("") != "none" || ednKeyword("9x") != "x9x" {
		t.Error("ednKeyword")
	}
}
