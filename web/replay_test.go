package web

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/check"
	"caplab/lab/inventory"
)

// Tests of scrubbing back (GET /api/state?at=T) and of the anomaly cards
// on a real lab: Singapore cut off, a sale on each side of the cut of
// the replicated store's last unit, the cut healed.

// cutStory is what cutAndSell did, and when.
type cutStory struct {
	reset, duringCut, afterHeal time.Time
	buys                        []inventory.Operation // the replicated store's two sales, Singapore's first
}

// cutAndSell resets the lab, stocks one unit of sku in the replicated
// store (converged everywhere) and two in the consensus store, cuts
// Singapore off, sells the replicated unit on both sides of the cut and
// a consensus unit in N. Virginia, then heals.
func cutAndSell(t *testing.T, f *apiFixture, sku string) cutStory {
	t.Helper()
	ok := func(method, path, body string, want int) []byte {
		t.Helper()
		resp, b := f.call(t, method, path, body, nil)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
		return b
	}
	ok("POST", "/api/reset", `{}`, 200)
	var s cutStory
	s.reset = f.lab.History("").StartedAt
	ok("PUT", "/api/stores/replicated/skus/"+sku, `{"region":"us-east-1","quantity":1}`, 200)
	ok("PUT", "/api/stores/consensus/skus/"+sku, `{"region":"us-east-1","quantity":2}`, 200)
	if err := f.lab.WaitConverged(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	ok("POST", "/api/network/partition", `{"groups":[["us-east-1","eu-west-1"],["ap-southeast-1"]]}`, 200)
	for _, r := range []string{"ap-southeast-1", "us-east-1"} {
		var o inventory.Outcome
		if err := json.Unmarshal(ok("POST", "/api/stores/replicated/skus/"+sku+"/buy", `{"region":"`+r+`","qty":1}`, 200), &o); err != nil || o.Outcome != inventory.OK {
			t.Fatalf("replicated buy in %s during the cut: %+v %v (W=1: each side sells)", r, o, err)
		}
	}
	ok("POST", "/api/stores/consensus/skus/"+sku+"/buy", `{"region":"us-east-1","qty":1}`, 200)
	s.duringCut = time.Now()
	ok("POST", "/api/network/heal", `{}`, 200)
	s.afterHeal = time.Now()
	for _, o := range f.lab.History(sku).Operations {
		if o.Store == inventory.Replicated && o.Op == inventory.OpBuy {
			s.buys = append(s.buys, o)
		}
	}
	if len(s.buys) != 2 {
		t.Fatalf("the History holds %d replicated buys, want 2", len(s.buys))
	}
	return s
}

// momentAt is GET /api/state?at=t, as a viewer asks (no token).
func momentAt(t *testing.T, f *apiFixture, at string) (int, []byte) {
	t.Helper()
	resp, b := f.call(t, "GET", "/api/state?at="+url.QueryEscape(at), "", map[string]string{"Authorization": ""})
	return resp.StatusCode, b
}

type momentJSON struct {
	lab.State
	At     time.Time `json:"at"`
	Replay struct {
		From       time.Time `json:"from"`
		To         time.Time `json:"to"`
		AsRecorded []string  `json:"asRecorded"`
	} `json:"replay"`
	Shops []saidOperation `json:"shops"`
}

func TestStateAtShowsTheCutAfterTheHeal(t *testing.T) {
	f := newAPI(t)
	s := cutAndSell(t, f, "SCRUB-1")
	if got := linkPair(f.lab.State(), "us-east-1", "ap-southeast-1"); got != "up/up" {
		t.Fatalf("live after the heal: links %s, want up/up", got)
	}

	code, b := momentAt(t, f, s.duringCut.UTC().Format(time.RFC3339Nano))
	if code != 200 {
		t.Fatalf("GET /api/state?at=<during the cut> (viewer): %d %s", code, b)
	}
	var m momentJSON
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if !m.At.Equal(s.duringCut) {
		t.Errorf("at %v, want %v", m.At, s.duringCut)
	}
	for _, pair := range [][2]string{{"us-east-1", "ap-southeast-1"}, {"eu-west-1", "ap-southeast-1"}} {
		if got := linkPair(m.State, pair[0], pair[1]); got != "cut/cut" {
			t.Errorf("during the cut, %s–%s is %s, want cut/cut", pair[0], pair[1], got)
		}
	}
	if got := linkPair(m.State, "us-east-1", "eu-west-1"); got != "up/up" {
		t.Errorf("during the cut, N. Virginia–Ireland is %s, want up/up", got)
	}
	shops := map[string]saidOperation{}
	for _, o := range m.Shops {
		shops[string(o.Store)+"/"+o.Region] = o
	}
	for _, k := range []string{"replicated/ap-southeast-1", "replicated/us-east-1", "consensus/us-east-1"} {
		o, ok := shops[k]
		if !ok || o.Outcome != inventory.OK || o.Op != inventory.OpBuy || o.Said.Text == "" {
			t.Errorf("shop %s: %+v, want its buy answered ok with its words (all: %s)", k, o, b)
		}
	}
	if len(shops) != 3 {
		t.Errorf("%d shops show an answer, want 3: %s", len(shops), b)
	}
	for _, c := range m.Counters {
		if c.Store == inventory.Replicated && (c.OK != 3 || c.Oversold != 1) {
			t.Errorf("replicated counts then: ok %d oversold %d, want 3 (stock and two sales) and 1", c.OK, c.Oversold)
		}
	}
	if !m.Replay.From.Equal(s.reset) || m.Replay.To.Before(s.afterHeal) || len(m.Replay.AsRecorded) == 0 {
		t.Errorf("window %+v: want from the reset %v to now, with what is as recorded", m.Replay, s.reset)
	}

	// After the heal: every link up again.
	code, b = momentAt(t, f, s.afterHeal.UTC().Format(time.RFC3339Nano))
	if code != 200 {
		t.Fatalf("after the heal: %d %s", code, b)
	}
	m = momentJSON{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if got := linkPair(m.State, "us-east-1", "ap-southeast-1"); got != "up/up" {
		t.Errorf("after the heal, the moment shows %s", got)
	}
	// Before the cut (just after the reset): up, no shop answered yet.
	code, b = momentAt(t, f, s.reset.Add(time.Microsecond).UTC().Format(time.RFC3339Nano))
	m = momentJSON{}
	if err := json.Unmarshal(b, &m); code != 200 || err != nil {
		t.Fatalf("just after the reset: %d %s", code, b)
	}
	if got := linkPair(m.State, "us-east-1", "ap-southeast-1"); got != "up/up" || len(m.Shops) != 0 {
		t.Errorf("just after the reset: links %s, %d shops", got, len(m.Shops))
	}
}

func TestStateAtRefusesTimesOutsideTheWindow(t *testing.T) {
	f := newAPI(t)
	if resp, b := f.call(t, "POST", "/api/reset", `{}`, nil); resp.StatusCode != 200 {
		t.Fatalf("reset: %d %s", resp.StatusCode, b)
	}
	from := f.lab.History("").StartedAt.UTC().Format(time.RFC3339Nano)
	before := f.lab.State()
	for _, tc := range []struct {
		name, at string
		want     []string
	}{
		{"not a time", "yesterday", []string{"RFC 3339", "yesterday"}},
		{"no time zone", "2025-11-28 09:00", []string{"RFC 3339"}},
		{"empty", "", []string{"RFC 3339"}},
		{"before the last reset", f.lab.History("").StartedAt.Add(-time.Second).UTC().Format(time.RFC3339Nano), []string{from, "the last reset", "now"}},
		{"in the future", time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano), []string{from, "the last reset", "now"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := momentAt(t, f, tc.at)
			if code != 400 {
				t.Fatalf("?at=%s: %d %s, want 400", tc.at, code, b)
			}
			msg := errorOf(t, b)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q does not name %q", msg, w)
				}
			}
		})
	}
	if shape(f.lab.State()) != shape(before) {
		t.Errorf("a refused ?at= changed the lab")
	}
}

