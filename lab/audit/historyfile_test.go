package audit

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"caplab/lab/check"
	"caplab/lab/internal/edntest"
	"caplab/lab/inventory"
)

// storyRecords is a small recorded history in audit records: something
// before a reset (forgotten), then a consensus SKU with a budget-style gap
// (two records of one gap: the later stands), a replicated SKU that
// oversold, and a geo SKU with its calls.
func storyRecords() []Record {
	geoOp := func(id int, o inventory.Op, outcome inventory.Kind, qty, quantity int, call, ret int64) inventory.Operation {
		op := ckOp(id, o, outcome, qty, quantity, call, ret)
		op.Store = inventory.Geo
		return op
	}
	rep := func(o inventory.Operation) inventory.Operation { o.Store = inventory.Replicated; o.SKU = "R"; return o }
	call := func(region string, kind inventory.GeoCallKind, delta, left int, from, to int64) inventory.GeoCall {
		c := inventory.GeoCall{SKU: "X", Region: region, Kind: kind, Delta: delta, Left: left, Call: ckMs(from), Return: ckMs(to)}
		if kind == inventory.GeoSet {
			c.Set, c.Delta = delta, 0
		}
		return c
	}
	opRec := func(o inventory.Operation) Record { return Record{Type: RecordOperation, At: o.Return, Operation: &o} }
	callRec := func(c inventory.GeoCall) Record { return Record{Type: RecordGeoCall, At: c.Return, GeoCall: &c} }
	gapOpen := inventory.RecordingGap{ID: 1, Store: inventory.Consensus, SKU: "X", Reason: inventory.GapSkipped, From: ckMs(55), Writes: 0}
	gapDone := gapOpen
	gapDone.To, gapDone.Writes = ckMs(60), 1
	return []Record{
		{Type: RecordStart, Run: "r1", Regions: []string{"us-east-1", "eu-west-1"}},
		opRec(ckOp(90, inventory.OpStock, inventory.OK, 9, 9, 0, 1)),
		{Type: RecordReset, Run: "r1"},
		opRec(ckOp(1, inventory.OpStock, inventory.OK, 10, 10, 0, 10, ckVersion(1))),
		opRec(ckOp(2, inventory.OpBuy, inventory.OK, 1, 9, 20, 30, ckVersion(2), ckBase(1))),
		{Type: RecordGap, Run: "r1", At: gapOpen.From, Gap: &gapOpen},
		opRec(ckOp(3, inventory.OpBuy, inventory.OK, 1, 7, 50, 80, ckVersion(4), ckBase(3), ckRegion("eu-west-1"))),
		opRec(ckOp(4, inventory.OpRead, inventory.OK, 0, 8, 57, 58, ckVersion(3))),
		{Type: RecordGap, Run: "r1", At: gapDone.From, Gap: &gapDone},
		opRec(rep(ckOp(5, inventory.OpStock, inventory.OK, 1, 1, 0, 10, ckVersion(1)))),
		opRec(rep(ckOp(6, inventory.OpBuy, inventory.OK, 1, 0, 20, 40, ckVersion(2), ckBase(1)))),
		opRec(rep(ckOp(7, inventory.OpBuy, inventory.OK, 1, 0, 25, 45, ckVersion(3), ckBase(1), ckRegion("eu-west-1")))),
		opRec(geoOp(8, inventory.OpStock, inventory.OK, 3, 3, 0, 10)),
		callRec(call("us-east-1", inventory.GeoSet, 2, 2, 1, 5)),
		callRec(call("eu-west-1", inventory.GeoSet, 1, 1, 1, 6)),
		opRec(geoOp(9, inventory.OpBuy, inventory.OK, 1, 0, 20, 30)),
		callRec(call("eu-west-1", inventory.GeoBuy, -1, 0, 21, 29)),
		{Type: RecordFault, Run: "r1", Fault: &inventory.Fault{ID: 1, Kind: inventory.FaultHeal, Detail: "all links up", At: ckMs(70)}},
	}
}

