// Package edntest reads EDN for tests: enough of it for the Jepsen
// histories the lab exports, and a check of such a history against
// Jepsen's rules. Tests of package lab and package audit share it.
package edntest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// NewReader reads s.
func NewReader(s string) *Reader { return &Reader{s: s} }

// A small EDN reader, enough for Jepsen histories: maps, vectors,
// keywords, strings, integers, floats, nil, true/false. It is strict: a
// line that Clojure's reader would refuse fails here too.

// KW is an EDN keyword (without its colon).
type KW string

// Reader reads EDN values from a string.
type Reader struct {
	s string
	i int
}

func (r *Reader) ws() {
	for r.i < len(r.s) && (r.s[r.i] == ' ' || r.s[r.i] == ',' || r.s[r.i] == '\n' || r.s[r.i] == '\t') {
		r.i++
	}
}

// Read reads the next value.
func (r *Reader) Read() (any, error) {
	r.ws()
	if r.i >= len(r.s) {
		return nil, fmt.Errorf("unexpected end")
	}
	switch c := r.s[r.i]; {
	case c == '{':
		r.i++
		m := map[KW]any{}
		for {
			r.ws()
			if r.i < len(r.s) && r.s[r.i] == '}' {
				r.i++
				return m, nil
			}
			k, err := r.Read()
			if err != nil {
				return nil, err
			}
			kw, ok := k.(KW)
			if !ok {
				return nil, fmt.Errorf("map key %v is not a keyword", k)
			}
			if _, dup := m[kw]; dup {
				return nil, fmt.Errorf("duplicate key %s", kw)
			}
			v, err := r.Read()
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
			x, err := r.Read()
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
		return KW(name), nil
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

// CheckHistory parses an EDN export line by line and checks it against
// Jepsen's rules for histories (jepsen-io/history README): every line one
// map; :type one of :invoke :ok :fail :info; :index 0, 1, 2, …; :time in
// nanoseconds, never decreasing; client processes are integers, each
// single-threaded (invoke, then its completion with the same :f and key,
// before its next invoke), and a process whose operation ended :info never
// invokes again; the nemesis uses :info for both halves. It wants ops
// client operations (each an invoke + completion) and faults nemesis pairs.
func CheckHistory(t testing.TB, history string, ops, faults int) []map[KW]any {
	t.Helper()
	var out []map[KW]any
	open := map[int64]map[KW]any{} // process → its invocation
	crashed := map[int64]bool{}
	var lastTime int64 = -1
	invokes, completions, nemesis := 0, 0, 0
	for n, line := range strings.Split(strings.TrimSuffix(history, "\n"), "\n") {
		if line == "" {
			t.Fatalf("line %d is empty", n+1)
		}
		r := NewReader(line)
		v, err := r.Read()
		if err != nil {
			t.Fatalf("line %d: %v: %s", n+1, err, line)
		}
		if r.ws(); r.i != len(line) {
			t.Fatalf("line %d has more after its map: %s", n+1, line)
		}
		m, ok := v.(map[KW]any)
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
		typ, _ := m["type"].(KW)
		if typ != "invoke" && typ != "ok" && typ != "fail" && typ != "info" {
			t.Fatalf("line %d: :type %v", n+1, m["type"])
		}
		if _, ok := m["f"].(KW); !ok {
			t.Errorf("line %d: :f %v is not a keyword", n+1, m["f"])
		}
		if m["process"] == KW("nemesis") {
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
