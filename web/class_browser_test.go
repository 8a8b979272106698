package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"caplab/lab"
	"caplab/lessons"
)

// A class, not a toolbox: the presenter's layout at the sizes a class
// uses, the page following the lesson's product, the narrated punchlines,
// phones, accessibility. Screenshots go to CAPLAB_CLASS_SHOTS when set.

// newCourseBrowser is a browser lab with the built-in course. Its store
// calls get 3 s instead of the 1 s a latency scale of 0.05 gives: these
// tests are about what the page says, and on two cores shared with other
// runs a lesson's geo borrow (a debit in one regional group, a credit in
// another) was seen to take more than 1 s and stop the step before its
// punchline.
func newCourseBrowser(t *testing.T, scale float64) (*browserLab, *lab.Lab) {
	t.Helper()
	exe := chromiumPath(t)
	l := startLab(t, lab.Config{LatencyScale: scale, RequestTimeout: 3 * time.Second})
	cat, errs := lessons.LoadCatalog("")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s := New(l, Options{Token: testToken, Logger: quietLogger(), Lessons: LessonsFrom(cat, lessons.LabOf(l)), JoinURL: "http://192.168.1.20:8080/"})
	t.Cleanup(s.Close)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &browserLab{apiFixture: &apiFixture{lab: l, srv: srv, s: s}, url: srv.URL, browser: startChromium(t, exe, 1440, 900)}, l
}

// classShot writes a screenshot when CAPLAB_CLASS_SHOTS names a directory.
func classShot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CAPLAB_CLASS_SHOTS")
	if dir == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), shot(t, tab), 0o644); err != nil {
		t.Fatal(err)
	}
}

// assertShown fails unless every element (by id) is in the viewport and
// not hidden by a scrolling box it sits in: the point at the middle of its
// top and bottom edges hits it (or something inside it).
func assertShown(t *testing.T, tab context.Context, where string, ids []string) {
	t.Helper()
	assertInView(t, tab, where, ids)
	raw := evalJS[string](t, tab, `(() => {
		const out = [];
		for (const id of `+jsonOf(t, ids)+`) {
			const e = document.getElementById(id);
			if (!e) continue;
			const r = e.getBoundingClientRect(), x = r.left + Math.min(r.width / 2, 20);
			for (const y of [r.top + 2, r.bottom - 2]) {
				const at = document.elementFromPoint(x, y);
				if (!at || !(e === at || e.contains(at))) { out.push(id + ' at y=' + Math.round(y) + ' shows ' + (at ? (at.id || at.className || at.tagName) : 'nothing')); break; }
			}
		}
		return out.join('; ');
	})()`)
	if raw != "" {
		t.Errorf("%s: hidden behind a box's edge: %s", where, raw)
	}
}

// pollIDs are the open poll's question, every option, the tally and (for
// the presenter) the reveal button.
func pollIDs(t *testing.T, tab context.Context, reveal bool) []string {
	t.Helper()
	n := evalJS[int](t, tab, `document.querySelectorAll('#poll-options .poll-option').length`)
	if n < 2 {
		t.Fatalf("the poll shows %d options", n)
	}
	ids := []string{"poll-question", "poll-tally"}
	for i := range n {
		ids = append(ids, fmt.Sprintf("poll-option-%d", i))
	}
	if reveal {
		ids = append(ids, "poll-reveal")
	}
	return ids
}

