package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"caplab/lab"
	"caplab/lessons"
)

// quizLesson is a small user lesson: a step that passes, a step with a
// question, and a step that fails on purpose.
const quizLesson = `---
title: A quick quiz
summary: Three steps and a question.
regions: [us-east-1, eu-west-1, ap-southeast-1]
---

Welcome to the **quiz**.

## Stock up

One unit of the quiz item.

` + "```lab" + `
reset
wait leader
stock QUIZ 1
expect read consensus QUIZ from us-east-1 = 1
` + "```" + `

## Predict

` + "```lab" + `
ask "Can Ireland buy it?" options yes|no|maybe answer yes
buy consensus QUIZ from eu-west-1 expect ok
ask "And now Virginia?" answer no
` + "```" + `

## Fail on purpose

` + "```lab" + `
expect read consensus QUIZ from us-east-1 = 7
` + "```" + `
`

// lessonDir writes the quiz and a broken lesson to a fresh directory.
func lessonDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range map[string]string{
		"quiz.md":   quizLesson,
		"broken.md": "## Step\n\n```lab\nbuyy consensus X from us-east-1\n```\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLessonsFromUserDir(t *testing.T) {
	cat, errs := lessons.LoadCatalog(lessonDir(t))
	if len(errs) == 0 || !strings.Contains(errs.Error(), "broken.md") {
		t.Fatalf("LoadCatalog errors = %v, want the broken lesson named", errs)
	}
	lc := LessonsFrom(cat, nil)
	var ids []string
	for _, s := range lc.List() {
		ids = append(ids, s.ID)
	}
	if !slices.Contains(ids, "quiz") || !slices.Contains(ids, "last-iphone") || slices.Contains(ids, "broken") {
		t.Fatalf("List ids = %v, want the built-in course and quiz, not broken", ids)
	}
	if ids[len(ids)-1] != "quiz" {
		t.Errorf("user lesson listed at %v, want after the built-in course", ids)
	}
	l, ok := lc.Lesson("quiz")
	if !ok || l.Title != "A quick quiz" || l.Steps != 3 || len(l.StepList) != 3 {
		t.Fatalf("Lesson(quiz) = %+v, %v", l.LessonSummary, ok)
	}
	if !strings.Contains(l.StepList[0].HTML, "<strong>quiz</strong>") || !strings.Contains(l.StepList[0].HTML, "One unit") {
		t.Errorf("first step's HTML lacks the intro or its prose: %q", l.StepList[0].HTML)
	}
	if got := l.StepList[0].Commands; !slices.Equal(got, []string{"reset", "wait leader", "stock QUIZ 1", "expect read consensus QUIZ from us-east-1 = 1"}) {
		t.Errorf("commands = %q, want the source lines", got)
	}
	ask := l.StepList[1].Commands[0]
	if ask != `ask "Can Ireland buy it?" options yes | no | maybe` {
		t.Errorf("ask shown as %q, want question and options without the answer", ask)
	}
	b, _ := json.Marshal(l)
	if strings.Contains(string(b), "answer") || len(l.StepList[1].Polls) != 2 || l.StepList[1].Polls[0].Answer != "yes" {
		t.Errorf("polls = %+v; JSON %s must not carry answers", l.StepList[1].Polls, b)
	}
	if _, ok := lc.Lesson("broken"); ok {
		t.Error("the broken lesson can be opened")
	}
}

// lessonAPI is a real lab behind a Server whose lessons are the built-in
// course plus the quiz.
func newLessonAPI(t *testing.T) *apiFixture {
	t.Helper()
	cat, _ := lessons.LoadCatalog(lessonDir(t))
	l := startLab(t, lab.Config{LatencyScale: 0.05})
	s := New(l, Options{Token: testToken, Logger: quietLogger(), Lessons: LessonsFrom(cat, lessons.LabOf(l))})
	t.Cleanup(s.Close)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &apiFixture{lab: l, srv: srv, s: s}
}