func eachRecord(recs []Record) func(func(Record) error) error {
	return func(fn func(Record) error) error {
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// TestHistoryFileRoundTrip: a JSON Lines export read back holds what
// followed the last reset — operations, faults, the last record of each
// gap, geo calls, regions — and judging it gives the verdicts judging the
// records directly gives, for every store; the porcupine exports, read
// back, give the same linearizability; the geo store's EDN is a valid
// Jepsen history with its calls and the gap.
func TestHistoryFileRoundTrip(t *testing.T) {
	recs := storyRecords()
	var direct HistoryFile
	for _, r := range recs {
		direct.add(r)
	}
	var b bytes.Buffer
	if err := Write(&b, FormatJSONL, Filter{}, eachRecord(recs)); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHistory(&b, "story.jsonl", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Operations) != 9 || len(h.GeoCalls) != 3 || len(h.Faults) != 1 || len(h.Gaps()) != 1 || h.Gaps()[0].Writes != 1 ||
		!reflect.DeepEqual(h.Regions, []string{"us-east-1", "eu-west-1"}) {
		t.Fatalf("read back: %d operations, %d calls, %d faults, gaps %+v, regions %v", len(h.Operations), len(h.GeoCalls), len(h.Faults), h.Gaps(), h.Regions)
	}
	want := map[CheckSubject]bool{{inventory.Consensus, "X"}: true, {inventory.Replicated, "R"}: false, {inventory.Geo, "X"}: true}
	if subj := h.Subjects(); len(subj) != len(want) {
		t.Fatalf("subjects %v", subj)
	}
	for s, lin := range want {
		got := check.Judge(h.Recorded(s.Store, s.SKU), s.Store, s.SKU, time.Minute)
		exp := check.Judge(direct.Recorded(s.Store, s.SKU), s.Store, s.SKU, time.Minute)
		for _, r := range []*check.Result{&got, &exp} {
			for i := range r.Cuts {
				r.Cuts[i].At, r.Cuts[i].Resumed = r.Cuts[i].At.UTC(), r.Cuts[i].Resumed.UTC()
			}
		}
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("%v: from the file %+v\n directly %+v", s, got, exp)
		}
		if got.Linearizable != lin {
			t.Errorf("%v: linearizable %v, want %v: %s", s, got.Linearizable, lin, got.Explanation)
		}
		if s.Store == inventory.Consensus && (len(got.Cuts) != 1 || got.NotJudged != 1 || got.Cuts[0].InFlight != 1) {
			t.Errorf("consensus X: cuts %+v, not judged %d", got.Cuts, got.NotJudged)
		}

		// porcupine's format, read back: the same verdict.
		b.Reset()
		if err := Write(&b, FormatPorcupine, Filter(s), eachRecord(recs)); err != nil {
			t.Fatal(err)
		}
		p, err := ReadHistory(bytes.NewReader(b.Bytes()), "p.jsonl", s.Store)
		if err != nil {
			t.Fatalf("%v: porcupine: %v\n%s", s, err, b.String())
		}
		if pr := check.Judge(p.Recorded(s.Store, s.SKU), s.Store, s.SKU, time.Minute); pr.Linearizable != lin {
			t.Errorf("%v from porcupine's format: linearizable %v, want %v: %s\n%s", s, pr.Linearizable, lin, pr.Explanation, b.String())
		}
	}
	b.Reset()
	if err := Write(&b, FormatEDN, Filter{Store: inventory.Geo}, eachRecord(recs)); err != nil {
		t.Fatal(err)
	}
	edntest.CheckHistory(t, b.String(), 2+3, 1) // 2 operations and 3 calls; the heal (the gap is the consensus store's)
	if !strings.Contains(b.String(), ":f :allocation-buy, :value [\"X\" [\"eu-west-1\" -1 0]]") {
		t.Errorf("the geo EDN lacks the buy call:\n%s", b.String())
	}
	b.Reset()
	if err := Write(&b, FormatEDN, Filter{Store: inventory.Consensus}, eachRecord(recs)); err != nil {
		t.Fatal(err)
	}
	lines := edntest.CheckHistory(t, b.String(), 3, 2) // op 4 (after the gap) left out; the heal and the gap
	for _, m := range lines {
		if m["id"] == int64(3) && m["type"] != edntest.KW("invoke") && m["type"] != edntest.KW("info") {
			t.Errorf("the buy in flight at the gap completes %v, want :info (it may have applied)", m["type"])
		}
	}
	if !strings.Contains(b.String(), ":f :unrecorded-writes") {
		t.Errorf("the consensus EDN does not mark the gap:\n%s", b.String())
	}
}

// TestReadHistoryRefusesWhatIsNoHistory: every error names the file and
// line and says what is wrong.
func TestReadHistoryRefusesWhatIsNoHistory(t *testing.T) {
	op := `{"type":"operation","operation":{"id":1,"store":"consensus","sku":"X","region":"us-east-1","op":"buy","qty":1,"outcome":"ok","call":"2026-01-01T00:00:01Z","return":"2026-01-01T00:00:02Z"}}`
	for _, c := range []struct{ name, file, want string }{
		{"empty", "", "is empty"},
		{"blank lines only", "\n\n  \n", "is empty"},
		{"not JSON", "hello\n", "f:1 is neither"},
		{"JSON of neither kind", `{"a":1}`, "f:1 is neither"},
		{"unknown record type", `{"type":"start"}` + "\n" + `{"type":"party"}`, `f:2: a record of type "party"`},
		{"operation record without operation", `{"type":"operation"}`, "f:1: an operation record without"},
		{"unknown store", strings.Replace(op, "consensus", "nosql", 1), "nosql"},
		{"unknown op", strings.Replace(op, `"op":"buy"`, `"op":"steal"`, 1), "steal"},
		{"unknown outcome", strings.Replace(op, `"outcome":"ok"`, `"outcome":"maybe"`, 1), "maybe"},
		{"returns before its call", strings.Replace(op, "00:00:02Z", "00:00:00Z", 1), "returns before it is called"},
		{"a gap of no store", `{"type":"gap","gap":{"id":1,"store":"x","from":"2026-01-01T00:00:00Z"}}`, "no store of the lab"},
		{"a geo call of no kind", `{"type":"geo_call","geoCall":{"sku":"X","region":"r","kind":"steal","call":"2026-01-01T00:00:00Z","return":"2026-01-01T00:00:00Z"}}`, `kind "steal"`},
		{"a line too long", op + "\n" + `{"type":"start","regions":["` + strings.Repeat("a", MaxHistoryLine) + `"]}`, "f:2: a line longer than"},
		{"porcupine: unknown op", `{"clientId":0,"input":{"sku":"X","op":"steal"},"call":0,"output":{},"return":1}`, `f:1: input.op "steal"`},
		{"porcupine: then a record", `{"clientId":0,"input":{"sku":"X","op":"buy","qty":1},"call":0,"output":{"outcome":"ok"},"return":1}` + "\n" + op, "f:2: not a porcupine operation"},
	} {
		_, err := ReadHistory(strings.NewReader(c.file), "f", "")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	// Another service's porcupine log: class, rank and client ids are
	// ignored (here all wrong), the verdict stands.
	log := strings.Join([]string{
		`{"clientId":0,"input":{"sku":"X","region":"a","op":"stock","qty":2},"call":0,"output":{"outcome":"ok","quantity":2},"return":10}`,
		`{"clientId":0,"input":{"sku":"X","region":"a","op":"buy","qty":1,"class":0,"rank":0},"call":12,"output":{"unknown":true},"return":6}`,
		`{"clientId":0,"input":{"sku":"X","region":"b","op":"buy","qty":1,"class":0,"rank":0},"call":20,"output":{"unknown":true},"return":25}`,
		`{"clientId":0,"input":{"sku":"X","region":"b","op":"read"},"call":30,"output":{"outcome":"ok","quantity":0},"return":40}`,
	}, "\n")
	h, err := ReadHistory(strings.NewReader(log), "other.jsonl", inventory.Replicated)
	if err != nil {
		t.Fatal(err)
	}
	if r := check.Judge(h.Recorded(inventory.Replicated, "X"), inventory.Replicated, "X", time.Minute); !r.Linearizable || r.Indeterminate != 2 {
		t.Errorf("another service's log (both unknown buys applied): %+v", r)
	}
}

// FuzzReadHistory: any input is a history or an error naming its line —
// never a panic — and a history read is judged without one.
func FuzzReadHistory(f *testing.F) {
	var b bytes.Buffer
	_ = Write(&b, FormatJSONL, Filter{}, eachRecord(storyRecords()))
	f.Add(b.String())
	b.Reset()
	_ = Write(&b, FormatPorcupine, Filter{}, eachRecord(storyRecords()))
	f.Add(b.String())
	b.Reset()
	_ = Write(&b, FormatPorcupine, Filter{Store: inventory.Geo}, eachRecord(storyRecords()))
	f.Add(b.String())
	f.Add(`{"type":"reset"}`)
	f.Add("{}\n{}")
	f.Fuzz(func(t *testing.T, file string) {
		h, err := ReadHistory(strings.NewReader(file), "f", "")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f") {
				t.Fatalf("error without the file's name: %v", err)
			}
			return
		}
		for _, s := range h.Subjects() {
			check.Judge(h.Recorded(s.Store, s.SKU), s.Store, s.SKU, 100*time.Millisecond)
		}
	})
}

