package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"caplab/lab/inventory"
	"caplab/lab/load"
	"caplab/lessons"
)

// Lessons in the browser: an adapter from a lessons.Catalog to the panel
// (LessonsFrom), and the shared lesson session every page follows — which
// lesson is open, which step is current, what each step did, and the poll
// (an "ask") the audience votes on.

// Limits of the lesson session.
const (
	// lessonStepTimeout bounds one step's run from the page.
	lessonStepTimeout = 3 * time.Minute
	// maxVoters bounds the distinct voters a poll counts (memory).
	maxVoters = 10_000
	// tallyInterval is the least time between two poll frames caused by
	// votes; opening and revealing a poll are sent at once.
	tallyInterval = 150 * time.Millisecond
)

// LessonPoll is an "ask" of a step: a question the audience votes on before
// the step's lab block shows the answer. Answer never leaves the server
// before the presenter reveals it.
type LessonPoll struct {
	Question string   `json:"question"`
	Options  []string `json:"options"`
	Answer   string   `json:"-"`
}

// LessonCommandResult is how one command of a step went, for the panel:
// its line, command, status, the runner's text and the learner's story.
type LessonCommandResult = lessons.CommandLine

// LessonRun is what running one step did.
type LessonRun = lessons.StepRun

// LessonReporter is optionally implemented by a Lessons provider that can
// report each command of a step (LessonCatalog does). Without it the page
// shows only LessonRunner's report.
type LessonReporter interface {
	RunStepResults(ctx context.Context, id string, step int) (LessonRun, error)
}

// LessonCatalog shows a lessons.Catalog in the lesson panel and runs its
// steps on a lab. It implements Lessons, LessonRunner and LessonReporter.
// Runs are serialised: a lessons.Runner is not safe for concurrent use.
type LessonCatalog struct {
	catalog *lessons.Catalog
	lab     lessons.Lab

	mu      sync.Mutex                 // held for a whole run
	runners map[string]*lessons.Runner // one per lesson opened; bounded by the catalogue
	load    *load.Controller           // the server's, for "load" commands (load.go)
}

// LessonsFrom adapts c to the lesson panel; steps run on l (a *lab.Lab).
// Step HTML is the lesson's rendered prose (goldmark without raw HTML, so
// trusted); commands are shown as their source lines, except that an ask
// loses its answer.
func LessonsFrom(c *lessons.Catalog, l lessons.Lab) *LessonCatalog {
	return &LessonCatalog{catalog: c, lab: l, runners: map[string]*lessons.Runner{}}
}

// List returns every lesson of the catalogue in display order.
func (lc *LessonCatalog) List() []LessonSummary {
	ls := lc.catalog.Lessons()
	out := make([]LessonSummary, 0, len(ls))
	for _, l := range ls {
		out = append(out, summaryOf(l))
	}
	return out
}

func summaryOf(l *lessons.Lesson) LessonSummary {
	return LessonSummary{ID: l.Name, Title: l.Title, Summary: l.Summary, Steps: len(l.Steps), Minutes: l.Minutes()}
}

// Lesson returns one lesson with its steps. The intro's prose, if any, opens
// the first step.
func (lc *LessonCatalog) Lesson(id string) (Lesson, bool) {
	l, ok := lc.catalog.Lookup(id)
	if !ok {
		return Lesson{}, false
	}
	out := Lesson{LessonSummary: summaryOf(l), StepList: make([]LessonStep, 0, len(l.Steps))}
	for i, st := range l.Steps {
		html := st.Prose.HTML
		if i == 0 && l.Intro.HTML != "" {
			html = l.Intro.HTML + html
		}
		ls := LessonStep{Title: st.Title, HTML: html, Commands: make([]string, 0, len(st.Commands))}
		for _, c := range st.Commands {
			ls.Commands = append(ls.Commands, lessons.DisplayLine(c))
		}
		for _, p := range st.Polls {
			ls.Polls = append(ls.Polls, LessonPoll{Question: p.Question, Options: slices.Clone(p.Options), Answer: p.Answer})
		}
		out.StepList = append(out.StepList, ls)
	}
	return out, true
}

// Source returns the parsed lesson id, for the classroom session
// (LessonSource).
func (lc *LessonCatalog) Source(id string) (*lessons.Lesson, bool) {
	return lc.catalog.Lookup(id)
}

