package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// newCourseBrowser is a browser lab with the built-in course.
func newCourseBrowser(t *testing.T, scale float64) (*browserLab, *lab.Lab) {
	t.Helper()
	exe := chromiumPath(t)
	l := startLab(t, lab.Config{LatencyScale: scale})
	cat, errs := lessons.LoadCatalog("")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s := New(l, Options{Token: testToken, Logger: quietLogger(), Lessons: LessonsFrom(cat, l), JoinURL: "http://192.168.1.20:8080/"})
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

// unused until the next tests use it
var _ = time.Second