// verdictHTML is the Checker tab's whole verdict for sku.
func verdictHTML(t *testing.T, f *apiFixture, sku string) string {
	t.Helper()
	resp, b := f.call(t, "GET", "/ui/verdict?full=1&sku="+sku, "", nil)
	var fr frame
	if err := json.Unmarshal(b, &fr); resp.StatusCode != 200 || err != nil {
		t.Fatalf("GET /ui/verdict: %d %s", resp.StatusCode, b)
	}
	return fr.HTML
}

func TestAnomalyCardNamesTheTwoBuys(t *testing.T) {
	f := newAPI(t)
	s := cutAndSell(t, f, "CARD-1")

	resp, b := f.call(t, "GET", "/api/check?store=replicated&sku=CARD-1", "", nil)
	var res check.Result
	if err := json.Unmarshal(b, &res); resp.StatusCode != 200 || err != nil {
		t.Fatalf("GET /api/check: %d %s", resp.StatusCode, b)
	}
	if res.Linearizable || res.Counterexample == nil {
		t.Fatalf("the replicated store oversold under the cut: want a failed check with a counterexample, got %s", b)
	}
	var ids []int
	for _, o := range res.Counterexample.Operations {
		ids = append(ids, o.ID)
	}
	if len(ids) != 2 || !(ids[0] == s.buys[0].ID && ids[1] == s.buys[1].ID || ids[0] == s.buys[1].ID && ids[1] == s.buys[0].ID) {
		t.Errorf("the counterexample is operations %v, want the two sales %d and %d", ids, s.buys[0].ID, s.buys[1].ID)
	}

	html := verdictHTML(t, f, "CARD-1")
	card := between(html, `id="anomaly-replicated"`, "</figure>")
	if card == "" {
		t.Fatalf("no anomaly card for the replicated store in\n%s", html)
	}
	for _, o := range s.buys {
		city := lab.CityName(o.Region)
		for _, want := range []string{
			city + " (" + o.Region + ")",
			"read 1 left, sold 1, left 0", // the count each read
			clock(o.Call), clock(o.Return),
			`data-op="` + itoa(o.ID) + `"`,
		} {
			if !strings.Contains(card, want) {
				t.Errorf("the card does not name %q (buy %d in %s):\n%s", want, o.ID, o.Region, card)
			}
		}
	}
	if !strings.Contains(card, "both") {
		t.Errorf("the card's sentence does not say both sold: %s", between(card, `class="anomaly-sentence"`, "</span>"))
	}
	last := maxTime(s.buys[0].Return, s.buys[1].Return)
	if !strings.Contains(card, `data-at="`+rfc3339(last)+`"`) {
		t.Errorf("the card is not linked to the moment the second sale answered (%s):\n%s", rfc3339(last), card)
	}
	// The moment it links to shows the cut.
	code, mb := momentAt(t, f, rfc3339(last))
	var m momentJSON
	if err := json.Unmarshal(mb, &m); code != 200 || err != nil {
		t.Fatalf("the card's moment: %d %s", code, mb)
	}
	if got := linkPair(m.State, "us-east-1", "ap-southeast-1"); got != "cut/cut" {
		t.Errorf("the card's moment shows the link %s, want cut", got)
	}
	// The consensus store sold its unit correctly: no card.
	if strings.Contains(html, `id="anomaly-consensus"`) {
		t.Errorf("a card for the consensus store, whose history is linearizable:\n%s", html)
	}
}