// viewerLesson is lesson id as a viewer may read it before class: each
// step's prose up to its question and its commands without expectations
// (the spoiler rule); ok is false when id is unknown.
func (lc *LessonCatalog) viewerLesson(id string) (Lesson, bool) {
	out, ok := lc.Lesson(id)
	l, ok2 := lc.catalog.Lookup(id)
	if !ok || !ok2 {
		return out, false
	}
	for i, st := range l.Steps {
		html := st.Pose.HTML
		if i == 0 && l.Intro.HTML != "" {
			html = l.Intro.HTML + html
		}
		out.StepList[i].HTML = html
		for k, c := range st.Commands {
			if lessons.Expects(c) {
				out.StepList[i].Commands[k] = lessons.HeldBack(c)
			}
		}
	}
	return out, true
}

// RunStep runs step (from 0) of lesson id and reports it in one sentence
// (LessonRunner).
func (lc *LessonCatalog) RunStep(ctx context.Context, id string, step int) (string, error) {
	run, err := lc.RunStepResults(ctx, id, step)
	if err != nil {
		return "", err
	}
	return run.Report, nil
}

// RunStepResults runs step (from 0) of lesson id on the lab. An unmet
// expectation or a refused command is a result (Failed), not an error; the
// error is for an unknown lesson or step, regions the lab does not run, or
// a run cut short by ctx.
func (lc *LessonCatalog) RunStepResults(ctx context.Context, id string, step int) (LessonRun, error) {
	return lc.RunStepWith(ctx, id, step, nil)
}

// LessonProgress is optionally implemented by a Lessons provider that can
// tell each command's result as it happens (LessonCatalog does): the
// pages then show a step's story line by line while it runs.
type LessonProgress interface {
	RunStepWith(ctx context.Context, id string, step int, progress func(LessonCommandResult)) (LessonRun, error)
}

