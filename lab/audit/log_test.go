package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"caplab/lab/inventory"
)

func readAll(t *testing.T, dir string) []Record {
	t.Helper()
	var recs []Record
	if err := Read(dir, func(r Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestAuditLogRotatesAndSurvivesRestart: records land in size-rotated
// files, a clean close ends them with a stop record, a second open
// appends after them (numbering on), and a last line a killed writer left
// half-written is cut off, not glued to the next.
func TestAuditLogRotatesAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir, []string{"us-east-1"}, Options{MaxFileBytes: 4 << 10, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for i := 1; i <= 200; i++ {
		op := inventory.Operation{ID: i, Store: inventory.Consensus, SKU: "A", Region: "us-east-1", Op: inventory.OpBuy, Qty: 1, Outcome: inventory.OK, Call: t0, Return: t0.Add(time.Millisecond)}
		a.AppendOperation(op)
		if i%50 == 0 {
			a.AppendFault(inventory.Fault{ID: i / 50, Kind: inventory.FaultCut, Regions: []string{"a", "b"}, At: t0})
		}
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil || a.Close() != nil {
		t.Fatalf("close: %v", err)
	}
	names, _, _ := auditFiles(dir)
	if len(names) < 5 {
		t.Fatalf("%d files after ~40 KiB at 4 KiB each: %v", len(names), names)
	}
	for _, n := range names[:len(names)-1] {
		if st, _ := os.Stat(n); st.Size() > 4<<10 {
			t.Errorf("%s is %d bytes, over the 4 KiB rotation size", n, st.Size())
		}
	}
	recs := readAll(t, dir)
	if len(recs) != 1+200+4+1 || recs[0].Type != RecordStart || recs[0].Regions[0] != "us-east-1" || recs[len(recs)-1].Type != RecordStop {
		t.Fatalf("%d records, first %+v, last %+v; want start + 200 operations + 4 faults + stop", len(recs), recs[0], recs[len(recs)-1])
	}
	for i, r := range recs {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
	}

	// A killed writer: half a line at the end of the last file.
	last := names[len(names)-1]
	f, _ := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(`{"seq":999,"type":"opera`)
	_ = f.Close()
	if got := readAll(t, dir); len(got) != len(recs) {
		t.Fatalf("reading with a partial last line: %d records, want %d", len(got), len(recs))
	}
	b, err := Open(dir, nil, Options{MaxFileBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	op := inventory.Operation{ID: 1, Store: inventory.Replicated, SKU: "B", Op: inventory.OpRead, Outcome: inventory.OK}
	b.AppendOperation(op)
	b.AppendReset()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	again := readAll(t, dir)
	if len(again) != len(recs)+4 {
		t.Fatalf("after a restart: %d records, want %d", len(again), len(recs)+4)
	}
	tail := again[len(recs):]
	if tail[0].Type != RecordStart || tail[0].Seq != int64(len(recs)+1) || tail[1].Operation.SKU != "B" || tail[2].Type != RecordReset || tail[3].Type != RecordStop || tail[0].Run == recs[0].Run {
		t.Errorf("records of the second run: %+v", tail)
	}

	// A line that is not a record, in the middle of the log, is an error
	// naming the file and line.
	_ = os.WriteFile(filepath.Join(dir, auditName(0+1)), []byte("{\"seq\":1,\"type\":\"start\"}\nnot json\n"), 0o600)
	err = Read(dir, func(Record) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "audit-000001.jsonl:2") {
		t.Errorf("a broken line: %v", err)
	}
	if err := Read(t.TempDir(), func(Record) error { return nil }); err == nil || !strings.Contains(err.Error(), "no audit-") {
		t.Errorf("an empty directory: %v", err)
	}
}
