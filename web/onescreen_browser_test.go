package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
	"caplab/lessons"

	"github.com/chromedp/chromedp"
)

// One screen for the whole story, in chromium against a real lab with the
// built-in course: after stocking, isolating Singapore and buying on each
// store from two regions, the Buy buttons, each store's outcome in both
// shops, the score and the verdict are inside the viewport at 1440×900 and
// at 1920×1080 in presenter mode; nothing covers the join box; presenter
// mode is large and high-contrast; a poll's answer reaches no viewer before
// the reveal; axe-core finds no serious or critical violation in either
// theme.

// axeVersion is the vendored axe-core (web/testdata/axe/README.md).
const axeVersion = "4.10.3"

func TestOneScreen(t *testing.T) { oneScreen(t, "") }

// TestScreenshots writes the README's screenshots (the same story as
// TestOneScreen). It runs only when CAPLAB_SCREENSHOTS names a directory
// (relative paths are taken from the repository root):
//
//	CAPLAB_SCREENSHOTS=docs go test ./web -run TestScreenshots
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("CAPLAB_SCREENSHOTS")
	if dir == "" {
		t.Skip("set CAPLAB_SCREENSHOTS=docs to write the screenshots")
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", dir) // go test runs in web/
	}
	oneScreen(t, dir)
}

