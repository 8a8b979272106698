package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"caplab/lab"
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
	return LessonSummary{ID: l.Name, Title: l.Title, Summary: l.Summary, Steps: len(l.Steps)}
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
	l, ok := lc.catalog.Lookup(id)
	if !ok {
		return LessonRun{}, notFound("There is no lesson %s; GET /api/lessons lists them.", lab.Echo(id))
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
	res, err := r.RunStep(ctx, step)
	cities := map[string]string{}
	for _, rs := range lc.lab.State().Regions {
		cities[rs.Name] = rs.City
	}
	run := LessonRun{Results: lessons.Lines(res, func(r string) string { return cities[r] })}
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

// --- the shared session

// lessonView and pollView are the session's views (lessons.Session): the
// "lesson" of a lesson frame and the "poll" of a poll frame.
type (
	lessonView = lessons.LessonView
	pollView   = lessons.PollView
)

// LessonSource is implemented by a Lessons provider whose lessons a
// classroom session can open (LessonCatalog does): the parsed lesson, for
// the spoiler rule. Without it the page has no shared session.
type LessonSource interface {
	Source(id string) (*lessons.Lesson, bool)
}

// lessonSession serves the shared lessons.Session: a mutex guards it;
// every change is broadcast through the hub while the mutex is held, so
// frames leave in the order of the changes. Runs happen outside the mutex,
// with the session marked running so that nothing else moves meanwhile.
type lessonSession struct {
	provider Lessons
	source   LessonSource
	hub      *hub
	log      *slog.Logger
	ctx      context.Context // cancelled by close: ends a running step
	cancel   context.CancelFunc

	mu         sync.Mutex
	s          lessons.Session
	tallyTimer *time.Timer // pending throttled poll frame
	closed     bool
}

func newLessonSession(p Lessons, src LessonSource, h *hub, log *slog.Logger) *lessonSession {
	ctx, cancel := context.WithCancel(context.Background())
	ls := &lessonSession{provider: p, source: src, hub: h, log: log, ctx: ctx, cancel: cancel}
	ls.s.MaxVoters = maxVoters
	return ls
}

// close cancels a running step and stops the tally timer.
func (ls *lessonSession) close() {
	ls.cancel()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.closed = true
	if ls.tallyTimer != nil {
		ls.tallyTimer.Stop()
		ls.tallyTimer = nil
	}
}

func conflict(format string, args ...any) error {
	return &apiError{http.StatusConflict, fmt.Sprintf(format, args...)}
}

// sessionErr gives a refused session change its HTTP status.
func sessionErr(err error) error {
	var se *lessons.SessionError
	if !errors.As(err, &se) {
		return err
	}
	switch se.Kind {
	case lessons.BadInput:
		return &apiError{http.StatusBadRequest, se.Msg}
	case lessons.Full:
		return &apiError{http.StatusTooManyRequests, se.Msg}
	}
	return &apiError{http.StatusConflict, se.Msg}
}

// publish sends the lesson and poll frames, each in a viewer's and a
// presenter's version. Hold mu.
func (ls *lessonSession) publish() {
	if ls.closed {
		return
	}
	if ls.tallyTimer != nil {
		ls.tallyTimer.Stop()
		ls.tallyTimer = nil
	}
	lv, err1 := json.Marshal(frame{Type: frameLesson, Lesson: ls.s.View(false)})
	lp, err2 := json.Marshal(frame{Type: frameLesson, Lesson: ls.s.View(true)})
	pv, err3 := json.Marshal(frame{Type: framePoll, Poll: ls.s.PollView(false)})
	pp, err4 := json.Marshal(frame{Type: framePoll, Poll: ls.presenterPoll()})
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		ls.log.Error("web: encode lesson frames", "err", err)
		return
	}
	ls.hub.sendMsg(outMsg{viewer: lv, presenter: lp, sticky: frameLesson})
	ls.hub.sendMsg(outMsg{viewer: pv, presenter: pp, sticky: framePoll})
}

// lookup finds lesson id and checks step.
func (ls *lessonSession) lookup(id string, step int) (*lessons.Lesson, error) {
	l, ok := ls.source.Source(id)
	if !ok {
		return nil, notFound("There is no lesson %s; GET /api/lessons lists them.", lab.Echo(id))
	}
	if len(l.Steps) == 0 {
		return nil, badRequest("Lesson %q has no steps.", id)
	}
	if step < 0 || step >= len(l.Steps) {
		return nil, badRequest("Step must be a number from 0 to %d for lesson %q.", len(l.Steps)-1, id)
	}
	return l, nil
}

