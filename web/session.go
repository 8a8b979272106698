package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"caplab/lab/inventory"
	"caplab/lessons"
)

// The shared lesson session every page follows: a lessons.Session (the
// rules) served through the hub. Handlers are in lessons.go.

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
		return nil, notFound("There is no lesson %s; GET /api/lessons lists them.", inventory.Echo(id))
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
	began := time.Now()
	ls.s.Mark(began, time.Time{})
	ls.publish()
	ls.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, lessonStepTimeout)
	defer cancel()
	stop := context.AfterFunc(ls.ctx, cancel)
	defer stop()
	var run LessonRun
	if pr, ok := ls.provider.(LessonProgress); ok {
		run, err = pr.RunStepWith(ctx, id, step, ls.progress)
	} else if reporter != nil {
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
	ls.s.Mark(began, time.Now())
	ls.s.EndRun(run)
	ls.publish()
	return run, err
}

// progress shows one command's line on every page as the step runs (the
// captions on the stage follow it).
func (ls *lessonSession) progress(line LessonCommandResult) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.s.Progress(line)
	ls.publish()
}

// isRunning reports whether a step is running.
func (ls *lessonSession) isRunning() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.s.Running()
}

// restart puts the open lesson back at its first step with no votes and
// no runs (a new group).
func (ls *lessonSession) restart() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.s.Restart() == nil {
		ls.publish()
	}
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