// lessonStream reads frames from one WebSocket viewer.
type lessonStream struct {
	conn *websocket.Conn
	seen [][]byte // every lesson and poll frame read so far
}

func dialLessonStream(t *testing.T, f *apiFixture, presenter bool) *lessonStream {
	t.Helper()
	hdr := http.Header{}
	if presenter {
		hdr.Set("Cookie", tokenCookie+"="+testToken)
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.srv.URL, "http")+"/ws", hdr)
	if err != nil {
		t.Fatalf("dial /ws: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &lessonStream{conn: conn}
}

type lessonFrame struct {
	Type   string      `json:"type"`
	Lesson *lessonView `json:"lesson"`
	Poll   *pollView   `json:"poll"`
}

// await reads frames until one of type typ satisfies ok, within 20 s.
func (ls *lessonStream) await(t *testing.T, what, typ string, ok func(lessonFrame) bool) lessonFrame {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	_ = ls.conn.SetReadDeadline(deadline)
	var last []byte
	for {
		_, b, err := ls.conn.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v (last %s frame: %s)", what, err, typ, last)
		}
		var f lessonFrame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("frame %s: %v", b, err)
		}
		if f.Type == frameLesson || f.Type == framePoll {
			ls.seen = append(ls.seen, b)
		}
		if f.Type == typ {
			last = b
			if ok(f) {
				return f
			}
		}
	}
}

// viewerCookieFrom loads the page without a token and returns its
// caplab_viewer cookie.
func viewerCookieFrom(t *testing.T, f *apiFixture) string {
	t.Helper()
	resp, _ := f.call(t, "GET", "/", "", map[string]string{"Authorization": ""})
	for _, c := range resp.Cookies() {
		if c.Name == viewerCookie {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || f.s.viewerKeys.verify(c.Value) == "" {
				t.Fatalf("viewer cookie %+v", c)
			}
			return c.Value
		}
	}
	t.Fatalf("GET / set no %s cookie", viewerCookie)
	return ""
}