func oneScreen(t *testing.T, shots string) {
	exe := chromiumPath(t) // skips loudly without chromium
	l := startLab(t, lab.Config{LatencyScale: 0.05})
	cat, errs := lessons.LoadCatalog("")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s := New(l, Options{Token: testToken, Logger: quietLogger(), Lessons: LessonsFrom(cat, lessons.LabOf(l)), JoinURL: "http://192.168.1.20:8080/"})
	t.Cleanup(s.Close)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	b := &browserLab{apiFixture: &apiFixture{lab: l, srv: srv, s: s}, url: srv.URL, browser: startChromium(t, exe, 1440, 900)}
	save := func(name string, png []byte) {
		t.Helper()
		if shots == "" {
			return
		}
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", filepath.Join(shots, name), len(png))
	}

	presenter := b.presenterTab(t, "")
	runActions(t, presenter, "a 1440×900 laptop", chromedp.EmulateViewport(1440, 900))
	viewer := b.viewerTab(t, "/")

	// The lesson opens at "Singapore is cut off": its poll is open.
	const lessonID, step = "last-iphone", 1
	b.mustCall(t, "POST", "/api/regions/us-east-1/lead", `{}`, 200)
	b.mustCall(t, "PUT", "/api/lesson", fmt.Sprintf(`{"lesson":%q,"step":%d}`, lessonID, step), 200)
	const answerProse = "Singapore alone is one region of three"
	spoilers := []string{answerProse, "expect unavailable", `"answer"`}
	waitJS(t, viewer, "the viewer sees the question", `document.getElementById('poll-question').textContent`, textHas("A shopper in Singapore clicks Buy"))
	if got := evalJS[string](t, viewer, `document.getElementById('poll-options').textContent`); !strings.Contains(got, "It refuses — try later") || strings.Contains(got, "unavailable") {
		t.Errorf("the options read %q, want words (\"It refuses — try later\"), not tokens", got)
	}
	noSpoilers := func(when string) {
		t.Helper()
		page := evalJS[string](t, viewer, `document.documentElement.outerHTML`)
		api := viewerGET(t, b.url+"/api/lesson")
		for _, sp := range spoilers {
			if strings.Contains(page, sp) && sp != `"answer"` {
				t.Errorf("%s: the audience page contains %q", when, sp)
			}
			if strings.Contains(api, sp) {
				t.Errorf("%s: GET /api/lesson without the token contains %q: %s", when, sp, api)
			}
		}
		if lesson := viewerGET(t, b.url+"/api/lessons/"+lessonID); strings.Contains(lesson, answerProse) || strings.Contains(lesson, "expect unavailable") {
			t.Errorf("%s: GET /api/lessons/%s without the token gives the answer away", when, lessonID)
		}
	}
	noSpoilers("poll open")
	if got := evalJS[string](t, viewer, `document.getElementById('panel-lesson').hidden + '|' + document.getElementById('tab-lesson').getAttribute('aria-selected')`); got != "false|true" {
		t.Errorf("an open lesson shows its tab: %s", got)
	}

	// A vote from the viewer; the projected page shows no tally until the reveal.
	clickWhenClear(t, viewer, "vote", "poll-option-2")
	waitUntil(t, 10*time.Second, "the presenter's page counts the vote", func() (bool, string) {
		got := evalJS[string](t, presenter, `document.getElementById('poll-tally').textContent`)
		return strings.Contains(got, "1 vote"), got
	})

	// The reveal: now the viewer gets the answer and the prose after the ask.
	b.mustCall(t, "POST", "/api/poll/reveal", `{}`, 200)
	waitJS(t, viewer, "the viewer sees the answer prose", `document.getElementById('lesson-step').textContent`, textHas(answerProse))
	if api := viewerGET(t, b.url+"/api/lesson"); !strings.Contains(api, answerProse) || !strings.Contains(api, `"answer":"unavailable"`) {
		t.Errorf("after the reveal GET /api/lesson lacks the answer: %s", api)
	}
	if got := evalJS[string](t, viewer, `document.getElementById('poll-answer').textContent`); !strings.Contains(got, "It refuses — try later") || !strings.Contains(got, "You predicted it") {
		t.Errorf("viewer's answer line: %q", got)
	}

	// Run the step: the partition and the refusal, as a story.
	clickWhenClear(t, presenter, "run the step", "lesson-run")
	waitJS(t, presenter, "the step ran", `document.getElementById('lesson-effects').textContent`, textHas("Singapore tried to buy"))
	story := evalJS[string](t, viewer, `document.getElementById('lesson-effects').innerText`)
	for _, want := range []string{"The network splits", "Singapore tried to buy on the consensus store → refused after", "as expected"} {
		if !strings.Contains(story, want) {
			t.Errorf("the step's story %q lacks %q", story, want)
		}
	}
	if api := viewerGET(t, b.url+"/api/lesson"); !strings.Contains(api, "expect unavailable") {
		t.Errorf("once the step ran its expectations are shown: %s", api)
	}

	// The story on the stage: 3 units in every store, a buy on each store
	// from Singapore (cut off) and N. Virginia.
	b.mustCall(t, "POST", "/api/network/heal", `{}`, 200)
	runActions(t, presenter, "stock 3 everywhere", chromedp.SetValue(chromedp.ID("stock-both-qty"), "3"), chromedp.Click(chromedp.ID("stock-both")))
	waitUntil(t, 15*time.Second, "both stores stocked", func() (bool, string) {
		ok := 0
		for _, o := range l.History("IPHONE-15-PRO").Operations {
			if o.Op == inventory.OpStock && o.Outcome == inventory.OK && o.Qty == 3 {
				ok++
			}
		}
		return ok == len(inventory.Stores), fmt.Sprint(ok, " stocks")
	})
	wctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.WaitConverged(wctx); err != nil {
		t.Fatalf("replicas converge after the stock: %v", err)
	}
	clickWhenClear(t, presenter, "isolate Singapore (key 3)", "preset-isolate-ap-southeast-1")
	waitJS(t, presenter, "the map shows the cut", `document.getElementById('`+linkID("us-east-1", "ap-southeast-1")+`').dataset.state`, textIs("cut"))
	evalJS[bool](t, presenter, `document.getElementById('buy-qty-ap-southeast-1').value = 2; document.getElementById('buy-qty-us-east-1').value = 2; true`)
	for _, st := range inventory.Stores {
		for _, r := range []string{"ap-southeast-1", "us-east-1"} {
			id := "buy-" + string(st) + "-" + r
			evalJS[bool](t, presenter, `delete document.getElementById('outcome-`+string(st)+`-`+r+`').dataset.outcome, true`) // an earlier answer
			clickWhenClear(t, presenter, "click "+id, id)
			waitJS(t, presenter, id+" answered", `document.getElementById('outcome-`+string(st)+`-`+r+`').dataset.outcome || ''`, func(s string) bool { return s != "" })
		}
	}
	waitJS(t, presenter, "the consensus store refused Singapore", `document.getElementById('outcome-consensus-ap-southeast-1').dataset.outcome`, textIs("unavailable"))
	waitJS(t, presenter, "the replicated store sold in Singapore", `document.getElementById('outcome-replicated-ap-southeast-1').dataset.outcome`, textIs("ok"))
	waitJS(t, presenter, "the score counts the oversold unit", `document.getElementById('score-replicated-oversold').textContent`, textIs("1"))
	if got := evalJS[string](t, presenter, `['sold','refused','oversold'].map(k => document.getElementById('score-consensus-' + k).textContent).join(',')`); got != "2,1,0" {
		var h []string
		for _, o := range l.History("IPHONE-15-PRO").Operations {
			if o.Store == inventory.Consensus {
				h = append(h, fmt.Sprintf("%d %s %s %s %s–%s", o.ID, o.Op, o.Region, o.Outcome, o.Call.Format("05.000"), o.Return.Format("05.000")))
			}
		}
		t.Errorf("consensus score sold,refused,oversold = %s, want 2,1,0 (stock writes apart); history: %s", got, strings.Join(h, "; "))
	}
	waitJS(t, presenter, "the verdict: replicated not linearizable", `document.getElementById('verdict-replicated')?.textContent || ''`, textHas("not linearizable"))
	evalJS[bool](t, presenter, `document.getElementById('toast').textContent = '', true`) // transient

	// What must be on the first screen.
	var onStage []string
	for _, st := range inventory.Stores {
		for _, r := range []string{"ap-southeast-1", "us-east-1"} {
			onStage = append(onStage, "buy-"+string(st)+"-"+r, "outcome-"+string(st)+"-"+r)
		}
		onStage = append(onStage, "score-"+string(st), "verdict-"+string(st))
	}
	onStage = append(onStage, "map", "buy-consensus-eu-west-1", "buy-replicated-eu-west-1")
	assertInView(t, presenter, "1440×900", onStage)
	axeClean(t, presenter, "laptop theme")
	save("screenshot-main.png", shot(t, presenter))

	if os.Getenv("CAPLAB_SCREENSHOTS_MORE") != "" {
		selectTab := func(id string) { runActions(t, presenter, "tab "+id, chromedp.Click(chromedp.ID("tab-"+id))) }
		selectTab("timeline")
		save("screenshot-timeline.png", shot(t, presenter))
		selectTab("checker")
		save("screenshot-checker.png", shot(t, presenter))
		selectTab("lesson")
		runActions(t, presenter, "1280×720", chromedp.EmulateViewport(1280, 720))
		save("screenshot-720.png", shot(t, presenter))
	}

	// Presenter mode on a 1920×1080 projector, the next question open.
	runActions(t, presenter, "a 1920×1080 projector", chromedp.EmulateViewport(1920, 1080))
	b.open(t, presenter, "/?present=1")
	b.mustCall(t, "PUT", "/api/lesson", fmt.Sprintf(`{"lesson":%q,"step":%d}`, lessonID, step+1), 200)
	waitJS(t, presenter, "the poll is open", `document.getElementById('poll').hidden`, textIs("false"))
	clickWhenClear(t, viewer, "vote", "poll-option-0")
	waitUntil(t, 10*time.Second, "the vote arrives", func() (bool, string) {
		got := evalJS[string](t, presenter, `document.getElementById('poll-tally').textContent`)
		return strings.Contains(got, "1 vote"), got
	})
	if got := evalJS[string](t, presenter, `(() => { const u = document.querySelector('#poll-tally ul'); return u ? getComputedStyle(u).display : 'none'; })()`); got != "none" {
		t.Errorf("the projected page shows the live tally before the reveal (display %s)", got)
	}
	if fs := evalJS[float64](t, presenter, `parseFloat(getComputedStyle(document.body).fontSize)`); fs < 20 {
		t.Errorf("presenter mode at 1920×1080: body font %.1f px, want ≥ 20", fs)
	}
	if small := evalJS[string](t, presenter, `(() => {
		const k = document.getElementById('map').getScreenCTM().a;
		return [...document.querySelectorAll('#map .link-label, #map .region .name, #map .region .role, #map .region .city')]
			.map(e => [e.textContent, parseFloat(getComputedStyle(e).fontSize) * k])
			.filter(([, px]) => px < 16).map(([t, px]) => t + ' ' + px.toFixed(1) + 'px').join('; ');
	})()`); small != "" {
		t.Errorf("map labels under 16 px on the projector: %s", small)
	}
	assertInView(t, presenter, "1920×1080 presenter", append(onStage, "poll", "join-qr"))
	if cover := evalJS[string](t, presenter, `(() => {
		const j = document.getElementById('join'), r = j.getBoundingClientRect(), out = [];
		for (let x = r.left + 12; x < r.right - 10; x += 12) for (let y = r.top + 12; y < r.bottom - 10; y += 12) {
			const e = document.elementFromPoint(x, y);
			if (e && !j.contains(e)) out.push((e.id || e.tagName) + '@' + Math.round(x) + ',' + Math.round(y));
		}
		const boxes = [...document.querySelectorAll('.stage .card, .dock-main')].filter(c => { const b = c.getBoundingClientRect(); return b.left < r.right && b.right > r.left && b.top < r.bottom && b.bottom > r.top; }).map(c => c.className);
		return out.slice(0, 5).concat(boxes).join(' ');
	})()`); cover != "" {
		t.Errorf("something overlaps the join box: %s", cover)
	}
	save("screenshot-presenter.png", shot(t, presenter))

	// A region crashed: every text still ≥ 4.5:1, in both themes.
	b.mustCall(t, "POST", "/api/regions/ap-southeast-1/crash", `{}`, 200)
	waitJS(t, presenter, "the crashed shop", `document.getElementById('shop-ap-southeast-1').className`, textHas("down"))
	axeClean(t, presenter, "presenter theme, poll open, a region crashed")
	svgContrast(t, presenter, "presenter theme")

	// A viewer on a phone: the poll first, targets ≥ 44 px.
	phone := b.viewerTab(t, "/")
	runActions(t, phone, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	waitJS(t, phone, "the phone shows the poll", `document.getElementById('poll').hidden`, textIs("false"))
	if small := evalJS[string](t, phone, `[...document.querySelectorAll('button, select, input, [role=tab]')].filter(e => e.offsetParent && !e.closest('[hidden]')).map(e => [e.id || e.textContent.trim(), e.getBoundingClientRect().height]).filter(([, h]) => h < 44).map(([i, h]) => i + ' ' + h.toFixed(0)).join('; ')`); small != "" {
		t.Errorf("touch targets under 44 px on a phone: %s", small)
	}
	assertInView(t, phone, "phone", []string{"poll-option-0", "poll-option-1"})
	axeClean(t, phone, "a viewer on a phone")
	save("screenshot-phone.png", shot(t, phone))
}

// viewerGET fetches url without the token and returns the body.
func viewerGET(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertInView fails unless every element (by id) has a box inside the
// viewport: visible without scrolling.
func assertInView(t *testing.T, tab context.Context, where string, ids []string) {
	t.Helper()
	raw := evalJS[string](t, tab, `(() => {
		window.scrollTo(0, 0);
		const out = [];
		for (const id of `+jsonOf(t, ids)+`) {
			const e = document.getElementById(id);
			if (!e) { out.push(id + ': missing'); continue; }
			const r = e.getBoundingClientRect();
			if (r.width < 1 || r.height < 1 || r.left < 0 || r.top < 0 || r.right > innerWidth + 0.5 || r.bottom > innerHeight + 0.5)
				out.push(id + ': ' + [r.left, r.top, r.right, r.bottom].map(Math.round).join(',') + ' in ' + innerWidth + '×' + innerHeight);
		}
		return JSON.stringify(out);
	})()`)
	var out []string
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		t.Errorf("%s: not inside the viewport: %s", where, o)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// axeClean runs axe-core (WCAG 2 A and AA rules) on the page and fails on
// any serious or critical violation. axe is injected for the test only.
func axeClean(t *testing.T, tab context.Context, where string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "axe", "axe.min.js"))
	if err != nil {
		t.Fatalf("axe-core: %v (see web/testdata/axe/README.md)", err)
	}
	ctx, cancel := context.WithTimeout(tab, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](string(src)+"\n;true")); err != nil {
		t.Fatalf("inject axe-core: %v", err)
	}
	if v := evalJS[string](t, tab, `axe.version`); v != axeVersion {
		t.Fatalf("axe-core %s, want the vendored %s", v, axeVersion)
	}
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}, resultTypes: ['violations']})
		.then(r => JSON.stringify(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
		.map(v => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 6).map(n => n.target.join(' ') + ' — ' + (n.failureSummary || '').replace(/\s+/g, ' ')).join(' | '))))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe.run: %v", err)
	}
	var vs []string
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Errorf("axe-core, %s: %s", where, v)
	}
}