// set opens lesson id at step; id "" closes the lesson.
func (ls *lessonSession) set(id string, step int) error {
	var l *lessons.Lesson
	if id != "" {
		var err error
		if l, err = ls.lookup(id, step); err != nil {
			return err
		}
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if err := ls.s.Open(l, step); err != nil {
		return sessionErr(err)
	}
	ls.publish()
	return nil
}

// run moves the session to step of lesson id, reveals its open question
// (voting ends when the lab shows the answer), runs the step's lab block
// and records what it did.
func (ls *lessonSession) run(ctx context.Context, id string, step int) (LessonRun, error) {
	l, err := ls.lookup(id, step)
	if err != nil {
		return LessonRun{}, err
	}
	reporter, _ := ls.provider.(LessonReporter)
	runner, _ := ls.provider.(LessonRunner)
	if reporter == nil && runner == nil {
		return LessonRun{}, notFound("This lab cannot run lesson steps from the page.")
	}

	ls.mu.Lock()
	if ls.closed {
		ls.mu.Unlock()
		return LessonRun{}, conflict("The lab is shutting down.")
	}
	if err := ls.s.BeginRun(l, step); err != nil {
		ls.mu.Unlock()
		return LessonRun{}, sessionErr(err)
	}
	ls.publish()
	ls.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, lessonStepTimeout)
	defer cancel()
	stop := context.AfterFunc(ls.ctx, cancel)
	defer stop()
	var run LessonRun
	if reporter != nil {
		run, err = reporter.RunStepResults(ctx, id, step)
	} else {
		run.Report, err = runner.RunStep(ctx, id, step)
	}
	if err != nil {
		run.Failed = true
		if run.Report == "" {
			run.Report = sentence(err.Error())
		}
	}
	if run.Results == nil {
		run.Results = []LessonCommandResult{}
	}

	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.s.EndRun(run)
	ls.publish()
	return run, err
}

// reveal shows the open question's tally and answer to everyone.
func (ls *lessonSession) reveal() (*pollView, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if err := ls.s.Reveal(); err != nil {
		return nil, sessionErr(err)
	}
	ls.publish()
	return ls.presenterPoll(), nil
}

// nextQuestion opens the current step's next question.
func (ls *lessonSession) nextQuestion() (*pollView, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if err := ls.s.NextQuestion(); err != nil {
		return nil, sessionErr(err)
	}
	ls.publish()
	return ls.presenterPoll(), nil
}

// vote records voter's choice of option, replacing an earlier one; tally
// frames follow at most every tallyInterval.
func (ls *lessonSession) vote(voter, option string) (int, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	n, err := ls.s.Vote(voter, option)
	if err != nil {
		return 0, sessionErr(err)
	}
	if ls.tallyTimer == nil && !ls.closed {
		ls.tallyTimer = time.AfterFunc(tallyInterval, ls.flushTally)
	}
	return n, nil
}

// flushTally sends the poll frame the votes since the last one call for.
func (ls *lessonSession) flushTally() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closed || ls.tallyTimer == nil {
		return
	}
	ls.tallyTimer = nil
	pv, err1 := json.Marshal(frame{Type: framePoll, Poll: ls.s.PollView(false)})
	pp, err2 := json.Marshal(frame{Type: framePoll, Poll: ls.presenterPoll()})
	if err := errors.Join(err1, err2); err != nil {
		ls.log.Error("web: encode poll frame", "err", err)
		return
	}
	ls.hub.sendMsg(outMsg{viewer: pv, presenter: pp, sticky: framePoll})
}

// snapshot is GET /api/lesson for a presenter or a viewer.
func (ls *lessonSession) snapshot(presenter bool, voter string) map[string]any {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return map[string]any{"lesson": ls.s.View(presenter), "poll": ls.pollFor(presenter), "vote": ls.s.VoteOf(voter)}
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
		Lesson string `json:"lesson"`
		Step   *int   `json:"step"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.noLessons(w) {
		return
	}
	step := 0
	if req.Step != nil {
		step = *req.Step
	}
	if len(req.Lesson) > 200 {
		s.fail(w, r, badRequest("A lesson id is at most 200 characters; GET /api/lessons lists them."))
		return
	}
	if err := s.session.set(req.Lesson, step); err != nil {
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

// pollFor is the open poll for a presenter or a viewer; a presenter's also
// says how many viewers are connected now (viewer.go). Hold mu.
func (ls *lessonSession) pollFor(presenter bool) *pollView {
	if presenter {
		return ls.presenterPoll()
	}
	return ls.s.PollView(false)
}

// presenterPoll is the presenter's view of the open poll. Hold mu.
func (ls *lessonSession) presenterPoll() *pollView {
	v := ls.s.PollView(true)
	if v != nil {
		v.Viewers = int(ls.hub.viewers.Load())
	}
	return v
}