// Presenter mode with a lesson question open: at 1920×1080 and at
// 1440×900 the question, every option, the tally and the reveal controls
// are in view, before and after the reveal; the step's prose too.
func TestPresenterLayout(t *testing.T) {
	b, _ := newCourseBrowser(t, 0.05)
	presenter := b.presenterTab(t, "&present=1")
	viewer := b.viewerTab(t, "/")
	b.mustCall(t, "PUT", "/api/lesson", `{"lesson":"last-iphone","step":1}`, 200)
	waitJS(t, presenter, "the poll is open", `document.getElementById('poll').hidden`, textIs("false"))
	waitJS(t, presenter, "presenter mode with a lesson", `document.body.className`, func(s string) bool { return strings.Contains(s, "present") && strings.Contains(s, "lesson-open") })
	clickWhenClear(t, viewer, "vote", "poll-option-2")
	waitJS(t, presenter, "the vote arrives", `document.getElementById('poll-tally').textContent`, textHas("1 vote"))
	for _, size := range []struct{ w, h int }{{1920, 1080}, {1440, 900}} {
		where := fmt.Sprintf("%d×%d presenter", size.w, size.h)
		runActions(t, presenter, where, chromedp.EmulateViewport(int64(size.w), int64(size.h)))
		evalJS[bool](t, presenter, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
		assertShown(t, presenter, where+", question open", append(pollIDs(t, presenter, true), "lesson-step", "map", "score-consensus", "score-geo", "verdict"))
		classShot(t, presenter, fmt.Sprintf("presenter-%d-open.png", size.w))
	}
	b.mustCall(t, "POST", "/api/poll/reveal", `{}`, 200)
	waitJS(t, presenter, "the answer is out", `document.getElementById('poll-answer').hidden`, textIs("false"))
	for _, size := range []struct{ w, h int }{{1920, 1080}, {1440, 900}} {
		where := fmt.Sprintf("%d×%d presenter", size.w, size.h)
		runActions(t, presenter, where, chromedp.EmulateViewport(int64(size.w), int64(size.h)))
		evalJS[bool](t, presenter, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
		ids := append(pollIDs(t, presenter, false), "poll-answer")
		n := evalJS[int](t, presenter, `document.querySelectorAll('#poll-tally li').length`)
		if n < 3 {
			t.Errorf("%s: the revealed tally has %d rows", where, n)
		}
		assertShown(t, presenter, where+", answer revealed", append(ids, "lesson-step"))
		if bottom := evalJS[float64](t, presenter, `Math.max(...[...document.querySelectorAll('#poll-tally li')].map(e => e.getBoundingClientRect().bottom))`); bottom > float64(size.h) {
			t.Errorf("%s: the tally ends at %.0f px of %d", where, bottom, size.h)
		}
		classShot(t, presenter, fmt.Sprintf("presenter-%d-revealed.png", size.w))
	}
	axeClean(t, presenter, "presenter mode, a lesson's answer revealed")
}

// runStep runs a lesson step through the API, as the page's Run does.
func runStep(t *testing.T, b *browserLab, lesson string, step int) {
	t.Helper()
	b.mustCall(t, "PUT", "/api/lesson", fmt.Sprintf(`{"lesson":%q,"step":%d}`, lesson, step), 200)
	body := b.mustCall(t, "POST", fmt.Sprintf("/api/lessons/%s/steps/%d/run", lesson, step), `{}`, 200)
	if strings.Contains(string(body), `"failed":true`) {
		t.Fatalf("%s step %d failed: %s", lesson, step+1, body)
	}
}

// The page follows the lesson: a step on another product switches the
// product, the score and the checker to it, on the presenter's page and
// on a viewer's; each shop answer names its product and step.
func TestStoryModeFollowsTheProduct(t *testing.T) {
	b, _ := newCourseBrowser(t, 0.05)
	presenter := b.presenterTab(t, "")
	viewer := b.viewerTab(t, "/")
	for _, tab := range []context.Context{presenter, viewer} {
		if got := evalJS[string](t, tab, `document.getElementById('sku').value`); got != "IPHONE-15-PRO" {
			t.Fatalf("the page starts on %q", got)
		}
	}
	// The picker gives each lesson's length in minutes.
	if got := evalJS[string](t, presenter, `[...document.querySelectorAll('#lesson-select option')].filter(o => o.value).map(o => o.textContent).filter(s => !/ · ~\d+ min\)$/.test(s)).join('; ')`); got != "" {
		t.Errorf("lessons in the picker without minutes: %s", got)
	}
	runStep(t, b, "stale-reads", 0)
	runStep(t, b, "stale-reads", 1)
	for name, tab := range map[string]context.Context{"presenter": presenter, "viewer": viewer} {
		waitJS(t, tab, name+": the product follows the lesson", `document.getElementById('sku').value + ' ' + document.getElementById('score-sku').textContent`, textIs("TICKET TICKET"))
		waitJS(t, tab, name+": the score counts TICKET's sale", `document.getElementById('score-consensus-sold').textContent`, textIs("2"))
		waitJS(t, tab, name+": the checker judges TICKET", `(() => { const v = document.getElementById('verdict'); return v.dataset.sku + ' ' + (document.getElementById('verdict-consensus') || {}).textContent; })()`,
			func(s string) bool { return strings.HasPrefix(s, "TICKET ") && strings.Contains(s, "linearizable") })
		waitJS(t, tab, name+": the shop names the product and step", `document.querySelector('#outcome-consensus-us-east-1 .o-ctx')?.textContent || ''`, textIs("TICKET · step 2"))
	}
	// The step's newest story lines are captions over the map, for everyone.
	for name, tab := range map[string]context.Context{"presenter": presenter, "viewer": viewer} {
		waitJS(t, tab, name+": the step's story over the map", `document.getElementById('stage-caption').hidden ? '' : document.getElementById('stage-caption').innerText`,
			textHas("Singapore reads the consensus store"))
	}
	// The timeline at 1440×900 shows every region's lane without scrolling.
	runActions(t, presenter, "1440×900", chromedp.EmulateViewport(1440, 900))
	clickWhenClear(t, presenter, "the timeline tab", "tab-timeline")
	waitJS(t, presenter, "every lane in the dock", `(() => {
		const p = document.getElementById('panel-timeline').getBoundingClientRect();
		const lanes = [...document.querySelectorAll('#timeline-lanes .lane-bg')];
		if (lanes.length < 3) return 'lanes: ' + lanes.length;
		const last = lanes[lanes.length - 1].getBoundingClientRect();
		return last.bottom <= p.bottom + 1 ? 'all' : 'last lane ends at ' + Math.round(last.bottom) + ', the panel at ' + Math.round(p.bottom);
	})()`, textIs("all"))
}

// The newest lessons narrate their punchlines in the learner's words, on
// the stage and in the story, and a viewer who joins late reads the same
// sentences as one who watched.
func TestNarratedPunchlines(t *testing.T) {
	b, _ := newCourseBrowser(t, 0.05)
	presenter := b.presenterTab(t, "")
	live := b.viewerTab(t, "/")
	story := func(tab context.Context) string {
		return evalJS[string](t, tab, `document.getElementById('lesson-effects').innerText`)
	}
	cells := func(tab context.Context) string {
		return evalJS[string](t, tab, `[...document.querySelectorAll('.outcome')].map(e => e.id + ': ' + e.textContent.replace(/\s+/g, ' ').trim() + ' | ' + e.title).join('\n')`)
	}
	lateSees := func(what string) {
		t.Helper()
		late := b.viewerTab(t, "/")
		waitJS(t, late, "the late viewer has the lesson", `document.getElementById('lesson-effects').innerText`, func(s string) bool { return s == story(live) })
		waitUntil(t, 20*time.Second, what+": a late viewer's shops say what the live viewer's say", func() (bool, string) {
			l, k := cells(live), cells(late)
			return l == k, "live:\n" + l + "\nlate:\n" + k
		})
		if got := cells(live); !strings.Contains(got, " · step ") {
			t.Errorf("%s: no shop answer names its step:\n%s", what, got)
		}
	}

	t.Run("locks-and-fencing: the fenced late write is refused", func(t *testing.T) {
		for step := range 5 {
			runStep(t, b, "locks-and-fencing", step)
		}
		waitJS(t, live, "the woken shop's refusal is told", `document.getElementById('lesson-effects').innerText`, textHas("Singapore wakes up and writes its sale of FENCED-PHONE with its fencing token → refused: the storage has already seen a newer token, so nothing is sold twice."))
		waitJS(t, live, "the shop says it was fenced off", `document.getElementById('outcome-consensus-ap-southeast-1').textContent`, textHas("Fenced off"))
		if s := story(live); strings.Contains(s, "line ") || strings.Contains(s, "reserve FENCED-PHONE") {
			t.Errorf("a story line falls back to a raw command:\n%s", s)
		}
		lateSees("locks-and-fencing")
	})
	t.Run("clocks-lie: the checker blames the skew", func(t *testing.T) {
		for step := range 3 {
			runStep(t, b, "clocks-lie", step)
		}
		for _, want := range []string{"stamped by Ireland's clock, running", "ahead of real time, so last-writer-wins kept it"} {
			waitJS(t, live, "the checker blames the clock", `document.getElementById('lesson-effects').innerText`, textHas(want))
		}
		b.mustCall(t, "PUT", "/api/lesson", `{"lesson":"clocks-lie","step":1}`, 200)
		waitJS(t, live, "the skew is told", `document.getElementById('lesson-effects').innerText`, textHas("Ireland's clock jumps 5.0 s ahead of true time"))
		waitJS(t, live, "the merge that lost a sale is told over the map", `document.getElementById('stage-caption').innerText`, textHas("Last writer wins kept Ireland's write"))
		lateSees("clocks-lie")
	})
	t.Run("geo-partitioning: stranded units", func(t *testing.T) {
		for step := range 2 {
			runStep(t, b, "geo-partitioning", step)
		}
		waitJS(t, live, "the stranded unit is told", `document.getElementById('lesson-effects').innerText`, textHas("Ireland tried to buy on the geo store → stranded after"))
		waitJS(t, live, "…naming where", `document.getElementById('lesson-effects').innerText`, textHas("1 unit stranded in Singapore"))
		waitJS(t, live, "the last read says where the rest is", `document.getElementById('outcome-geo-eu-west-1').textContent`, textHas("0 in stock here; the rest is out of reach"))
		if s := story(live); regexp.MustCompile(`(?m)(: | )N\.(as expected)?$`).MatchString(s) {
			t.Errorf("a line is cut at an abbreviation:\n%s", s)
		}
		lateSees("geo-partitioning")
	})
	t.Run("black-friday: the SLO missed", func(t *testing.T) {
		// What this test is about is the narration, not the machine's
		// capacity: on two cores shared with other runs the lesson's own
		// availability expectations can miss (buys past their 1 s
		// deadline), so the steps' results are not required to pass — the
		// cut step judges the p99 first, so its line is always told.
		t.Cleanup(func() { b.call(t, "DELETE", "/api/load", "", nil) })
		// The questions open with the doors, before any shopper: the Load
		// panel has no verdict to give the answer away yet.
		b.mustCall(t, "PUT", "/api/lesson", `{"lesson":"black-friday","step":0}`, 200)
		waitJS(t, live, "the question opens with the doors", `document.getElementById('poll-question').textContent`, textHas("Which store keeps selling in Singapore"))
		if st := string(b.mustCall(t, "GET", "/api/load", "", 200)); !strings.Contains(st, `"state":"idle"`) && !strings.Contains(st, `"state":"stopped"`) {
			t.Errorf("a load runs while the audience predicts: %.200s", st)
		}
		// The presenter's keys: v reveals, q opens the step's next question.
		waitJS(t, presenter, "the presenter has the question", `document.getElementById('poll-question').textContent`, textHas("Which store keeps selling in Singapore"))
		evalJS[bool](t, presenter, `document.activeElement && document.activeElement.blur && document.activeElement.blur(), true`)
		runActions(t, presenter, "key v", chromedp.KeyEvent("v"))
		waitJS(t, live, "v revealed the answer", `document.getElementById('poll-answer').hidden`, textIs("false"))
		waitJS(t, presenter, "the presenter's page has the answer", `document.getElementById('poll-answer').hidden`, textIs("false"))
		runActions(t, presenter, "key q", chromedp.KeyEvent("q"))
		waitJS(t, live, "q opened the next question", `document.getElementById('poll-question').textContent`, textHas("Which store will sell more units than it had?"))
		for step := range 2 {
			b.mustCall(t, "PUT", "/api/lesson", fmt.Sprintf(`{"lesson":"black-friday","step":%d}`, step), 200)
			b.mustCall(t, "POST", fmt.Sprintf("/api/lessons/black-friday/steps/%d/run", step), `{}`, 200)
		}
		waitJS(t, live, "the p99 against the SLO is told", `document.getElementById('lesson-effects').innerText`, textHas("it misses the 150 ms SLO"))
		if s := story(live); !strings.Contains(s, "The consensus store's slowest buys (p99 in the last 8.0 s): Singapore") {
			t.Errorf("the SLO line does not name the store and region:\n%s", s)
		}
	})
}

// docWidth is how wide the document is against the viewport.
func docWidth(t *testing.T, tab context.Context) (doc, view int) {
	t.Helper()
	raw := evalJS[string](t, tab, `document.documentElement.scrollWidth + ' ' + innerWidth`)
	if _, err := fmt.Sscan(raw, &doc, &view); err != nil {
		t.Fatal(err)
	}
	return doc, view
}

// A viewer on a phone (390×844): nothing wider than the screen on the
// main page or during a poll, the whole map on screen, the answer and
// "you predicted it" beside the question, no control a viewer cannot use,
// no empty glyph boxes; axe-core clean. The presenter's main page is axe
// clean too (presenter mode: TestPresenterLayout).
func TestPhone(t *testing.T) {
	b, _ := newCourseBrowser(t, 0.05)
	presenter := b.presenterTab(t, "")
	axeClean(t, presenter, "the presenter's main page")
	phone := b.viewerTab(t, "/")
	runActions(t, phone, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	evalJS[bool](t, phone, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
	noOverflow := func(where string) {
		t.Helper()
		if doc, view := docWidth(t, phone); doc > view {
			wide := evalJS[string](t, phone, `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth + 1 && !e.closest('.sr-only')).slice(0, 8).map(e => (e.id || e.className || e.tagName) + ' ' + Math.round(e.getBoundingClientRect().right)).join('; ')`)
			t.Errorf("%s: the document is %d px wide in a %d px viewport; too wide: %s", where, doc, view, wide)
		}
	}
	noOverflow("main page")
	if got := evalJS[string](t, phone, `(() => { const r = document.getElementById('map').getBoundingClientRect(); return Math.round(r.left) + ',' + Math.round(r.right); })()`); got == "" {
		t.Fatal("no map")
	} else {
		var left, right int
		fmt.Sscanf(strings.Replace(got, ",", " ", 1), "%d %d", &left, &right)
		if left < 0 || right > 390 {
			t.Errorf("the map spans %s px of a 390 px screen", got)
		}
	}
	for _, id := range []string{"verdict-refresh", "lesson-select", "lesson-run", "group-reset", "speed", "buy-consensus-us-east-1"} {
		if shown := evalJS[bool](t, phone, `(() => { const e = document.getElementById('`+id+`'); return !!e && e.getClientRects().length > 0; })()`); shown {
			t.Errorf("a viewer's phone shows %s, which a viewer cannot use", id)
		}
	}
	// The glyphs the page uses render (no empty boxes): the outcome icons.
	if missing := evalJS[string](t, phone, `['✓','∅','⊘','⚡','↺','◷','♛','✂'].filter(c => !document.fonts.check('16px system-ui', c) ).join('')`); missing != "" {
		t.Logf("glyphs the fonts may lack: %s", missing)
	}

	// A poll: the question first, the page no wider.
	b.mustCall(t, "PUT", "/api/lesson", `{"lesson":"last-iphone","step":1}`, 200)
	waitJS(t, phone, "the phone shows the poll", `document.getElementById('poll').hidden`, textIs("false"))
	noOverflow("poll open")
	assertInView(t, phone, "phone, poll open", []string{"poll-question", "poll-option-0", "poll-option-1", "poll-option-2"})
	clickWhenClear(t, phone, "vote", "poll-option-2")
	waitJS(t, phone, "the vote is taken", `document.getElementById('poll-status').textContent`, textHas("Your vote"))
	b.mustCall(t, "POST", "/api/poll/reveal", `{}`, 200)
	waitJS(t, phone, "the answer", `document.getElementById('poll-answer').textContent`, textHas("You predicted it"))
	noOverflow("answer revealed")
	assertInView(t, phone, "phone, answer revealed", []string{"poll-question", "poll-answer"})
	classShot(t, phone, "phone-revealed.png")
	axeClean(t, phone, "a viewer's phone, answer revealed")
	b.mustCall(t, "PUT", "/api/lesson", `{"lesson":""}`, 200)
	waitJS(t, phone, "the lesson closes", `document.getElementById('poll').hidden`, textIs("true"))
	classShot(t, phone, "phone-main.png")
	noOverflow("lesson closed")
	axeClean(t, phone, "a viewer's phone, main page")
}