// A consensus history the History holds only in part (a write it did not
// record: the checker cuts there) is not accused: no counterexample, no
// card, although the recorded answers alone would not add up.
func TestNoAnomalyCardForATruncatedConsensusHistory(t *testing.T) {
	f := newAPI(t)
	ctx := context.Background()
	if _, err := f.lab.Stock(ctx, inventory.Consensus, "TRUNC-1", "us-east-1", 2); err != nil {
		t.Fatal(err)
	}
	if o, err := f.lab.Buy(ctx, inventory.Consensus, "TRUNC-1", "eu-west-1", 1); err != nil || o.Outcome != inventory.OK {
		t.Fatalf("recorded buy: %+v %v", o, err)
	}
	skip := lab.WithOpRecording(ctx, lab.OpRecording{SkipHistory: true})
	if o, err := f.lab.Buy(skip, inventory.Consensus, "TRUNC-1", "us-east-1", 1); err != nil || o.Outcome != inventory.OK {
		t.Fatalf("unrecorded buy: %+v %v", o, err)
	}
	if o, err := f.lab.Buy(ctx, inventory.Consensus, "TRUNC-1", "ap-southeast-1", 1); err != nil || o.Outcome != inventory.SoldOut {
		t.Fatalf("recorded buy after: %+v %v, want sold out", o, err)
	}
	res, err := f.lab.Check(inventory.Consensus, "TRUNC-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cuts) == 0 {
		t.Fatalf("the checker did not cut at the unrecorded write: %+v", res)
	}
	if !res.Linearizable || res.Counterexample != nil {
		t.Errorf("a correct store under a truncated history: linearizable %v, counterexample %+v", res.Linearizable, res.Counterexample)
	}
	if html := verdictHTML(t, f, "TRUNC-1"); strings.Contains(html, "anomaly-card") {
		t.Errorf("an anomaly card for a truncated, correct history:\n%s", html)
	}
}

// between is the part of s from the first from up to the next to ("" when
// from is absent).
func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i:]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return s
}