// svgContrast checks the map's and the timeline's SVG text (which axe
// skips) against the colour behind it: ≥ 4.5:1.
func svgContrast(t *testing.T, tab context.Context, where string) {
	t.Helper()
	bad := evalJS[string](t, tab, `(() => {
		const rgb = (c) => { const m = c.match(/[\d.]+/g); return m ? m.slice(0, 3).map(Number) : [0, 0, 0]; };
		const lum = (c) => { const v = rgb(c).map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); }); return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
		const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
		const sea = getComputedStyle(document.querySelector('#map .sea')).fill;
		const out = [];
		for (const e of document.querySelectorAll('#map text')) {
			if (!e.textContent.trim() || e.closest('.graticule')) continue;
			const cs = getComputedStyle(e);
			const dot = e.classList.contains('idx') && e.parentNode.querySelector('.dot');
			const bg = dot ? getComputedStyle(dot).fill : cs.paintOrder.startsWith('stroke') && cs.stroke !== 'none' ? cs.stroke : sea;
			const r = ratio(cs.fill, bg);
			if (r < 4.5) out.push(e.textContent + ' ' + r.toFixed(2));
		}
		return out.join('; ');
	})()`)
	if bad != "" {
		t.Errorf("%s: map text under 4.5:1: %s", where, bad)
	}
}

// shot is a screenshot of the viewport.
func shot(t *testing.T, tab context.Context) []byte {
	t.Helper()
	evalJS[bool](t, tab, `window.scrollTo(0, 0), new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
	ctx, cancel := context.WithTimeout(tab, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return png
}
