package lab_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/audit"
	"caplab/lab/check"
	"caplab/lab/history"
	"caplab/lab/internal/edntest"
	"caplab/lab/inventory"
)

// TestAuditAndExportWithLab runs operations and faults on a real lab with
// an audit log, restarts the log on the same directory, and exports it in
// every format. The porcupine export, read back and checked with the
// lab's own model, gives the lab's verdict.
func TestAuditAndExportWithLab(t *testing.T) {
	dir := t.TempDir()
	l := newLab(t, lab.Config{})
	a, err := lab.OpenAudit(l, dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var recorded int
	cancel := l.Record(func(e lab.Event) { recorded++ })
	stock(t, l, inventory.Consensus, "us-east-1", 3)
	stock(t, l, inventory.Replicated, "us-east-1", 3)
	buy(t, l, inventory.Consensus, "eu-west-1")
	if err := l.Faults().Partition([][]string{{"us-east-1", "eu-west-1"}, {"ap-southeast-1"}}); err != nil {
		t.Fatal(err)
	}
	minority := buy(t, l, inventory.Consensus, "ap-southeast-1") // unavailable: indeterminate
	buy(t, l, inventory.Replicated, "ap-southeast-1")
	buy(t, l, inventory.Consensus, "us-east-1")
	if _, err := l.Read(ctxT(t, 10*time.Second), inventory.Consensus, "IPHONE", "ap-southeast-1", inventory.Serializable); err != nil {
		t.Fatal(err)
	}
	if err := l.Faults().HealAll(); err != nil {
		t.Fatal(err)
	}
	buy(t, l, inventory.Consensus, "ap-southeast-1")
	cancel()
	if minority.Outcome != inventory.Unavailable {
		t.Logf("the minority buy answered %s (expected unavailable)", minority.Outcome)
	}
	verdict, err := l.Check(inventory.Consensus, "IPHONE")
	if err != nil || !verdict.Linearizable {
		t.Fatalf("check: %+v %v", verdict, err)
	}

	// jsonl: every operation and fault, as recorded.
	var jsonl bytes.Buffer
	if err := l.Export(&jsonl, audit.FormatJSONL, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	h := l.History("")
	lines := strings.Split(strings.TrimSpace(jsonl.String()), "\n")
	if want := 1 + len(h.Operations) + len(h.Faults); len(lines) != want || recorded != want-1 {
		t.Fatalf("jsonl has %d lines, the recorder saw %d; want %d (start + %d operations + %d faults)", len(lines), recorded, want, len(h.Operations), len(h.Faults))
	}
	var r audit.Record
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil || r.Operation == nil || r.Operation.ID != h.Operations[len(h.Operations)-1].ID {
		t.Fatalf("last line %s: %v", lines[len(lines)-1], err)
	}

	// porcupine: the checker's operations; checked again from the file.
	var pb bytes.Buffer
	if err := l.Export(&pb, audit.FormatPorcupine, audit.Filter{Store: inventory.Consensus, SKU: "IPHONE"}); err != nil {
		t.Fatal(err)
	}
	ops := parsePorcupine(t, pb.Bytes())
	if len(ops) != verdict.Operations {
		t.Fatalf("porcupine export has %d operations, the check judged %d", len(ops), verdict.Operations)
	}
	if !check.PorcupineLinearizable(ops) {
		t.Error("the exported porcupine log is not linearizable, but the lab's verdict is")
	}

	// edn from the lab (the log), then the log read offline after Close.
	var edn bytes.Buffer
	if err := l.Export(&edn, audit.FormatEDN, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	consensusOps := 0
	for _, op := range h.Operations {
		if op.Store == inventory.Consensus {
			consensusOps++
		}
	}
	edntest.CheckHistory(t, edn.String(), consensusOps, len(h.Faults))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var offline bytes.Buffer
	if err := audit.Export(dir, &offline, audit.FormatEDN, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	if offline.String() != edn.String() {
		t.Errorf("the offline EDN export differs from the running lab's:\n%s\n---\n%s", offline.String(), edn.String())
	}
	if err := audit.Export(dir, &offline, "xml", audit.Filter{}); err == nil || !strings.Contains(err.Error(), "jsonl, porcupine, edn") {
		t.Errorf("format xml: %v", err)
	}
	if err := audit.Export(dir, &offline, audit.FormatJSONL, audit.Filter{Store: "nosql"}); err == nil {
		t.Error("store nosql was accepted")
	}
}

func parsePorcupine(t *testing.T, b []byte) []check.PorcupineOperation {
	t.Helper()
	var ops []check.PorcupineOperation
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var p check.PorcupineOperation
		if err := json.Unmarshal(line, &p); err != nil {
			t.Fatalf("porcupine line %s: %v", line, err)
		}
		ops = append(ops, p)
	}
	return ops
}

// TestHistoryCapVerdict: once the in-memory history is full, the verdict
// says it judged only the first 100,000 operations.
func TestHistoryCapVerdict(t *testing.T) {
	l := newLab(t, lab.Config{})
	stock(t, l, inventory.Consensus, "us-east-1", 5)
	res, _ := l.Check(inventory.Consensus, "IPHONE")
	if res.Unjudged != 0 || strings.Contains(res.Explanation, "full") {
		t.Fatalf("before the cap: %+v", res)
	}
	t0 := time.Now()
	for range history.MaxOperations + 7 {
		lab.HistoryOf(l).AddOperation(inventory.Operation{Store: inventory.Replicated, SKU: "FILL", Op: inventory.OpRead, Outcome: inventory.OK, Call: t0, Return: t0})
	}
	res, _ = l.Check(inventory.Consensus, "IPHONE")
	if res.Unjudged != 8 || !strings.Contains(res.Explanation, "only the first 100,000 operations") || !strings.Contains(res.Explanation, "8 operations later") {
		t.Errorf("after the cap: unjudged %d, %q", res.Unjudged, res.Explanation)
	}
	var b bytes.Buffer
	if err := l.Export(&b, audit.FormatJSONL, audit.Filter{SKU: "IPHONE"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"type":"dropped"`) || !strings.Contains(b.String(), `"dropped":8`) {
		t.Errorf("a memory export past the cap does not say what it dropped: %.300s", b.String())
	}
}
