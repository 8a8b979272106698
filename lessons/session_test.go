package lessons

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// spoilerLesson has a step whose answer sits after the ask's lab block.
const spoilerLesson = `---
title: Spoilers
---

## Stock

One unit.

` + "```lab" + `
reset
stock X 1
` + "```" + `

## Cut off

Singapore is cut off from the others.

` + "```lab" + `
partition us-east-1,eu-west-1 | ap-southeast-1
ask "Singapore clicks Buy. What happens?" options ok|sold_out|unavailable answer unavailable
buy consensus X from ap-southeast-1 expect unavailable
expect read consensus X from us-east-1 = 1
` + "```" + `

It refuses: one region of three is no majority.

## Two questions

` + "```lab" + `
ask "First?" answer yes
ask "Second?" answer no
` + "```" + `

Both answered here.
`

func parseSpoiler(t *testing.T) *Lesson {
	t.Helper()
	l, errs := Parse("spoilers.md", []byte(spoilerLesson))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return l
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseSplitsPoseAndReveal(t *testing.T) {
	l := parseSpoiler(t)
	st := l.Steps[1]
	if !strings.Contains(st.Pose.Markdown, "cut off") || strings.Contains(st.Pose.Markdown, "refuses") {
		t.Errorf("pose = %q, want the setup without the answer", st.Pose.Markdown)
	}
	if !strings.Contains(st.Reveal.HTML, "refuses") {
		t.Errorf("reveal = %q, want the answer", st.Reveal.HTML)
	}
	if l.Steps[0].Reveal.Markdown != "" || l.Steps[0].Pose.Markdown != l.Steps[0].Prose.Markdown {
		t.Errorf("a step without ask: pose %q reveal %q, want all prose in pose", l.Steps[0].Pose.Markdown, l.Steps[0].Reveal.Markdown)
	}
}

func TestSessionViewerSeesNoSpoilerBeforeReveal(t *testing.T) {
	l := parseSpoiler(t)
	var s Session
	if err := s.Open(l, 1); err != nil {
		t.Fatal(err)
	}
	viewer := asJSON(t, []any{s.View(false), s.PollView(false)})
	for _, spoiler := range []string{"no majority", "expect unavailable", "= 1", `"answer"`, `"tally"`} {
		if strings.Contains(viewer, spoiler) {
			t.Errorf("viewer's view before the reveal contains %q: %s", spoiler, viewer)
		}
	}
	if !strings.Contains(viewer, "cut off") || !strings.Contains(viewer, "It refuses — try later") {
		t.Errorf("viewer's view lacks the pose or the option words: %s", viewer)
	}
	pv := s.View(true)
	if !strings.Contains(pv.RevealHTML, "refuses") || strings.Contains(pv.HTML, "refuses") {
		t.Errorf("presenter: html %q, notes %q; want the answer in the notes only", pv.HTML, pv.RevealHTML)
	}
	if !strings.Contains(strings.Join(pv.Commands, "\n"), "expect unavailable") || !pv.Held[2] || !pv.Held[3] || pv.Held[0] {
		t.Errorf("presenter commands %q held %v: want every line, expectations marked", pv.Commands, pv.Held)
	}
	if p := s.PollView(true); p.Tally == nil || p.Answer != "" {
		t.Errorf("presenter poll %+v: want the live tally and no answer", p)
	}

	if _, err := s.Vote("v1", "unavailable"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reveal(); err != nil {
		t.Fatal(err)
	}
	after := asJSON(t, []any{s.View(false), s.PollView(false)})
	for _, want := range []string{"no majority", `"answer":"unavailable"`, `"tally":[0,0,1]`} {
		if !strings.Contains(after, want) {
			t.Errorf("viewer's view after the reveal lacks %q: %s", want, after)
		}
	}
	if strings.Contains(after, "expect unavailable") {
		t.Errorf("expectations are held back until the step ran: %s", after)
	}

	if err := s.BeginRun(l, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Open(l, 2); err == nil {
		t.Error("Open while a step runs: want a refusal")
	}
	s.EndRun(StepRun{Report: "ran"})
	ran := asJSON(t, s.View(false))
	if !strings.Contains(ran, "expect unavailable") || !strings.Contains(ran, `"ran":true`) {
		t.Errorf("viewer after the run: %s", ran)
	}
}

func TestSessionRunRevealsWithoutAVote(t *testing.T) {
	l := parseSpoiler(t)
	var s Session
	if err := s.BeginRun(l, 1); err != nil {
		t.Fatal(err)
	}
	if v := s.View(false); strings.Contains(v.HTML, "refuses") {
		t.Error("while running the answer prose stays hidden")
	}
	if p := s.PollView(false); !p.Revealed || p.Answer != "unavailable" {
		t.Errorf("running a step reveals its question: %+v", p)
	}
	if _, err := s.Vote("v", "ok"); err == nil {
		t.Error("vote after the reveal: want a refusal")
	}
	s.EndRun(StepRun{})
	if v := s.View(false); !strings.Contains(v.HTML, "refuses") || !v.Revealed {
		t.Errorf("after the run: %+v", v)
	}
}

func TestSessionTwoQuestionsRevealProseAfterTheLast(t *testing.T) {
	l := parseSpoiler(t)
	var s Session
	if err := s.Open(l, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Reveal(); err != nil {
		t.Fatal(err)
	}
	if v := s.View(false); strings.Contains(v.HTML, "Both answered") {
		t.Error("the prose shows only after the last question is revealed")
	}
	if err := s.NextQuestion(); err != nil {
		t.Fatal(err)
	}
	if p := s.PollView(false); p.Revealed || p.Question != "Second?" {
		t.Errorf("next question: %+v", p)
	}
	if err := s.NextQuestion(); err == nil {
		t.Error("no third question: want a refusal")
	}
	_ = s.Reveal()
	if v := s.View(false); !strings.Contains(v.HTML, "Both answered") {
		t.Errorf("after the last reveal: %q", v.HTML)
	}
}

func TestSessionRefusals(t *testing.T) {
	l := parseSpoiler(t)
	var s Session
	var se *SessionError
	if _, err := s.Vote("v", "yes"); !errors.As(err, &se) || se.Kind != Conflict {
		t.Errorf("vote without a poll: %v", err)
	}
	if err := s.Reveal(); !errors.As(err, &se) || se.Kind != Conflict {
		t.Errorf("reveal without a poll: %v", err)
	}
	if err := s.Open(l, 9); !errors.As(err, &se) || se.Kind != BadInput {
		t.Errorf("open step 9: %v", err)
	}
	_ = s.Open(l, 1)
	if _, err := s.Vote("v", "maybe"); !errors.As(err, &se) || se.Kind != BadInput || !strings.Contains(err.Error(), `"unavailable"`) {
		t.Errorf("vote for a non-option: %v", err)
	}
	s.MaxVoters = 2
	for _, v := range []string{"a", "b", "a"} {
		if _, err := s.Vote(v, "ok"); err != nil {
			t.Fatalf("vote %s: %v", v, err)
		}
	}
	if _, err := s.Vote("c", "ok"); !errors.As(err, &se) || se.Kind != Full {
		t.Errorf("third voter over a cap of 2: %v", err)
	}
	if got := s.VoteOf("a"); got != "ok" {
		t.Errorf("VoteOf(a) = %q", got)
	}
	_ = s.Open(nil, 0)
	if s.View(false) != nil || s.PollView(true) != nil {
		t.Error("closed: want no views")
	}
}

func TestSpoilersWarns(t *testing.T) {
	src := strings.Replace(spoilerLesson, "Singapore is cut off from the others.", "Singapore is cut off, so it will refuse.", 1)
	l, errs := Parse("s.md", []byte(src))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	w := Spoilers(l)
	if len(w) != 1 || !strings.Contains(w[0].Error(), `"refuse"`) || w[0].Line != l.Steps[1].Polls[0].Line {
		t.Errorf("Spoilers = %v, want one warning at the ask naming \"refuse\"", w)
	}
	if w := Spoilers(parseSpoiler(t)); len(w) != 0 {
		t.Errorf("a clean lesson warns: %v", w)
	}
	ls, _ := Builtin()
	for _, l := range ls {
		if w := Spoilers(l); len(w) != 0 {
			t.Errorf("built-in lesson %s: %v", l.Name, w)
		}
	}
}

func TestOptionLabel(t *testing.T) {
	for in, want := range map[string]string{"ok": "It sells the unit", "unavailable": "It refuses — try later", "sold_out": "Sold out", "a few ms": "a few ms", "no_way": "no way"} {
		if got := OptionLabel(in); got != want {
			t.Errorf("OptionLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