// TestKilledRunIsCutAtTheRestart: an audit log that spans a restart. A
// run that ended without a stop record was killed; a buy it had in flight
// was never recorded, so the next run's first buy answers one unit fewer
// than the recorded ones explain. Judged from the file, that is no
// accusation: the killed run is cut at the restart and the SKU judged
// again from its first restock. The same records with a stop record (a
// clean stop: the file claims to hold everything) are judged not
// linearizable — and after the restart's restock a double sale is caught.
func TestKilledRunIsCutAtTheRestart(t *testing.T) {
	opRec := func(o inventory.Operation) Record {
		return Record{Type: RecordOperation, Run: "r", At: o.Return, Operation: &o}
	}
	regions := []string{"us-east-1", "eu-west-1"}
	records := func(clean bool, after ...inventory.Operation) []Record {
		recs := []Record{
			{Type: RecordStart, Run: "r1", At: ckMs(0), Regions: regions},
			opRec(ckOp(1, inventory.OpStock, inventory.OK, 10, 10, 1, 10)),
			opRec(ckOp(2, inventory.OpBuy, inventory.OK, 1, 9, 20, 30)),
		}
		if clean {
			recs = append(recs, Record{Type: RecordStop, Run: "r1", At: ckMs(40)})
		}
		recs = append(recs,
			Record{Type: RecordStart, Run: "r2", At: ckMs(100), Regions: regions},
			opRec(ckOp(1, inventory.OpBuy, inventory.OK, 1, 7, 110, 120, ckRegion("eu-west-1")))) // 8 was sold by the lost buy
		for _, o := range after {
			recs = append(recs, opRec(o))
		}
		return recs
	}
	judge := func(recs []Record) check.Result {
		t.Helper()
		h := &HistoryFile{}
		for _, r := range recs {
			h.add(r)
		}
		return check.Judge(h.Recorded(inventory.Consensus, "X"), inventory.Consensus, "X", 10*time.Second)
	}

	if r := judge(records(true)); r.Linearizable {
		t.Errorf("a clean stop claims the file holds every operation, so 9 → 7 with nothing between must be caught; got %+v", r)
	}
	r := judge(records(false))
	if !r.Linearizable || r.NotJudged == 0 || len(r.Cuts) == 0 || r.Cuts[0].Reason != inventory.GapResumed {
		t.Fatalf("a killed run must be cut at the restart, not accused: %+v", r)
	}
	if !strings.Contains(r.Explanation, "restock X to judge it again") {
		t.Errorf("explanation %q, want it to say a restock judges X again", r.Explanation)
	}

	// After the restart's restock: judged again, correct answers pass …
	restock := ckOp(2, inventory.OpStock, inventory.OK, 5, 5, 200, 210)
	good := []inventory.Operation{restock, ckOp(3, inventory.OpBuy, inventory.OK, 1, 4, 220, 230), ckOp(4, inventory.OpBuy, inventory.OK, 1, 3, 240, 250, ckRegion("eu-west-1"))}
	r = judge(records(false, good...))
	if !r.Linearizable || r.Operations != 3 || !strings.Contains(r.Explanation, "judged from its first restock since") {
		t.Errorf("after a restock: %+v, want linearizable over its 3 operations and the explanation to say so", r)
	}
	// … and a double sale is caught.
	bad := []inventory.Operation{restock, ckOp(3, inventory.OpBuy, inventory.OK, 1, 4, 220, 230), ckOp(4, inventory.OpBuy, inventory.OK, 1, 4, 240, 250, ckRegion("eu-west-1"))}
	if r = judge(records(false, bad...)); r.Linearizable {
		t.Errorf("two buys answering 4 left after a restock of 5 must be caught: %+v", r)
	}
}
