package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/audit"
	"caplab/lab/check"
	"caplab/lab/inventory"
)

// TestHistoryCheckMatchesAPICheck: "caplab history check" on a history
// exported by GET /api/history/export gives, for every store and SKU —
// geo included — the verdict GET /api/check gives: a linearizable
// consensus store, a replicated store that oversold under a cut (not
// linearizable, with its oversold count), a geo store that borrowed, and
// SKUs whose writes partly went unrecorded (a load's way), one of them
// restocked and judged again. Through the lab's audit log (the export a
// lab with --data-dir gives), again after a reset (the file's reset record
// starts its history afresh), and in porcupine's format. (The export from
// memory: lab's TestMemoryExportJudgedAsChecked.)
func TestHistoryCheckMatchesAPICheck(t *testing.T) {
	f := newAPI(t)
	dir := t.TempDir()
	audit, err := lab.OpenAudit(f.lab, audit.Dir(dir), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = audit.Close() })

	checkedSKUs, resumes := playEveryStore(t, f)
	compareChecks(t, f, checkedSKUs, resumes, "audit log")

	// The same story after a reset: the log holds both, the check judges
	// what follows the reset.
	if resp, b := f.call(t, "POST", "/api/reset", `{}`, nil); resp.StatusCode != 200 {
		t.Fatalf("reset: %d %s", resp.StatusCode, b)
	}
	checkedSKUs, resumes = playEveryStore(t, f)
	compareChecks(t, f, checkedSKUs, resumes, "after a reset")
}

