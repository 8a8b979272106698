package lab

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func readAll(t *testing.T, dir string) []AuditRecord {
	t.Helper()
	var recs []AuditRecord
	if err := ReadAuditLog(dir, func(r AuditRecord) error { recs = append(recs, r); return nil }); err != nil {
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
	a, err := OpenAuditLog(dir, []string{"us-east-1"}, AuditOptions{MaxFileBytes: 4 << 10, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for i := 1; i <= 200; i++ {
		op := Operation{ID: i, Store: Consensus, SKU: "A", Region: "us-east-1", Op: OpBuy, Qty: 1, Outcome: OK, Call: t0, Return: t0.Add(time.Millisecond)}
		a.Append(Event{Type: EventOperation, Operation: &op})
		if i%50 == 0 {
			a.Append(Event{Type: EventFault, Fault: &Fault{ID: i / 50, Kind: FaultCut, Regions: []string{"a", "b"}, At: t0}})
		}
	}
	a.Append(Event{Type: EventState}) // not recorded
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
	if len(recs) != 1+200+4+1 || recs[0].Type != AuditStart || recs[0].Regions[0] != "us-east-1" || recs[len(recs)-1].Type != AuditStop {
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
	b, err := OpenAuditLog(dir, nil, AuditOptions{MaxFileBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	op := Operation{ID: 1, Store: Replicated, SKU: "B", Op: OpRead, Outcome: OK}
	b.Append(Event{Type: EventOperation, Operation: &op})
	b.Append(Event{Type: EventReset})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	again := readAll(t, dir)
	if len(again) != len(recs)+4 {
		t.Fatalf("after a restart: %d records, want %d", len(again), len(recs)+4)
	}
	tail := again[len(recs):]
	if tail[0].Type != AuditStart || tail[0].Seq != int64(len(recs)+1) || tail[1].Operation.SKU != "B" || tail[2].Type != AuditReset || tail[3].Type != AuditStop || tail[0].Run == recs[0].Run {
		t.Errorf("records of the second run: %+v", tail)
	}

	// A line that is not a record, in the middle of the log, is an error
	// naming the file and line.
	_ = os.WriteFile(filepath.Join(dir, auditName(0+1)), []byte("{\"seq\":1,\"type\":\"start\"}\nnot json\n"), 0o600)
	err = ReadAuditLog(dir, func(AuditRecord) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "audit-000001.jsonl:2") {
		t.Errorf("a broken line: %v", err)
	}
	if err := ReadAuditLog(t.TempDir(), func(AuditRecord) error { return nil }); err == nil || !strings.Contains(err.Error(), "no audit-") {
		t.Errorf("an empty directory: %v", err)
	}
}

// TestAuditAndExportWithLab runs operations and faults on a real lab with
// an audit log, restarts the log on the same directory, and exports it in
// every format. The porcupine export, read back and checked with the
// lab's own model, gives the lab's verdict.
func TestAuditAndExportWithLab(t *testing.T) {
	dir := t.TempDir()
	l := newLab(t, Config{})
	a, err := OpenAudit(l, dir, AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var recorded int
	cancel := l.Record(func(e Event) { recorded++ })
	stock(t, l, Consensus, "us-east-1", 3)
	stock(t, l, Replicated, "us-east-1", 3)
	buy(t, l, Consensus, "eu-west-1")
	if err := l.Partition([][]string{{"us-east-1", "eu-west-1"}, {"ap-southeast-1"}}); err != nil {
		t.Fatal(err)
	}
	minority := buy(t, l, Consensus, "ap-southeast-1") // unavailable: indeterminate
	buy(t, l, Replicated, "ap-southeast-1")
	buy(t, l, Consensus, "us-east-1")
	if _, err := l.Read(ctxT(t, 10*time.Second), Consensus, "IPHONE", "ap-southeast-1", Serializable); err != nil {
		t.Fatal(err)
	}
	if err := l.HealAll(); err != nil {
		t.Fatal(err)
	}
	buy(t, l, Consensus, "ap-southeast-1")
	cancel()
	if minority.Outcome != Unavailable {
		t.Logf("the minority buy answered %s (expected unavailable)", minority.Outcome)
	}
	verdict, err := l.Check(Consensus, "IPHONE")
	if err != nil || !verdict.Linearizable {
		t.Fatalf("check: %+v %v", verdict, err)
	}

	// jsonl: every operation and fault, as recorded.
	var jsonl bytes.Buffer
	if err := l.Export(&jsonl, ExportJSONL, ExportFilter{}); err != nil {
		t.Fatal(err)
	}
	h := l.History("")
	lines := strings.Split(strings.TrimSpace(jsonl.String()), "\n")
	if want := 1 + len(h.Operations) + len(h.Faults); len(lines) != want || recorded != want-1 {
		t.Fatalf("jsonl has %d lines, the recorder saw %d; want %d (start + %d operations + %d faults)", len(lines), recorded, want, len(h.Operations), len(h.Faults))
	}
	var r AuditRecord
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil || r.Operation == nil || r.Operation.ID != h.Operations[len(h.Operations)-1].ID {
		t.Fatalf("last line %s: %v", lines[len(lines)-1], err)
	}

	// porcupine: the checker's operations; checked again from the file.
	var pb bytes.Buffer
	if err := l.Export(&pb, ExportPorcupine, ExportFilter{Store: Consensus, SKU: "IPHONE"}); err != nil {
		t.Fatal(err)
	}
	ops, classes := parsePorcupine(t, pb.Bytes())
	if len(ops) != verdict.Operations {
		t.Fatalf("porcupine export has %d operations, the check judged %d", len(ops), verdict.Operations)
	}
	if !porcupine.CheckOperations(inventoryModel(classes), ops) {
		t.Error("the exported porcupine log is not linearizable, but the lab's verdict is")
	}

	// edn from the lab (the log), then the log read offline after Close.
	var edn bytes.Buffer
	if err := l.Export(&edn, ExportEDN, ExportFilter{}); err != nil {
		t.Fatal(err)
	}
	consensusOps := 0
	for _, op := range h.Operations {
		if op.Store == Consensus {
			consensusOps++
		}
	}
	checkEDNHistory(t, edn.String(), consensusOps, len(h.Faults))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var offline bytes.Buffer
	if err := ExportAudit(dir, &offline, ExportEDN, ExportFilter{}); err != nil {
		t.Fatal(err)
	}
	if offline.String() != edn.String() {
		t.Errorf("the offline EDN export differs from the running lab's:\n%s\n---\n%s", offline.String(), edn.String())
	}
	if err := ExportAudit(dir, &offline, "xml", ExportFilter{}); err == nil || !strings.Contains(err.Error(), "jsonl, porcupine, edn") {
		t.Errorf("format xml: %v", err)
	}
	if err := ExportAudit(dir, &offline, ExportJSONL, ExportFilter{Store: "nosql"}); err == nil {
		t.Error("store nosql was accepted")
	}
}

func parsePorcupine(t *testing.T, b []byte) ([]porcupine.Operation, int) {
	t.Helper()
	var ops []porcupine.Operation
	classes := 0
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var p PorcupineOperation
		if err := json.Unmarshal(line, &p); err != nil {
			t.Fatalf("porcupine line %s: %v", line, err)
		}
		if p.Output.Unknown {
			classes = max(classes, p.Input.Class+1)
		}
		ops = append(ops, porcupine.Operation{
			ClientId: p.ClientID, Call: p.Call, Return: p.Return,
			Input:  checkInput{SKU: p.Input.SKU, Region: p.Input.Region, Op: p.Input.Op, Qty: p.Input.Qty, Class: p.Input.Class, Rank: p.Input.Rank},
			Output: checkOutput{Kind: p.Output.Outcome, Unknown: p.Output.Unknown, Quantity: p.Output.Quantity},
		})
	}
	return ops, classes
}

// TestHistoryCapVerdict: once the in-memory history is full, the verdict
// says it judged only the first 100,000 operations.
func TestHistoryCapVerdict(t *testing.T) {
	l := newLab(t, Config{})
	stock(t, l, Consensus, "us-east-1", 5)
	res, _ := l.Check(Consensus, "IPHONE")
	if res.Unjudged != 0 || strings.Contains(res.Explanation, "full") {
		t.Fatalf("before the cap: %+v", res)
	}
	t0 := time.Now()
	for range MaxHistoryOperations + 7 {
		l.history.AddOperation(Operation{Store: Replicated, SKU: "FILL", Op: OpRead, Outcome: OK, Call: t0, Return: t0})
	}
	res, _ = l.Check(Consensus, "IPHONE")
	if res.Unjudged != 8 || !strings.Contains(res.Explanation, "only the first 100,000 operations") || !strings.Contains(res.Explanation, "8 operations later") {
		t.Errorf("after the cap: unjudged %d, %q", res.Unjudged, res.Explanation)
	}
	var b bytes.Buffer
	if err := l.Export(&b, ExportJSONL, ExportFilter{SKU: "IPHONE"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"type":"dropped"`) || !strings.Contains(b.String(), `"dropped":8`) {
		t.Errorf("a memory export past the cap does not say what it dropped: %.300s", b.String())
	}
}
