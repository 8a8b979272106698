package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	// viewerCookie identifies a browser for one vote per poll.
	viewerCookie = "caplab_viewer"
)

// LessonPoll is an "ask" of a step: a question the audience votes on before
// the step's lab block shows the answer. Answer never leaves the server
// before the presenter reveals it.
type LessonPoll struct {
	Question string   `json:"question"`
	Options  []string `json:"options"`
	Answer   string   `json:"-"`
}

// LessonCommandResult is how one command of a step went, for the panel.
type LessonCommandResult struct {
	Line    int    `json:"line"`
	Command string `json:"command"`
	// Status is done, passed, failed or error (lessons.Status).
	Status string `json:"status"`
	// Text is the runner's progress line: what happened.
	Text string `json:"text"`
}

// LessonRun is what running one step did.
type LessonRun struct {
	Report  string                `json:"report"`
	Results []LessonCommandResult `json:"results"`
	// Failed is set when an expectation did not hold or the lab refused;
	// Results then ends at that command.
	Failed bool `json:"failed"`
}

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
			ls.Commands = append(ls.Commands, commandLine(c))
		}
		for _, p := range st.Polls {
			ls.Polls = append(ls.Polls, LessonPoll{Question: p.Question, Options: slices.Clone(p.Options), Answer: p.Answer})
		}
		out.StepList = append(out.StepList, ls)
	}
	return out, true
}