// playEveryStore runs the story and returns the (store, SKU)s it touched,
// and which cuts the verdicts must name.
func playEveryStore(t *testing.T, f *apiFixture) ([]audit.CheckSubject, cutsExpected) {
	t.Helper()
	ok := func(method, path, body string) {
		t.Helper()
		if resp, b := f.call(t, method, path, body, nil); resp.StatusCode != 200 && resp.StatusCode != 503 && resp.StatusCode != 409 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
	}
	buyFrom := func(store, sku string, regions ...string) {
		t.Helper()
		var wg sync.WaitGroup
		for _, r := range regions {
			wg.Go(func() { ok("POST", "/api/stores/"+store+"/skus/"+sku+"/buy", `{"region":"`+r+`","qty":1}`) })
		}
		wg.Wait()
	}
	// consensus: concurrent buys and linearizable reads.
	ok("PUT", "/api/stores/consensus/skus/IPHONE", `{"region":"us-east-1","quantity":5}`)
	buyFrom("consensus", "IPHONE", "us-east-1", "eu-west-1", "ap-southeast-1")
	ok("GET", "/api/stores/consensus/skus/IPHONE?region=eu-west-1", "")
	buyFrom("consensus", "IPHONE", "us-east-1", "ap-southeast-1")

	// replicated W=1 under a cut: both sides sell the last units.
	ok("PUT", "/api/stores/replicated/skus/IPHONE", `{"region":"us-east-1","quantity":2}`)
	if err := f.lab.WaitConverged(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	ok("POST", "/api/network/partition", `{"groups":[["us-east-1","eu-west-1"],["ap-southeast-1"]]}`)
	buyFrom("replicated", "IPHONE", "us-east-1", "us-east-1", "ap-southeast-1", "ap-southeast-1")
	ok("POST", "/api/network/heal", `{}`)

	// geo: a split stock, local buys, and one that must borrow.
	ok("PUT", "/api/stores/geo/skus/IPHONE", `{"region":"us-east-1","allocations":{"us-east-1":1,"eu-west-1":3,"ap-southeast-1":2}}`)
	buyFrom("geo", "IPHONE", "eu-west-1", "ap-southeast-1")
	ok("POST", "/api/stores/geo/skus/IPHONE/buy", `{"region":"us-east-1","qty":2}`)
	ok("GET", "/api/stores/geo/skus/IPHONE?region=eu-west-1", "")

	// A load's way: writes left out of the history while recorded ones run
	// (BF-1 on consensus, BF-2 on geo), then BF-1 restocked and bought,
	// recorded: judged again from the restock.
	ctx := context.Background()
	var landsLate atomic.Bool
	wrote := map[inventory.Store]*atomic.Bool{inventory.Consensus: new(atomic.Bool), inventory.Geo: new(atomic.Bool)}
	skip := lab.WithOpRecording(ctx, lab.OpRecording{SkipHistory: true, SkipPublish: true})
	for _, s := range []inventory.Store{inventory.Consensus, inventory.Geo} {
		sku := map[inventory.Store]string{inventory.Consensus: "BF-1", inventory.Geo: "BF-2"}[s]
		if _, err := f.lab.Stock(ctx, s, sku, "us-east-1", 100); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 12 {
			c := ctx
			if i%3 != 0 {
				c = skip
			}
			wg.Go(func() {
				o, err := f.lab.Buy(c, s, sku, []string{"us-east-1", "eu-west-1", "ap-southeast-1"}[i%3], 1)
				if c != skip {
					return
				}
				if err != nil || o.Outcome == inventory.Unavailable && s == inventory.Consensus {
					landsLate.Store(true)
				}
				// A busy machine's timeouts can open a breaker that then
				// refuses them all: no write, no cut.
				if err == nil && (o.Outcome == inventory.OK || o.Outcome == inventory.Unavailable || s == inventory.Geo && o.Outcome != inventory.Overloaded) {
					wrote[s].Store(true)
				}
			})
		}
		wg.Wait()
	}
	ok("PUT", "/api/stores/consensus/skus/BF-1", `{"region":"us-east-1","quantity":7}`)
	buyFrom("consensus", "BF-1", "eu-west-1", "us-east-1")

	var out []audit.CheckSubject
	for _, s := range []inventory.Store{inventory.Consensus, inventory.Replicated, inventory.Geo} {
		out = append(out, audit.CheckSubject{Store: s, SKU: "IPHONE"})
	}
	return append(out, audit.CheckSubject{Store: inventory.Consensus, SKU: "BF-1"}, audit.CheckSubject{Store: inventory.Geo, SKU: "BF-2"}),
		cutsExpected{bf1Resumes: wrote[inventory.Consensus].Load() && !landsLate.Load(), bf2Cut: wrote[inventory.Geo].Load()}
}

// cutsExpected: whether BF-1's judging must resume at its restock (an
// unrecorded write got through and none may land later), and whether
// BF-2 must be cut (an unrecorded write got through).
type cutsExpected struct{ bf1Resumes, bf2Cut bool }

// ctxFor is a context that ends after d (and with the test).
func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// compareChecks exports the history, runs "caplab history check --json"
// on it, and compares every verdict with GET /api/check's.
func compareChecks(t *testing.T, f *apiFixture, subjects []audit.CheckSubject, resumes cutsExpected, how string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "history.jsonl")
	var out, errb bytes.Buffer
	if code := HistoryMain([]string{"export", "--url", f.srv.URL, "--out", file}, &out, &errb); code != 0 {
		t.Fatalf("%s: export: %d %s", how, code, errb.String())
	}
	out.Reset()
	code := HistoryMain([]string{"check", "--json", file}, &out, &errb)
	if code != 1 { // the replicated store oversold
		t.Errorf("%s: history check exited %d, want 1 (not linearizable): %s", how, code, errb.String())
	}
	fromFile := map[audit.CheckSubject]check.Result{}
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r check.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: a verdict line: %v: %s", how, err, sc.Text())
		}
		fromFile[audit.CheckSubject{Store: r.Store, SKU: r.SKU}] = r
	}
	for _, s := range subjects {
		resp, b := f.call(t, "GET", fmt.Sprintf("/api/check?store=%s&sku=%s", s.Store, s.SKU), "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: /api/check %v: %d %s", how, s, resp.StatusCode, b)
		}
		api := decodeJSON[check.Result](t, b)
		file, ok := fromFile[s]
		if !ok {
			t.Errorf("%s: history check gave no verdict on %v", how, s)
			continue
		}
		if a, b := comparable(api), comparable(file); !reflect.DeepEqual(a, b) {
			t.Errorf("%s: %v: /api/check and history check differ:\n api  %+v\n file %+v", how, s, a, b)
		}
		t.Logf("%s: %s %s: linearizable=%v oversold=%d judged=%d cuts=%d: %s", how, s.Store, s.SKU, api.Linearizable, api.Oversold, api.Operations, len(api.Cuts), api.Explanation)
		if api.Unplaced != nil { // the picture marks the same answer
			_, page := f.call(t, "GET", fmt.Sprintf("/api/check/visual?store=%s&sku=%s", s.Store, s.SKU), "", nil)
			if !strings.Contains(string(page), "could not be placed") || !strings.Contains(string(page), api.Unplaced.Sentence[:30]) {
				t.Errorf("%s: /api/check/visual of %v does not mark %q", how, s, api.Unplaced.Sentence)
			}
		}
		switch {
		case s.Store == inventory.Replicated && (api.Linearizable || api.Unplaced == nil || api.Oversold == 0):
			t.Errorf("%s: the replicated store sold 4 of 2 under a cut, yet %+v", how, api)
		case s.Store != inventory.Replicated && !api.Linearizable:
			t.Errorf("%s: %v judged not linearizable: %s", how, s, api.Explanation)
		case s.SKU == "BF-1" && resumes.bf1Resumes && (len(api.Cuts) != 1 || api.Cuts[0].Resumed.IsZero()):
			t.Errorf("%s: BF-1's cuts %+v: judging should resume at its restock", how, api.Cuts)
		case s.SKU == "BF-2" && resumes.bf2Cut && len(api.Cuts) == 0:
			t.Errorf("%s: BF-2 had unrecorded writes, yet no cut", how)
		}
	}

	// porcupine's format: the same linearizability verdict per store.
	for _, s := range subjects {
		pfile := filepath.Join(t.TempDir(), "p.jsonl")
		if code := HistoryMain([]string{"export", "--url", f.srv.URL, "--format", "porcupine", "--store", string(s.Store), "--sku", s.SKU, "--out", pfile}, &out, &errb); code != 0 {
			t.Fatalf("%s: porcupine export: %d %s", how, code, errb.String())
		}
		out.Reset()
		code := HistoryMain([]string{"check", "--json", "--store", string(s.Store), pfile}, &out, &errb)
		var r check.Result
		if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &r); err != nil {
			t.Fatalf("%s: porcupine check of %v: %d %v %q %s", how, s, code, err, out.String(), errb.String())
		}
		if want := fromFile[s]; r.Linearizable != want.Linearizable || (code == 0) != want.Linearizable {
			t.Errorf("%s: %v from porcupine's format: linearizable %v (exit %d), from JSON Lines %v", how, s, r.Linearizable, code, want.Linearizable)
		}
	}
	if b, err := os.ReadFile(file); err == nil && !strings.Contains(string(b), `"type":"geo_call"`) {
		t.Errorf("%s: the export holds no geo calls", how)
	}
}

// comparable is the part of a verdict a recorded history reproduces: all
// but the geo store's live figures (conservation audit, counters).
func comparable(r check.Result) check.Result {
	if r.Geo != nil {
		g := *r.Geo
		g.Conservation, g.AuditError, g.Stranded, g.Borrowed = nil, "", 0, 0
		r.Geo = &g
	}
	for i := range r.Cuts { // times survive JSON with their wall clock only
		r.Cuts[i].At, r.Cuts[i].Resumed = r.Cuts[i].At.UTC(), r.Cuts[i].Resumed.UTC()
	}
	return r
}