// linkPair is "a>b/b>a" link states ("cut/cut").
func linkPair(st lab.State, a, b string) string {
	var fwd, rev string
	for _, l := range st.Links {
		switch {
		case l.From == a && l.To == b:
			fwd = l.State
		case l.From == b && l.To == a:
			rev = l.State
		}
	}
	return fwd + "/" + rev
}

func TestReplaySteps(t *testing.T) {
	f := newAPI(t)
	s := cutAndSell(t, f, "STEPS-1")
	from := s.reset.UTC().Format(time.RFC3339Nano)
	resp, b := f.call(t, "GET", "/api/replay/steps?from="+url.QueryEscape(from), "", map[string]string{"Authorization": ""})
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/replay/steps (viewer): %d %s", resp.StatusCode, b)
	}
	var v struct {
		From  time.Time  `json:"from"`
		Start momentJSON `json:"start"`
		Steps []struct {
			At        time.Time        `json:"at"`
			Fault     *inventory.Fault `json:"fault"`
			State     *lab.State       `json:"state"`
			Operation *saidOperation   `json:"operation"`
			Caption   string           `json:"caption"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	faults := map[int]inventory.Fault{}
	for _, ft := range f.lab.History("").Faults {
		faults[ft.ID] = ft
	}
	var got []string
	for i, st := range v.Steps {
		if i > 0 && st.At.Before(v.Steps[i-1].At) {
			t.Errorf("step %d at %v before step %d at %v", i, st.At, i-1, v.Steps[i-1].At)
		}
		switch {
		case st.Fault != nil:
			if want := lab.SayFault(faults[st.Fault.ID]); st.Caption != want || want == "" {
				t.Errorf("fault %d's caption %q, want the live sentence %q", st.Fault.ID, st.Caption, want)
			}
			if st.State == nil {
				t.Fatalf("fault %d without the network it left", st.Fault.ID)
			}
			got = append(got, string(st.Fault.Kind)+":"+linkPair(*st.State, "us-east-1", "ap-southeast-1"))
		case st.Operation != nil:
			if st.Operation.Said.Text == "" || !strings.Contains(st.Caption, lab.CityName(st.Operation.Region)) || !strings.Contains(st.Caption, st.Operation.Said.Tag) {
				t.Errorf("operation %d: words %+v, caption %q", st.Operation.ID, st.Operation.Said, st.Caption)
			}
			got = append(got, string(st.Operation.Store)+"/"+st.Operation.Region+":"+string(st.Operation.Outcome))
		}
	}
	want := "partition:cut/cut replicated/ap-southeast-1:ok replicated/us-east-1:ok consensus/us-east-1:ok heal:up/up"
	if strings.Join(got, " ") != want {
		t.Errorf("steps\n %s\nwant\n %s", strings.Join(got, " "), want)
	}
	if linkPair(v.Start.State, "us-east-1", "ap-southeast-1") != "up/up" {
		t.Errorf("the replay starts with the link %s", linkPair(v.Start.State, "us-east-1", "ap-southeast-1"))
	}
	for _, q := range []string{"", "from=soon", "from=" + url.QueryEscape(s.reset.Add(-time.Second).UTC().Format(time.RFC3339Nano)),
		"from=" + url.QueryEscape(s.afterHeal.UTC().Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(s.duringCut.UTC().Format(time.RFC3339Nano))} {
		if resp, b := f.call(t, "GET", "/api/replay/steps?"+q, "", nil); resp.StatusCode != 400 {
			t.Errorf("GET /api/replay/steps?%s: %d %s, want 400", q, resp.StatusCode, b)
		}
	}
}

func TestClassReplayControl(t *testing.T) {
	f := newAPI(t)
	s := cutAndSell(t, f, "CLASS-1")
	from := s.reset.UTC().Format(time.RFC3339Nano)
	for _, tc := range []struct{ name, body, want string }{
		{"speed too high", `{"speed":100}`, "speed"},
		{"speed zero", `{"speed":0}`, "speed"},
		{"from and seconds", `{"from":"` + from + `","seconds":10}`, "either"},
		{"negative seconds", `{"seconds":-1}`, "seconds"},
		{"before the reset", `{"from":"` + s.reset.Add(-time.Minute).UTC().Format(time.RFC3339Nano) + `"}`, "the last reset"},
		{"to before from", `{"from":"` + s.afterHeal.UTC().Format(time.RFC3339Nano) + `","to":"` + s.duringCut.UTC().Format(time.RFC3339Nano) + `"}`, "before"},
		{"not a time", `{"from":"noon"}`, "RFC 3339"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := f.call(t, "POST", "/api/replay", tc.body, nil)
			if resp.StatusCode != 400 || !strings.Contains(strings.ToLower(errorOf(t, b)), strings.ToLower(tc.want)) {
				t.Errorf("POST /api/replay %s: %d %s, want 400 naming %q", tc.body, resp.StatusCode, b, tc.want)
			}
		})
	}
	if resp, b := f.call(t, "POST", "/api/replay", `{}`, map[string]string{"Authorization": ""}); resp.StatusCode != 401 {
		t.Errorf("POST /api/replay without the token: %d %s, want 401", resp.StatusCode, b)
	}
	var none struct {
		Replay *classReplay `json:"replay"`
	}
	if _, b := f.call(t, "GET", "/api/replay", "", nil); json.Unmarshal(b, &none) != nil || none.Replay != nil {
		t.Fatalf("refused requests started a replay: %s", b)
	}
	// The last 2 minutes at 4× (what the presenter's button asks): from the
	// reset at the earliest, playing now; a stop ends it.
	resp, b := f.call(t, "POST", "/api/replay", `{"seconds":120,"speed":4}`, nil)
	var got struct {
		Replay *classReplay `json:"replay"`
	}
	if err := json.Unmarshal(b, &got); resp.StatusCode != 200 || err != nil || got.Replay == nil {
		t.Fatalf("POST /api/replay: %d %s", resp.StatusCode, b)
	}
	if r := got.Replay; !r.From.Equal(s.reset) || r.Speed != 4 || r.To.Before(s.afterHeal) {
		t.Errorf("replay %+v: want from the reset %v at 4× to now", r, s.reset)
	}
	if resp, b := f.call(t, "DELETE", "/api/replay", ``, nil); resp.StatusCode != 200 || !strings.Contains(string(b), `"replay":null`) {
		t.Errorf("DELETE /api/replay: %d %s", resp.StatusCode, b)
	}
	if _, b := f.call(t, "GET", "/api/replay", "", map[string]string{"Authorization": ""}); !strings.Contains(string(b), `"replay":null`) {
		t.Errorf("after the stop, GET /api/replay: %s", b)
	}
}

// Every story line of a lesson carries its moment ("at": when its command
// finished), and GET /api/state?at= there shows the lab as that line left
// it: the page's ⏱ beside a story line shows it again.
func TestStoryLinesCarryTheirMoment(t *testing.T) {
	f := newLessonAPI(t)
	run := func(step string) []LessonCommandResult {
		t.Helper()
		resp, b := f.call(t, "POST", "/api/lessons/quiz/steps/"+step+"/run", `{}`, nil)
		var r struct {
			Results []LessonCommandResult `json:"results"`
			Failed  bool                  `json:"failed"`
		}
		if err := json.Unmarshal(b, &r); resp.StatusCode != 200 || err != nil || r.Failed {
			t.Fatalf("run step %s: %d %s", step, resp.StatusCode, b)
		}
		return r.Results
	}
	first := run("0")  // reset, wait leader, stock QUIZ 1, expect read
	second := run("1") // ask, buy consensus QUIZ from eu-west-1 expect ok, ask
	var prev time.Time
	for _, r := range append(first, second...) {
		if r.At.IsZero() || r.At.Before(prev) {
			t.Errorf("line %d (%s): at %v after %v", r.Line, r.Command, r.At, prev)
		}
		prev = r.At
	}
	shopsAt := func(at time.Time) map[string]saidOperation {
		t.Helper()
		code, b := momentAt(t, f, at.UTC().Format(time.RFC3339Nano))
		var m momentJSON
		if err := json.Unmarshal(b, &m); code != 200 || err != nil {
			t.Fatalf("GET /api/state?at=%v: %d %s", at, code, b)
		}
		shops := map[string]saidOperation{}
		for _, o := range m.Shops {
			shops[string(o.Store)+"/"+o.Region] = o
		}
		return shops
	}
	buy := second[1]
	if !strings.HasPrefix(buy.Command, "buy ") {
		t.Fatalf("step 2's second line is %q, want the buy", buy.Command)
	}
	if o, ok := shopsAt(buy.At)["consensus/eu-west-1"]; !ok || o.Op != inventory.OpBuy || o.Outcome != inventory.OK {
		t.Errorf("at the buy's line, Ireland's shop shows %+v, want its sale", o)
	}
	if _, ok := shopsAt(first[len(first)-1].At)["consensus/eu-west-1"]; ok {
		t.Errorf("at step 1's last line, Ireland's shop already shows the sale of step 2")
	}
}