// RunStepWith is RunStepResults that also calls progress (when not nil)
// with each command's line as soon as it is known.
func (lc *LessonCatalog) RunStepWith(ctx context.Context, id string, step int, progress func(LessonCommandResult)) (LessonRun, error) {
	l, ok := lc.catalog.Lookup(id)
	if !ok {
		return LessonRun{}, notFound("There is no lesson %s; GET /api/lessons lists them.", inventory.Echo(id))
	}
	if step < 0 || step >= len(l.Steps) {
		return LessonRun{}, badRequest("Step must be a number from 0 to %d for lesson %q.", len(l.Steps)-1, id)
	}
	var have []string
	for _, r := range lc.lab.State().Regions {
		have = append(have, r.Name)
	}
	var missing []string
	for _, r := range l.Regions {
		if !slices.Contains(have, r) {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return LessonRun{}, &apiError{http.StatusConflict, fmt.Sprintf(
			"Lesson %q needs the regions %s, but this lab runs %s; start caplab with --regions %s.",
			id, strings.Join(missing, ", "), strings.Join(have, ", "), strings.Join(l.Regions, ","))}
	}

	lc.mu.Lock()
	defer lc.mu.Unlock()
	r := lc.runners[id]
	if r == nil || r.Lesson() != l {
		r = lessons.NewRunner(l, lc.lab, nil)
		r.Load = lc.load
		lc.runners[id] = r
	}
	cities := map[string]string{}
	for _, rs := range lc.lab.State().Regions {
		cities[rs.Name] = rs.City
	}
	city := func(r string) string { return cities[r] }
	r.Progress = nil
	if progress != nil {
		r.Progress = func(cr lessons.CommandResult) { progress(lessons.Line(cr, city)) }
	}
	res, err := r.RunStep(ctx, step)
	r.Progress = nil
	run := LessonRun{Results: lessons.Lines(res, city)}
	passed := 0
	for _, c := range res.Commands {
		if c.Status == lessons.StatusPassed {
			passed++
		}
	}
	var f *lessons.Failure
	switch {
	case err == nil:
		run.Report = fmt.Sprintf("%s ran; %s.", plural(len(res.Commands), "command"), expectations(passed))
	case errors.As(err, &f):
		run.Failed = true
		if f.Expected != "" {
			run.Report = fmt.Sprintf("Stopped at line %d: expected %s, got %s.", f.Line, f.Expected, f.Got)
		} else {
			run.Report = fmt.Sprintf("Stopped at line %d: %s: %s", f.Line, f.Command, sentence(f.Got))
		}
	default:
		run.Failed = true
		run.Report = sentence(err.Error())
		return run, err
	}
	return run, nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func expectations(n int) string {
	switch n {
	case 0:
		return "nothing to check"
	case 1:
		return "1 expectation met"
	}
	return strconv.Itoa(n) + " expectations met"
}

// --- handlers (routes in server.go, documented in doc.go)

func (s *Server) noLessons(w http.ResponseWriter) bool {
	if s.session == nil {
		writeError(w, http.StatusNotFound, "No lessons are loaded in this lab.")
		return true
	}
	return false
}

// handleSession answers GET /api/lesson: the open lesson, the open poll
// (the tally only for presenters until revealed) and the caller's vote.
func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	if s.noLessons(w) {
		return
	}
	writeJSON(w, http.StatusOK, s.session.snapshot(s.authenticate(r) != authNone, s.viewerID(r)))
}

// handleSetLesson answers PUT /api/lesson {"lesson":"id","step":0}: every
// page moves to that step; "lesson":"" closes the lesson.
func (s *Server) handleSetLesson(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Lesson *string `json:"lesson"`
		Step   *int    `json:"step"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.noLessons(w) {
		return
	}
	// Closing the lesson closes it on every page: only a request that
	// says so does it, never an empty body, null or a lost field.
	if req.Lesson == nil {
		s.fail(w, r, badRequest("Say which lesson: {\"lesson\":\"ID\",\"step\":0} (GET /api/lessons lists them), or {\"lesson\":\"\"} to close the open one."))
		return
	}
	step := 0
	if req.Step != nil {
		step = *req.Step
	}
	if len(*req.Lesson) > 200 {
		s.fail(w, r, badRequest("A lesson id is at most 200 characters; GET /api/lessons lists them."))
		return
	}
	if err := s.session.set(*req.Lesson, step); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.session.snapshot(true, s.viewerID(r)))
}

// handleRunStep answers POST /api/lessons/{id}/steps/{step}/run: every page
// moves to that step and follows the run. An unmet expectation is still a
// 200, with "failed": true.
func (s *Server) handleRunStep(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.noLessons(w) {
		return
	}
	id := r.PathValue("id")
	step, err := strconv.Atoi(r.PathValue("step"))
	if err != nil {
		step = -1
	}
	// The run outlives a closed browser tab: the lab should not stop
	// half-way through a step. Close or the deadline end it.
	run, err := s.session.run(context.WithoutCancel(r.Context()), id, step)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"lesson": id, "step": step, "report": run.Report, "results": run.Results, "failed": run.Failed})
}

func (s *Server) handleReveal(w http.ResponseWriter, r *http.Request) {
	s.pollAction(w, r, s.session.reveal)
}

func (s *Server) handleNextQuestion(w http.ResponseWriter, r *http.Request) {
	s.pollAction(w, r, s.session.nextQuestion)
}

func (s *Server) pollAction(w http.ResponseWriter, r *http.Request, act func() (*pollView, error)) {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.noLessons(w) {
		return
	}
	p, err := act()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"poll": p})
}

// handleVote answers POST /api/poll/vote {"option":"X"}. It is open to
// viewers — the audience's only action — so it asks for what a browser on
// the page has: an Origin naming this host, and the viewer cookie the page
// set.
func (s *Server) handleVote(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o == "" || !originMatchesHost(o, r.Host) || r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		from := o
		if from == "" {
			from = "a request without an Origin header"
		}
		writeError(w, http.StatusForbidden, "Votes come only from the lab's own page, not from %s; open the page and vote there.", from)
		return
	}
	voter := s.viewerID(r)
	if voter == "" {
		writeError(w, http.StatusForbidden, "Votes are counted once per browser: reload the lab page (it sets the %s cookie), then vote.", viewerCookie)
		return
	}
	var req struct {
		Option *string `json:"option"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.noLessons(w) {
		return
	}
	option := ""
	if req.Option != nil {
		option = *req.Option
	}
	votes, err := s.admitVote(r, voter, func() (int, error) { return s.session.vote(voter, option) })
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"option": option, "votes": votes})
}