// commandLine is a command as the learner sees it: its source, or for an
// ask the question and options without the answer.
func commandLine(c lessons.Command) string {
	if a, ok := c.Action.(lessons.Ask); ok {
		return `ask "` + a.Poll.Question + `" options ` + strings.Join(a.Poll.Options, " | ")
	}
	return c.Source
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
		return LessonRun{}, notFound("There is no lesson %q; GET /api/lessons lists them.", id)
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
	run := LessonRun{Results: make([]LessonCommandResult, 0, len(res.Commands))}
	passed := 0
	for _, c := range res.Commands {
		run.Results = append(run.Results, LessonCommandResult{
			Line: c.Command.Line, Command: commandLine(c.Command), Status: string(c.Status), Text: c.Text,
		})
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

// lessonView is the open lesson at its current step, as every page shows
// it: the "lesson" of a lesson frame.
type lessonView struct {
	ID         string                `json:"id"`
	Title      string                `json:"title"`
	Step       int                   `json:"step"`  // from 0
	Steps      int                   `json:"steps"` // how many
	StepTitle  string                `json:"stepTitle"`
	StepTitles []string              `json:"stepTitles"`
	HTML       string                `json:"html"`
	Commands   []string              `json:"commands"`
	Polls      int                   `json:"polls"`   // questions in this step
	Results    []LessonCommandResult `json:"results"` // of the last run of this step; [] before
	Ran        bool                  `json:"ran"`
	Running    bool                  `json:"running"`
	Failed     bool                  `json:"failed"`
	Report     string                `json:"report,omitempty"`
}

// pollView is the open poll: the "poll" of a poll frame. Tally (votes per
// option, in Options order) and Answer are in viewers' frames only once
// Revealed; presenters' frames carry the tally live.
type pollView struct {
	Lesson   string   `json:"lesson"`
	Step     int      `json:"step"`
	Index    int      `json:"index"` // which question of the step, from 0
	Count    int      `json:"count"` // questions in the step
	Question string   `json:"question"`
	Options  []string `json:"options"`
	Tally    []int    `json:"tally,omitempty"`
	Votes    int      `json:"votes"`
	Revealed bool     `json:"revealed"`
	Answer   string   `json:"answer,omitempty"`
}

// openPoll is the question the audience votes on.
type openPoll struct {
	step, index int
	poll        LessonPoll
	votes       map[string]int // viewer cookie → option index
	revealed    bool
}

// lessonSession is the lesson every page follows. A mutex guards it; every
// change is broadcast through the hub while the mutex is held, so frames
// leave in the order of the changes. Runs happen outside the mutex, with
// running set so that nothing else moves meanwhile.
type lessonSession struct {
	provider Lessons
	hub      *hub
	log      *slog.Logger
	ctx      context.Context // cancelled by close: ends a running step
	cancel   context.CancelFunc

	mu         sync.Mutex
	lesson     *Lesson // nil: none open
	step       int
	runs       map[int]LessonRun // per step of the open lesson
	running    bool
	poll       *openPoll
	tallyTimer *time.Timer // pending throttled poll frame
	closed     bool
}

func newLessonSession(p Lessons, h *hub, log *slog.Logger) *lessonSession {
	ctx, cancel := context.WithCancel(context.Background())
	return &lessonSession{provider: p, hub: h, log: log, ctx: ctx, cancel: cancel}
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

// view is the lesson as pages show it; nil when none is open. Hold mu.
func (ls *lessonSession) view() *lessonView {
	if ls.lesson == nil {
		return nil
	}
	l := ls.lesson
	st := l.StepList[ls.step]
	v := &lessonView{
		ID: l.ID, Title: l.Title, Step: ls.step, Steps: len(l.StepList),
		StepTitle: st.Title, HTML: st.HTML, Commands: st.Commands, Polls: len(st.Polls),
		Results: []LessonCommandResult{}, Running: ls.running,
	}
	if v.Commands == nil {
		v.Commands = []string{}
	}
	for _, s := range l.StepList {
		v.StepTitles = append(v.StepTitles, s.Title)
	}
	if run, ok := ls.runs[ls.step]; ok {
		v.Ran = !ls.running
		v.Results, v.Failed, v.Report = run.Results, run.Failed, run.Report
	}
	return v
}

// pollViewFor is the open poll for a presenter or a viewer; nil when none.
// Hold mu.
func (ls *lessonSession) pollViewFor(presenter bool) *pollView {
	p := ls.poll
	if p == nil {
		return nil
	}
	v := &pollView{
		Lesson: ls.lesson.ID, Step: p.step, Index: p.index, Count: len(ls.lesson.StepList[p.step].Polls),
		Question: p.poll.Question, Options: p.poll.Options, Votes: len(p.votes), Revealed: p.revealed,
	}
	if presenter || p.revealed {
		v.Tally = make([]int, len(p.poll.Options))
		for _, i := range p.votes {
			v.Tally[i]++
		}
	}
	if p.revealed {
		v.Answer = p.poll.Answer
	}
	return v
}

// publishLesson sends the lesson frame to everyone. Hold mu.
func (ls *lessonSession) publishLesson() {
	b, err := json.Marshal(frame{Type: frameLesson, Lesson: ls.view()})
	if err != nil {
		ls.log.Error("web: encode lesson frame", "err", err)
		return
	}
	ls.hub.sendMsg(outMsg{viewer: b, sticky: frameLesson})
}

// publishPoll sends the poll frame: the viewers' version and the
// presenters'. Hold mu.
func (ls *lessonSession) publishPoll() {
	if ls.tallyTimer != nil {
		ls.tallyTimer.Stop()
		ls.tallyTimer = nil
	}
	vb, err1 := json.Marshal(frame{Type: framePoll, Poll: ls.pollViewFor(false)})
	pb, err2 := json.Marshal(frame{Type: framePoll, Poll: ls.pollViewFor(true)})
	if err := errors.Join(err1, err2); err != nil {
		ls.log.Error("web: encode poll frame", "err", err)
		return
	}
	ls.hub.sendMsg(outMsg{viewer: vb, presenter: pb, sticky: framePoll})
}

// moveTo opens lesson l at step (l nil closes the lesson) and opens the
// step's first question. Hold mu.
func (ls *lessonSession) moveTo(l *Lesson, step int) {
	if l == nil || ls.lesson == nil || ls.lesson.ID != l.ID {
		ls.runs = map[int]LessonRun{}
	}
	ls.lesson, ls.step = l, step
	ls.poll = nil
	if l != nil && len(l.StepList[step].Polls) > 0 {
		_, ran := ls.runs[step]
		ls.poll = &openPoll{step: step, poll: l.StepList[step].Polls[0], votes: map[string]int{}, revealed: ran}
	}
	ls.publishLesson()
	ls.publishPoll()
}

// lookup finds lesson id and checks step.
func (ls *lessonSession) lookup(id string, step int) (*Lesson, error) {
	l, ok := ls.provider.Lesson(id)
	if !ok {
		return nil, notFound("There is no lesson %q; GET /api/lessons lists them.", id)
	}
	if len(l.StepList) == 0 {
		return nil, badRequest("Lesson %q has no steps.", id)
	}
	if step < 0 || step >= len(l.StepList) {
		return nil, badRequest("Step must be a number from 0 to %d for lesson %q.", len(l.StepList)-1, id)
	}
	return &l, nil
}

func errRunning() error {
	return conflict("A step is running; wait for it to finish (at most %v).", lessonStepTimeout)
}

// set opens lesson id at step; id "" closes the lesson.
func (ls *lessonSession) set(id string, step int) error {
	var l *Lesson
	if id != "" {
		var err error
		if l, err = ls.lookup(id, step); err != nil {
			return err
		}
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.running {
		return errRunning()
	}
	if l != nil && ls.lesson != nil && ls.lesson.ID == l.ID {
		l = ls.lesson // keep the lesson as opened
	}
	ls.moveTo(l, step)
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
	if ls.running {
		ls.mu.Unlock()
		return LessonRun{}, errRunning()
	}
	if ls.closed {
		ls.mu.Unlock()
		return LessonRun{}, conflict("The lab is shutting down.")
	}
	if ls.lesson == nil || ls.lesson.ID != id || ls.step != step {
		if ls.lesson != nil && ls.lesson.ID == id {
			l = ls.lesson
		}
		ls.moveTo(l, step)
	}
	ls.running = true
	ls.runs[step] = LessonRun{Results: []LessonCommandResult{}}
	ls.publishLesson()
	if ls.poll != nil && !ls.poll.revealed {
		ls.poll.revealed = true
		ls.publishPoll()
	}
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
	ls.running = false
	ls.runs[step] = run
	if !ls.closed {
		ls.publishLesson()
	}
	return run, err
}

// reveal shows the open question's tally and answer to everyone.
func (ls *lessonSession) reveal() (*pollView, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.poll == nil {
		return nil, conflict("No poll is open: go to a step that asks the audience a question.")
	}
	if !ls.poll.revealed {
		ls.poll.revealed = true
		ls.publishPoll()
	}
	return ls.pollViewFor(true), nil
}

// nextQuestion opens the current step's next question.
func (ls *lessonSession) nextQuestion() (*pollView, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.poll == nil {
		return nil, conflict("No poll is open: go to a step that asks the audience a question.")
	}
	polls := ls.lesson.StepList[ls.poll.step].Polls
	next := ls.poll.index + 1
	if next >= len(polls) {
		return nil, conflict("This step asks no further question.")
	}
	_, ran := ls.runs[ls.poll.step]
	ls.poll = &openPoll{step: ls.poll.step, index: next, poll: polls[next], votes: map[string]int{}, revealed: ran}
	ls.publishPoll()
	return ls.pollViewFor(true), nil
}

// vote records voter's choice of option, replacing an earlier one; tally
// frames follow at most every tallyInterval.
func (ls *lessonSession) vote(voter, option string) (int, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	p := ls.poll
	if p == nil {
		return 0, conflict("No poll is open; wait for the presenter's question.")
	}
	if p.revealed {
		return 0, conflict("The answer is out, so voting on %q has closed.", p.poll.Question)
	}
	i := slices.Index(p.poll.Options, option)
	if i < 0 {
		quoted := make([]string, len(p.poll.Options))
		for k, o := range p.poll.Options {
			quoted[k] = strconv.Quote(o)
		}
		return 0, badRequest("%q is not an option; vote for one of %s.", option, strings.Join(quoted, ", "))
	}
	if _, ok := p.votes[voter]; !ok && len(p.votes) >= maxVoters {
		return 0, &apiError{http.StatusTooManyRequests, fmt.Sprintf("This poll already counts %d voters, the most it takes; your vote was not added.", maxVoters)}
	}
	p.votes[voter] = i
	if ls.tallyTimer == nil && !ls.closed {
		ls.tallyTimer = time.AfterFunc(tallyInterval, ls.flushTally)
	}
	return len(p.votes), nil
}

// flushTally sends the poll frame the votes since the last one call for.
func (ls *lessonSession) flushTally() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closed || ls.tallyTimer == nil {
		return
	}
	ls.tallyTimer = nil
	ls.publishPoll()
}

// snapshot is GET /api/lesson for a presenter or a viewer.
func (ls *lessonSession) snapshot(presenter bool, voter string) map[string]any {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := map[string]any{"lesson": ls.view(), "poll": ls.pollViewFor(presenter), "vote": ""}
	if ls.poll != nil {
		if i, ok := ls.poll.votes[voter]; ok {
			out["vote"] = ls.poll.poll.Options[i]
		}
	}
	return out
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
	writeJSON(w, http.StatusOK, s.session.snapshot(s.authenticate(r) != authNone, viewerID(r)))
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
	writeJSON(w, http.StatusOK, s.session.snapshot(true, viewerID(r)))
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
	voter := viewerID(r)
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
	votes, err := s.session.vote(voter, option)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"option": option, "votes": votes})
}

// viewerID is the caller's caplab_viewer cookie, "" when absent or not
// one the lab could have set (32 lowercase hex digits).
func viewerID(r *http.Request) string {
	c, err := r.Cookie(viewerCookie)
	if err != nil || !validViewerID(c.Value) {
		return ""
	}
	return c.Value
}

func validViewerID(v string) bool {
	if len(v) != 32 {
		return false
	}
	for _, ch := range v {
		if (ch < '0' || ch > '9') && (ch < 'a' || ch > 'f') {
			return false
		}
	}
	return true
}

// setViewerCookie gives a browser without one its random viewer id, for one
// vote per poll.
func setViewerCookie(w http.ResponseWriter, r *http.Request) {
	if viewerID(r) != "" {
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	http.SetCookie(w, &http.Cookie{
		Name:     viewerCookie,
		Value:    hex.EncodeToString(b[:]),
		Path:     "/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}
