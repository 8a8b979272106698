package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/audit"
)

// TestHistoryExport: GET /api/history/export and "caplab history export"
// against a real lab: from memory without an audit log, from the log with
// one, and offline from a data directory after the lab has stopped.
func TestHistoryExport(t *testing.T) {
	f := newAPI(t)
	for _, c := range [][2]string{
		{"PUT", `/api/stores/consensus/skus/IPHONE`},
		{"POST", `/api/stores/consensus/skus/IPHONE/buy`},
		{"POST", `/api/stores/replicated/skus/IPHONE/buy`},
	} {
		body := `{"region":"us-east-1","qty":1}`
		if c[0] == "PUT" {
			body = `{"region":"us-east-1","quantity":2}`
		}
		if resp, b := f.call(t, c[0], c[1], body, nil); resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", c[0], c[1], resp.StatusCode, b)
		}
	}
	if resp, b := f.call(t, "POST", "/api/network/heal", `{}`, nil); resp.StatusCode != 200 {
		t.Fatalf("heal: %d %s", resp.StatusCode, b)
	}

	get := func(query string) (*http.Response, string) {
		t.Helper()
		resp, b := f.call(t, "GET", "/api/history/export"+query, "", map[string]string{"Authorization": ""})
		return resp, string(b)
	}
	resp, body := get("")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "caplab-history.jsonl") {
		t.Fatalf("jsonl: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], `"type":"start"`) { // a start record naming the regions, 3 operations + 1 fault (heal)
		t.Errorf("jsonl from memory has %d lines, want a start record and 4 more:\n%s", len(lines), body)
	}
	for _, l := range lines[1:] {
		var r audit.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil || (r.Operation == nil && r.Fault == nil) {
			t.Errorf("line %s: %v", l, err)
		}
	}
	if _, body := get("?store=replicated&sku=IPHONE"); strings.Count(strings.TrimSpace(body), "\n") != 2 {
		t.Errorf("jsonl of the replicated store: want the start record, its one buy and the heal:\n%s", body)
	}
	resp, body = get("?format=porcupine")
	if resp.StatusCode != 200 || strings.Count(body, `"clientId"`) != 2 || strings.Contains(body, "replicated") {
		t.Errorf("porcupine: %d %s", resp.StatusCode, body)
	}
	resp, body = get("?format=edn&store=consensus&sku=IPHONE")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/edn") ||
		!strings.HasPrefix(body, "{:type :invoke, :f :stock, :value [\"IPHONE\" 2], :process 0, :time 0, :index 0") ||
		strings.Count(body, "\n") != 6 || !strings.Contains(body, ":process :nemesis") {
		t.Errorf("edn: %d %s", resp.StatusCode, body)
	}
	for query, status := range map[string]int{
		"?format=xml":                         400,
		"?format=" + strings.Repeat("x", 500): 400,
		"?store=nosql":                        404,
		"?sku=no/slash":                       400,
	} {
		if resp, body := get(query); resp.StatusCode != status || len(body) > 400 {
			t.Errorf("%.40s: %d %s, want %d", query, resp.StatusCode, body, status)
		}
	}

	// The CLI against the running lab.
	var out, errb bytes.Buffer
	if code := HistoryMain([]string{"export", "--url", f.srv.URL, "--format=edn"}, &out, &errb); code != 0 || !strings.Contains(out.String(), ":f :buy") {
		t.Errorf("history export --url: %d %s %s", code, out.String(), errb.String())
	}

	// With an audit log: the export reads it (a start record first), and
	// after the log closes, the data directory alone gives the same file
	// with a stop record at its end.
	dir := t.TempDir()
	audit, err := lab.OpenAudit(f.lab, audit.Dir(dir), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = audit.Close() })
	if resp, b := f.call(t, "POST", "/api/stores/consensus/skus/IPHONE/buy", `{"region":"eu-west-1","qty":1}`, nil); resp.StatusCode != 200 {
		t.Fatalf("buy: %d %s", resp.StatusCode, b)
	}
	_, body = get("")
	if lines := strings.Split(strings.TrimSpace(body), "\n"); len(lines) != 2 || !strings.Contains(lines[0], `"type":"start"`) || !strings.Contains(lines[1], `"region":"eu-west-1"`) {
		t.Errorf("jsonl from the audit log:\n%s", body)
	}
	if err := audit.Close(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "h.jsonl")
	out.Reset()
	errb.Reset()
	if code := HistoryMain([]string{"export", "--data-dir", dir, "--out", file}, &out, &errb); code != 0 {
		t.Fatalf("history export --data-dir: %d %s", code, errb.String())
	}
	// The same records, and the stop record the clean close wrote.
	if b, _ := os.ReadFile(file); !strings.HasPrefix(string(b), body) || strings.Count(string(b)[len(body):], "\n") != 1 || !strings.Contains(string(b)[len(body):], `"type":"stop"`) {
		t.Errorf("offline export differs:\n%s\n---\n%s", b, body)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage"},
		{[]string{"import"}, 2, "unknown command"},
		{[]string{"export", "--format", "xml", "--data-dir", dir}, 2, "jsonl, porcupine, edn"},
		{[]string{"export", "--store", "nosql", "--data-dir", dir}, 2, "nosql"},
		{[]string{"export", "--sku", "a b", "--data-dir", dir}, 2, "SKU"},
		{[]string{"export", "--url", f.srv.URL, "--data-dir", dir}, 2, "not both"},
		{[]string{"export", "--verbose"}, 2, "unknown argument"},
		{[]string{"export", "--data-dir"}, 2, "needs a value"},
		{[]string{"export", "--data-dir", t.TempDir()}, 1, "has no audit log"},
		{[]string{"export", "--url", "ftp://x"}, 1, "not a lab's address"},
		{[]string{"export", "--url", f.srv.URL + "/nothing-here", "--format", "edn"}, 1, "404"},
	} {
		out.Reset()
		errb.Reset()
		if code := HistoryMain(c.args, &out, &errb); code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("history %v: %d %q, want %d mentioning %q", c.args, code, errb.String(), c.code, c.want)
		}
	}
	// A lab that is not there answers within the deadline, with advice.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	start := time.Now()
	if code := HistoryMain([]string{"export", "--url", dead.URL}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "no lab answered") || time.Since(start) > historyTimeout {
		t.Errorf("a stopped lab: %d %s", code, errb.String())
	}
}
