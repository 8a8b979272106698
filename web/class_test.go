package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"caplab/lab"
)

// The handout: the students' copy holds the story and every question with
// its options and no answer; the instructor's (token) holds the key.
func TestHandout(t *testing.T) {
	f := newLessonAPI(t)
	noToken := map[string]string{"Authorization": ""}
	resp, body := f.call(t, "GET", "/api/lessons/last-iphone/handout", "", noToken)
	page := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("handout: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"<title>The last iPhone — caplab handout</title>", "@media print", "A shopper in Singapore clicks Buy on the consensus store. What happens?",
		"It refuses — try later", "Sold out", "It sells the unit", "about 7 min", `data-testid="handout-question"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the students' handout lacks %q", want)
		}
	}
	for _, spoiler := range []string{"Answer key", `class="answer"`, "Singapore alone is one region of three", "<script"} {
		if strings.Contains(page, spoiler) {
			t.Errorf("the students' handout holds %q", spoiler)
		}
	}
	if n := strings.Count(page, `data-testid="handout-question"`); n != 3 {
		t.Errorf("the last iPhone asks 3 questions; the handout shows %d", n)
	}
	_, body = f.call(t, "GET", "/api/lessons/last-iphone/handout", "", nil)
	key := string(body)
	for _, want := range []string{"Answer key", `class="answer"`, "Singapore alone is one region of three", "— It refuses — try later"} {
		if !strings.Contains(key, want) {
			t.Errorf("the instructor's handout lacks %q", want)
		}
	}
	if resp, _ := f.call(t, "GET", "/api/lessons/nope/handout", "", noToken); resp.StatusCode != 404 {
		t.Errorf("an unknown lesson's handout: %d", resp.StatusCode)
	}
}

// A new group: the lab fresh, the lesson back at step 1, the votes gone.
// Bad bodies and a missing token change nothing.
func TestGroupReset(t *testing.T) {
	f := newLessonAPI(t)
	f.call(t, "PUT", "/api/lesson", `{"lesson":"quiz","step":1}`, nil)
	cookie := viewerCookieFrom(t, f)
	if resp, b := f.call(t, "POST", "/api/poll/vote", `{"option":"yes"}`, map[string]string{"Authorization": "", "Origin": f.srv.URL, "Cookie": viewerCookie + "=" + cookie}); resp.StatusCode != 200 {
		t.Fatalf("vote: %d %s", resp.StatusCode, b)
	}
	if resp, b := f.call(t, "POST", "/api/lessons/quiz/steps/1/run", `{}`, nil); resp.StatusCode != 200 {
		t.Fatalf("run: %d %s", resp.StatusCode, b)
	}
	if n := len(f.lab.History("QUIZ").Operations); n == 0 {
		t.Fatal("the step recorded nothing")
	}
	for _, bad := range []struct {
		body string
		hdr  map[string]string
		want int
	}{{`{}`, map[string]string{"Authorization": ""}, 401}, {`[]`, nil, 400}, {`{"a":`, nil, 400}} {
		if resp, b := f.call(t, "POST", "/api/class/reset", bad.body, bad.hdr); resp.StatusCode != bad.want {
			t.Errorf("POST /api/class/reset %s: %d %s, want %d", bad.body, resp.StatusCode, b, bad.want)
		}
	}
	if n := len(f.lab.History("QUIZ").Operations); n == 0 {
		t.Fatal("a refused group reset cleared the history")
	}
	resp, b := f.call(t, "POST", "/api/class/reset", `{}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("group reset: %d %s", resp.StatusCode, b)
	}
	if n := len(f.lab.History("QUIZ").Operations); n != 0 {
		t.Errorf("after a group reset the history holds %d operations", n)
	}
	_, b = f.call(t, "GET", "/api/lesson", "", nil)
	var snap struct {
		Lesson *struct {
			ID   string `json:"id"`
			Step int    `json:"step"`
			Ran  bool   `json:"ran"`
		} `json:"lesson"`
		Poll *struct{ Votes int } `json:"poll"`
	}
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Lesson == nil || snap.Lesson.ID != "quiz" || snap.Lesson.Step != 0 || snap.Lesson.Ran {
		t.Errorf("after a group reset the lesson is %s, want the quiz at step 1, not run", b)
	}
	f.call(t, "PUT", "/api/lesson", `{"lesson":"quiz","step":1}`, nil)
	_, b = f.call(t, "GET", "/api/lesson", "", nil)
	if !strings.Contains(string(b), `"votes":0`) || strings.Contains(string(b), `"ran":true`) {
		t.Errorf("the question after a group reset still holds the last group's vote or run: %s", b)
	}
	if resp, b := f.call(t, "GET", "/api/recording/lesson", "", nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("after a group reset the recording is not empty: %d %s", resp.StatusCode, b)
	}
}

// The network's speed: faster than the start, never slower; bad input
// changes nothing.
func TestNetworkSpeed(t *testing.T) {
	f := newLessonAPI(t)
	for body, want := range map[string]int{`{"factor":0}`: 400, `{"factor":1.5}`: 400, `{"factor":-1}`: 400, `{}`: 400, `{"factor":"fast"}`: 400} {
		if resp, b := f.call(t, "PUT", "/api/network/speed", body, nil); resp.StatusCode != want {
			t.Errorf("PUT /api/network/speed %s: %d %s, want %d", body, resp.StatusCode, b, want)
		}
	}
	if resp, _ := f.call(t, "PUT", "/api/network/speed", `{"factor":0.5}`, map[string]string{"Authorization": ""}); resp.StatusCode != 401 {
		t.Errorf("speed without the token: %d", resp.StatusCode)
	}
	delay := func() float64 {
		for _, l := range f.lab.State().Links {
			if l.From == "us-east-1" && l.To == "ap-southeast-1" {
				return l.DelayMs
			}
		}
		t.Fatal("no link")
		return 0
	}
	before := delay()
	if st := f.lab.State(); st.Speed != 1 {
		t.Errorf("speed at the start %v", st.Speed)
	}
	resp, b := f.call(t, "PUT", "/api/network/speed", `{"factor":0.25}`, nil)
	var st lab.State
	if resp.StatusCode != 200 || json.Unmarshal(b, &st) != nil || st.Speed != 0.25 {
		t.Fatalf("PUT speed 0.25: %d %s", resp.StatusCode, b)
	}
	if after := delay(); before <= 0 || after < before*0.24 || after > before*0.26 {
		t.Errorf("the link's delay went from %v to %v ms at speed 0.25", before, after)
	}
	if resp, b := f.call(t, "POST", "/api/reset", `{}`, nil); resp.StatusCode != 200 {
		t.Fatalf("reset: %d %s", resp.StatusCode, b)
	}
	if after := delay(); after > before*0.26 {
		t.Errorf("a reset lost the speed: delay %v ms (start %v)", after, before)
	}
}

// Every term the page shows a learner is in Help's glossary: the roles on
// the map, the shops' words (lab.Say's tags), the load panel's and the
// stores' jargon.
func TestGlossaryCoversThePage(t *testing.T) {
	var all strings.Builder
	for _, g := range glossaryTerms {
		all.WriteString(strings.ToLower(g.Term) + " | ")
		if g.Means == "" || !strings.HasSuffix(g.Means, ".") {
			t.Errorf("glossary %q: %q is no sentence", g.Term, g.Means)
		}
	}
	terms := all.String()
	for _, w := range []string{"leader", "follower", "candidate", "pre-candidate", "term", "majority", "quorum", "cp", "ap", "geo",
		"w=1 r=1", "linearizable", "stale read", "lost update", "oversold", "unavailable", "fail fast", "breaker", "overloaded", "shed",
		"conflict", "stranded", "allocation", "zone", "p99", "slo", "zipf", "open loop", "doorbuster", "last writer wins",
		"clock skew", "lease", "fencing token", "fault band", "too busy", "gave up", "refused"} {
		if !strings.Contains(terms, w) {
			t.Errorf("the glossary does not explain %q", w)
		}
	}
	// …and the shops' headlines are words it explains.
	for _, tag := range []string{"Stranded", "Fenced off", "Too busy", "Gave up", "Refused at once"} {
		found := false
		for _, g := range glossaryTerms {
			if strings.Contains(strings.ToLower(g.Term+" "+g.Means), strings.ToLower(strings.Fields(tag)[0])) {
				found = true
			}
		}
		if !found {
			t.Errorf("the shop word %q is not in the glossary", tag)
		}
	}
}
