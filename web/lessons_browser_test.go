package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"caplab/lab"
	"caplab/lessons"
)

// The lesson panel in a real browser: Debian's chromium against the real
// server, a real lab and the quiz lesson of lessons_test.go. One lab and one
// browser serve both subtests, which run in order: the presenter steps
// through the quiz, a viewer (its own browser context, no token) follows
// and votes.

// lessonBrowser is a real lab with the quiz, its server and one chromium.
type lessonBrowser struct {
	url     string
	browser context.Context // the first tab, parent of every other
}

func newLessonBrowser(t *testing.T) *lessonBrowser {
	t.Helper()
	exe := chromiumPath(t) // skips loudly without chromium

	l := startLab(t, lab.Config{LatencyScale: 0.05})
	cat, _ := lessons.LoadCatalog(lessonDir(t))
	s := New(l, Options{Token: testToken, Logger: quietLogger(), Lessons: LessonsFrom(cat, lessons.LabOf(l))})
	t.Cleanup(s.Close)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	browser := startChromium(t, exe, 1280, 900)
	return &lessonBrowser{url: srv.URL, browser: browser}
}

// lessonOpen navigates tab to path and waits until the stream is live.
func (lb *lessonBrowser) lessonOpen(t *testing.T, tab context.Context, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(lb.url+path)); err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	lessonWait(t, tab, "the stream is live", `document.getElementById('conn-status').textContent`, "live")
}

// lessonEval evaluates expr in tab and returns it as a string.
func lessonEval(t *testing.T, tab context.Context, expr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string]("String("+expr+")"))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

// lessonWait polls expr in tab until it contains want, for up to 20 s.
func lessonWait(t *testing.T, tab context.Context, what, expr, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := lessonEval(t, tab, expr)
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s is %q, want it to contain %q", what, expr, got, want)
		}
		time.Sleep(25 * time.Millisecond) // polling interval, not a stand-in for a condition
	}
}

// lessonDo runs actions in tab with a deadline.
func lessonDo(t *testing.T, tab context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func lessonText(id string) string { return fmt.Sprintf(`document.getElementById(%q).textContent`, id) }

func TestLessonBrowser(t *testing.T) {
	lb := newLessonBrowser(t)
	presenter := lb.browser
	lb.lessonOpen(t, presenter, "/?token="+testToken)
	if role := lessonEval(t, presenter, `document.body.dataset.role`); role != "presenter" {
		t.Fatalf("opened with the token, the page says %q", role)
	}
	viewer, cancelViewer := chromedp.NewContext(lb.browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancelViewer)
	if err := chromedp.Do(viewer); err != nil { // opens the tab, which lives as long as viewer
		t.Fatalf("open a second browser context: %v", err)
	}
	lb.lessonOpen(t, viewer, "/")
	if role := lessonEval(t, viewer, `document.body.dataset.role`); role != "viewer" {
		t.Fatalf("the second context is %q, want viewer", role)
	}

	t.Run("the viewer's panel follows the presenter", func(t *testing.T) {
		if got := lessonEval(t, viewer, `document.getElementById('lesson-select').disabled && !document.getElementById('lesson-run')`); got != "true" {
			t.Errorf("viewer can pick lessons or run steps")
		}
		lessonEval(t, presenter, `(s => { s.value = 'quiz'; s.dispatchEvent(new Event('change')); return true })(document.getElementById('lesson-select'))`)
		lessonWait(t, viewer, "viewer sees step 1", lessonText("lesson-progress"), "Step 1 of 3")
		lessonWait(t, viewer, "viewer sees the step's prose", lessonText("lesson-step"), "One unit of the quiz item")
		lessonWait(t, viewer, "viewer's picker follows", `document.getElementById('lesson-select').value`, "quiz")

		lessonWait(t, presenter, "the run button is enabled", `!document.getElementById('lesson-run').disabled`, "true")
		clickWhenClear(t, presenter, "click Run step", "lesson-run")
		lessonWait(t, viewer, "viewer sees the expectation pass", `document.getElementById('lesson-command-3').dataset.status`, "passed")
		lessonWait(t, viewer, "viewer sees ✓ and the words", lessonText("lesson-command-3"), "passed")
		lessonWait(t, viewer, "viewer sees the report", lessonText("lesson-status"), "4 commands ran; 1 expectation met.")

		lessonWait(t, presenter, "presenter sees the report", lessonText("lesson-status"), "4 commands ran")
		// n: the step has run, so go on to step 2; it asks the audience, so
		// it waits for votes instead of running.
		lessonDo(t, presenter, "press n", chromedp.KeyEvent("n"))
		lessonWait(t, viewer, "viewer sees step 2", lessonText("lesson-progress"), "Step 2 of 3")
		lessonWait(t, viewer, "viewer sees the question", `document.getElementById('poll').hidden ? '' : document.getElementById('poll-question').textContent`, "Can Ireland buy it?")
		lessonWait(t, presenter, "presenter is at step 2", lessonText("lesson-command-1"), "buy consensus QUIZ")
		if st := lessonEval(t, presenter, `document.getElementById('lesson-command-1').dataset.status`); st != "pending" {
			t.Errorf("step 2's buy has status %q before the votes, want pending (n must wait for votes)", st)
		}
	})

	t.Run("a viewer votes, the presenter sees the tally, the reveal shows the answer", func(t *testing.T) {
		lessonWait(t, viewer, "the question is open", lessonText("poll-question"), "Can Ireland buy it?")
		clickWhenClear(t, viewer, "vote yes", "poll-option-0")
		lessonWait(t, viewer, "the vote is marked", `document.getElementById('poll-option-0').getAttribute('aria-pressed') + ' (status: ' + document.getElementById('poll-status').textContent + '; toast: ' + document.getElementById('toast').textContent + ')'`, "true")
		lessonWait(t, presenter, "presenter sees the tally", lessonText("poll-tally"), "Yes1 vote (100%)")
		lessonWait(t, presenter, "presenter sees votes beside connected viewers", lessonText("poll-tally"), "1 vote from 2 connected viewers")
		if got := lessonEval(t, viewer, lessonText("poll-tally")); strings.Contains(got, "%") || !strings.Contains(got, "1 vote so far") {
			t.Errorf("viewer's tally before the reveal: %q, want only the count", got)
		}
		if got := lessonEval(t, viewer, `document.getElementById('poll-answer').hidden`); got != "true" {
			t.Error("viewer sees the answer before the reveal")
		}

		clickWhenClear(t, presenter, "click Reveal", "poll-reveal")
		lessonWait(t, viewer, "viewer sees the answer", lessonText("poll-answer"), "Answer: Yes. ✓ You predicted it.")
		lessonWait(t, viewer, "viewer sees the tally", lessonText("poll-tally"), "1 vote (100%)")
		lessonWait(t, viewer, "options close", `document.getElementById('poll-option-1').disabled`, "true")
	})
}
