package audit

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"caplab/lab/internal/edntest"
	"caplab/lab/inventory"
)

// TestEDNShape builds a history by hand — overlapping buys, a buy that
// may have applied, a sold-out, a read, a fault, operations of another
// store and a reset before them — and checks every line.
func TestEDNShape(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	op := func(id int, o inventory.Op, outcome inventory.Kind, call, ret, qty, quantity int) *inventory.Operation {
		return &inventory.Operation{ID: id, Store: inventory.Consensus, SKU: "IPHONE", Region: "us-east-1", Op: o, Qty: qty, Outcome: outcome, Quantity: quantity, Call: at(call), Return: at(ret)}
	}
	recs := []Record{
		{Type: RecordOperation, Operation: op(90, inventory.OpStock, inventory.OK, 0, 1, 9, 0)}, // before the reset: left out
		{Type: RecordReset},
		{Type: RecordOperation, Operation: op(1, inventory.OpStock, inventory.OK, 10, 12, 2, 0)},
		{Type: RecordOperation, Operation: op(2, inventory.OpBuy, inventory.OK, 20, 40, 1, 1)},
		{Type: RecordOperation, Operation: op(3, inventory.OpBuy, inventory.Unavailable, 25, 30, 1, 0)},
		{Type: RecordOperation, Operation: op(4, inventory.OpBuy, inventory.OK, 30, 50, 1, 0)}, // calls when 3 returns: overlaps
		{Type: RecordFault, Fault: &inventory.Fault{ID: 1, Kind: inventory.FaultPartition, Regions: []string{"ap-southeast-1"}, Detail: "cut \"off\"\n", At: at(26)}},
		{Type: RecordOperation, Operation: op(5, inventory.OpBuy, inventory.SoldOut, 60, 61, 1, 0)},
		{Type: RecordOperation, Operation: op(6, inventory.OpRead, inventory.OK, 70, 71, 0, 0)},
		{Type: RecordOperation, Operation: &inventory.Operation{ID: 7, Store: inventory.Replicated, SKU: "IPHONE", Op: inventory.OpBuy, Qty: 1, Outcome: inventory.OK, Call: at(72), Return: at(73)}},
	}
	var b bytes.Buffer
	each := func(fn func(Record) error) error {
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
	if err := Write(&b, FormatEDN, Filter{}, each); err != nil {
		t.Fatal(err)
	}
	lines := edntest.CheckHistory(t, b.String(), 6, 1)
	byID := map[int64][]map[edntest.KW]any{}
	for _, m := range lines {
		if id, ok := m["id"].(int64); ok && m["process"] != edntest.KW("nemesis") {
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
		if got := byID[id]; len(got) != 2 || got[1]["type"] != edntest.KW(typ) {
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
	if byID[5][1]["error"] != edntest.KW("sold-out") || byID[3][1]["error"] != edntest.KW("unavailable") {
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
		r := edntest.NewReader(enc)
		v, err := r.Read()
		want := strings.ToValidUTF8(s, "\ufffd")
		if err != nil || v != want || !utf8.ValidString(enc) {
			t.Errorf("ednString(%q) = %s → %q, %v", s, enc, v, err)
		}
	}
	if ednKeyword("sold_out") != "sold-out" || ednKeyword("a b") != "a-b" || ednKeyword("") != "none" || ednKeyword("9x") != "x9x" {
		t.Error("ednKeyword")
	}
}