func TestLessonSessionAndPolls(t *testing.T) {
	f := newLessonAPI(t)
	viewer := dialLessonStream(t, f, false)
	presenter := dialLessonStream(t, f, true)
	alice, bob := viewerCookieFrom(t, f), viewerCookieFrom(t, f)
	if alice == bob {
		t.Fatal("two page loads got the same viewer id")
	}
	noToken := map[string]string{"Authorization": ""}
	vote := func(cookie, origin, body string) (int, string) {
		t.Helper()
		hdr := map[string]string{"Authorization": "", "Origin": origin, "Cookie": viewerCookie + "=" + cookie}
		if origin == "" {
			hdr["Origin"] = ""
		}
		if cookie == "" {
			hdr["Cookie"] = ""
		}
		resp, b := f.call(t, "POST", "/api/poll/vote", body, hdr)
		return resp.StatusCode, string(b)
	}
	origin := f.srv.URL

	t.Run("presenter routes need the token", func(t *testing.T) {
		for _, r := range [][3]string{
			{"PUT", "/api/lesson", `{"lesson":"quiz","step":0}`},
			{"POST", "/api/lessons/quiz/steps/0/run", `{}`},
			{"POST", "/api/poll/reveal", `{}`},
			{"POST", "/api/poll/next", `{}`},
		} {
			if resp, b := f.call(t, r[0], r[1], r[2], noToken); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s without token: %d %s, want 401", r[0], r[1], resp.StatusCode, b)
			}
		}
	})
	t.Run("no poll open", func(t *testing.T) {
		if code, b := vote(alice, origin, `{"option":"yes"}`); code != http.StatusConflict {
			t.Errorf("vote with no poll: %d %s, want 409", code, b)
		}
		if resp, b := f.call(t, "POST", "/api/poll/reveal", `{}`, nil); resp.StatusCode != http.StatusConflict {
			t.Errorf("reveal with no poll: %d %s, want 409", resp.StatusCode, b)
		}
	})
	t.Run("refused moves", func(t *testing.T) {
		for body, want := range map[string]int{
			`{"lesson":"nope","step":0}`:   404,
			`{"lesson":"quiz","step":3}`:   400,
			`{"lesson":"quiz","step":-1}`:  400,
			`{"lesson":"quiz","step":"1"}`: 400,
		} {
			if resp, b := f.call(t, "PUT", "/api/lesson", body, nil); resp.StatusCode != want {
				t.Errorf("PUT %s: %d %s, want %d", body, resp.StatusCode, b, want)
			}
		}
	})
	t.Run("open and run a step", func(t *testing.T) {
		if resp, b := f.call(t, "PUT", "/api/lesson", `{"lesson":"quiz","step":0}`, nil); resp.StatusCode != 200 {
			t.Fatalf("PUT /api/lesson: %d %s", resp.StatusCode, b)
		}
		for _, s := range []*lessonStream{viewer, presenter} {
			s.await(t, "the quiz at step 0", frameLesson, func(f lessonFrame) bool {
				return f.Lesson != nil && f.Lesson.ID == "quiz" && f.Lesson.Step == 0 && f.Lesson.StepTitle == "Stock up" && !f.Lesson.Ran
			})
		}
		resp, b := f.call(t, "POST", "/api/lessons/quiz/steps/0/run", `{}`, nil)
		var run struct {
			Report  string                `json:"report"`
			Results []LessonCommandResult `json:"results"`
			Failed  bool                  `json:"failed"`
		}
		_ = json.Unmarshal(b, &run)
		if resp.StatusCode != 200 || run.Failed || len(run.Results) != 4 || run.Results[3].Status != "passed" {
			t.Fatalf("run step 0: %d %s", resp.StatusCode, b)
		}
		got := viewer.await(t, "step 0's results", frameLesson, func(f lessonFrame) bool { return f.Lesson != nil && f.Lesson.Ran })
		if r := got.Lesson.Results; len(r) != 4 || r[3].Status != "passed" || !strings.Contains(r[3].Text, "QUIZ from us-east-1 = 1") || got.Lesson.Report != "4 commands ran; 1 expectation met." {
			t.Errorf("viewer's results: %+v, report %q", r, got.Lesson.Report)
		}
	})
	t.Run("poll: vote, tally for the presenter only, reveal", func(t *testing.T) {
		if resp, b := f.call(t, "PUT", "/api/lesson", `{"lesson":"quiz","step":1}`, nil); resp.StatusCode != 200 {
			t.Fatalf("PUT step 1: %d %s", resp.StatusCode, b)
		}
		vp := viewer.await(t, "the question", framePoll, func(f lessonFrame) bool { return f.Poll != nil && f.Poll.Question == "Can Ireland buy it?" })
		if vp.Poll.Tally != nil || vp.Poll.Answer != "" || vp.Poll.Count != 2 || !slices.Equal(vp.Poll.Options, []string{"yes", "no", "maybe"}) {
			t.Errorf("viewer's poll %+v", vp.Poll)
		}
		pp := presenter.await(t, "the question", framePoll, func(f lessonFrame) bool { return f.Poll != nil && f.Poll.Question == "Can Ireland buy it?" })
		if !slices.Equal(pp.Poll.Tally, []int{0, 0, 0}) || pp.Poll.Answer != "" {
			t.Errorf("presenter's poll %+v, want a zero tally and no answer", pp.Poll)
		}

		for _, c := range []struct {
			name, cookie, origin, body string
			want                       int
			mention                    string
		}{
			{"cross-origin", alice, "http://evil.example", `{"option":"yes"}`, 403, "evil.example"},
			{"no origin", alice, "", `{"option":"yes"}`, 403, "Origin"},
			{"no cookie", "", origin, `{"option":"yes"}`, 403, viewerCookie},
			{"forged cookie", "not-a-viewer-id", origin, `{"option":"yes"}`, 403, viewerCookie},
			{"unsigned id", "0123456789abcdef0123456789abcdef", origin, `{"option":"yes"}`, 403, viewerCookie},
			{"id with a forged tag", alice[:33] + strings.Repeat("0", 32), origin, `{"option":"yes"}`, 403, viewerCookie},
			{"bad option", alice, origin, `{"option":"perhaps"}`, 400, `\"yes\", \"no\", \"maybe\"`},
			{"no option", alice, origin, `{}`, 400, `\"yes\", \"no\", \"maybe\"`},
			{"wrong type", alice, origin, `{"option":1}`, 400, "string"},
			{"too large", alice, origin, `{"option":"` + strings.Repeat("y", 70<<10) + `"}`, 413, "KiB"},
		} {
			if code, b := vote(c.cookie, c.origin, c.body); code != c.want || !strings.Contains(b, c.mention) {
				t.Errorf("%s: %d %.200s, want %d mentioning %s", c.name, code, b, c.want, c.mention)
			}
		}
		for _, v := range []struct{ who, option, votes string }{
			{alice, "no", `"votes":1`}, {alice, "yes", `"votes":1`}, {bob, "yes", `"votes":2`},
		} {
			if code, b := vote(v.who, origin, `{"option":"`+v.option+`"}`); code != 200 || !strings.Contains(b, v.votes) {
				t.Errorf("vote %s: %d %s, want 200 with %s", v.option, code, b, v.votes)
			}
		}
		presenter.await(t, "the live tally", framePoll, func(f lessonFrame) bool { return f.Poll != nil && slices.Equal(f.Poll.Tally, []int{2, 0, 0}) })
		viewer.await(t, "the vote count", framePoll, func(f lessonFrame) bool { return f.Poll != nil && f.Poll.Votes == 2 })
		for _, b := range viewer.seen {
			if strings.Contains(string(b), `"tally"`) || strings.Contains(string(b), `"answer"`) {
				t.Errorf("a viewer saw the tally or answer before the reveal: %s", b)
			}
		}
		_, b := f.call(t, "GET", "/api/lesson", "", map[string]string{"Authorization": "", "Cookie": viewerCookie + "=" + alice})
		if !strings.Contains(string(b), `"vote":"yes"`) || strings.Contains(string(b), `"tally"`) {
			t.Errorf("GET /api/lesson as alice: %s, want her vote and no tally", b)
		}

		if resp, b := f.call(t, "POST", "/api/poll/reveal", `{}`, nil); resp.StatusCode != 200 || !strings.Contains(string(b), `"answer":"yes"`) {
			t.Fatalf("reveal: %d %s", resp.StatusCode, b)
		}
		rv := viewer.await(t, "the reveal", framePoll, func(f lessonFrame) bool { return f.Poll != nil && f.Poll.Revealed })
		if rv.Poll.Answer != "yes" || !slices.Equal(rv.Poll.Tally, []int{2, 0, 0}) {
			t.Errorf("viewer's revealed poll %+v", rv.Poll)
		}
		if code, b := vote(bob, origin, `{"option":"no"}`); code != http.StatusConflict {
			t.Errorf("vote after the reveal: %d %s, want 409", code, b)
		}
		if resp, b := f.call(t, "POST", "/api/poll/next", `{}`, nil); resp.StatusCode != 200 || !strings.Contains(string(b), "And now Virginia?") {
			t.Fatalf("next question: %d %s", resp.StatusCode, b)
		}
		if resp, b := f.call(t, "POST", "/api/poll/next", `{}`, nil); resp.StatusCode != http.StatusConflict {
			t.Errorf("a third question: %d %s, want 409", resp.StatusCode, b)
		}
		viewer.await(t, "the second question", framePoll, func(f lessonFrame) bool { return f.Poll != nil && f.Poll.Index == 1 && !f.Poll.Revealed })
		if code, b := vote(bob, origin, `{"option":"no"}`); code != 200 {
			t.Errorf("vote on the second question: %d %s", code, b)
		}
	})
	t.Run("running a step reveals its question", func(t *testing.T) {
		if resp, b := f.call(t, "POST", "/api/lessons/quiz/steps/1/run", `{}`, nil); resp.StatusCode != 200 || strings.Contains(string(b), `"failed":true`) {
			t.Fatalf("run step 1: %d %s", resp.StatusCode, b)
		}
		viewer.await(t, "the second answer", framePoll, func(f lessonFrame) bool { return f.Poll != nil && f.Poll.Revealed && f.Poll.Answer == "no" })
	})
	t.Run("a failing step", func(t *testing.T) {
		resp, b := f.call(t, "POST", "/api/lessons/quiz/steps/2/run", `{}`, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"failed":true`) || !strings.Contains(string(b), "= 7, got 0") {
			t.Fatalf("run step 2: %d %s, want 200, failed, naming 7 and 0", resp.StatusCode, b)
		}
		got := viewer.await(t, "the failure", frameLesson, func(f lessonFrame) bool { return f.Lesson != nil && f.Lesson.Step == 2 && f.Lesson.Ran })
		if !got.Lesson.Failed || len(got.Lesson.Results) != 1 || got.Lesson.Results[0].Status != "failed" {
			t.Errorf("viewer sees %+v", got.Lesson)
		}
	})
	t.Run("a new viewer gets the lesson and poll at connect", func(t *testing.T) {
		late := dialLessonStream(t, f, false)
		late.await(t, "the current lesson", frameLesson, func(f lessonFrame) bool { return f.Lesson != nil && f.Lesson.Step == 2 && f.Lesson.Failed })
		late.await(t, "no open poll", framePoll, func(f lessonFrame) bool { return f.Poll == nil })
	})
	t.Run("a move that names no lesson closes nothing", func(t *testing.T) {
		for _, body := range []string{"", "null", "{}", `{"step":1}`, `{"lesson":null}`, "[]", "hello", `{}{}`} {
			resp, b := f.call(t, "PUT", "/api/lesson", body, nil)
			if resp.StatusCode != 400 {
				t.Errorf("PUT /api/lesson %q: %d %s, want 400", body, resp.StatusCode, b)
			}
		}
		if resp, b := f.call(t, "PUT", "/api/lesson", `{"pad":"`+strings.Repeat("x", 65<<10)+`"}`, nil); resp.StatusCode != 413 {
			t.Errorf("PUT /api/lesson with 65 KiB: %d %s, want 413", resp.StatusCode, b)
		}
		// Still open for a page that connects now, and in the session.
		late := dialLessonStream(t, f, false)
		late.await(t, "the lesson still open", frameLesson, func(f lessonFrame) bool { return f.Lesson != nil && f.Lesson.ID == "quiz" && f.Lesson.Step == 2 })
		resp, b := f.call(t, "GET", "/api/lesson", "", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"id":"quiz"`) {
			t.Fatalf("GET /api/lesson after refused moves: %d %s", resp.StatusCode, b)
		}
	})
	t.Run("closing the lesson", func(t *testing.T) {
		if resp, b := f.call(t, "PUT", "/api/lesson", `{"lesson":""}`, nil); resp.StatusCode != 200 {
			t.Fatalf("close: %d %s", resp.StatusCode, b)
		}
		viewer.await(t, "no lesson", frameLesson, func(f lessonFrame) bool { return f.Lesson == nil })
	})
}

func TestLessonRegionsMissing(t *testing.T) {
	l := startLab(t, lab.Config{Regions: []string{"us-east-1", "eu-west-1", "us-west-2"}, LatencyScale: 0.05})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cat, _ := lessons.LoadCatalog("")
	_, err := LessonsFrom(cat, lessons.LabOf(l)).RunStepResults(ctx, "last-iphone", 0)
	if err == nil || !strings.Contains(err.Error(), "ap-southeast-1") || !strings.Contains(err.Error(), "--regions") {
		t.Fatalf("running a lesson on a lab without its regions: %v", err)
	}
}
