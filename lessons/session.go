package lessons

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"caplab/lab/inventory"
)

// A Session is a classroom's shared lesson: which lesson is open and at
// which step, what each step did when it ran, the question the audience
// votes on, the votes, and the reveal. Every page follows one Session; the
// presenter moves it.
//
// A Session is plain state: it does no I/O, runs nothing and is not safe
// for concurrent use — its owner (the web server) guards it with a mutex,
// runs the step's lab block itself between BeginRun and EndRun, and sends
// the views to the pages after each change.
//
// What a viewer may see follows the spoiler rule (docs/lessons.md): before
// the step's question is revealed or the step has run, a viewer sees the
// prose that poses the question but not the prose after the lab block
// holding it, nor any command carrying an expectation, nor the tally or
// the answer. The presenter's views carry everything, marked, so that the
// presenter's own screen can show notes the projector leaves out.
type Session struct {
	lesson   *Lesson // nil: none open
	step     int
	runs     map[int]StepRun // per step of the open lesson
	revealed map[int]bool    // steps whose every question was revealed
	running  bool
	spans    map[int]StepSpan // when each step of the open lesson last ran
	poll     *openPoll
	// MaxVoters bounds the distinct voters one question counts; 0 means
	// DefaultMaxVoters.
	MaxVoters int
}

// DefaultMaxVoters is how many distinct voters a question counts at most.
const DefaultMaxVoters = 10_000

// openPoll is the question the audience votes on.
type openPoll struct {
	step, index int
	poll        Poll
	votes       map[string]int // voter → option index
	revealed    bool
}

// CommandLine is one command of a step as a page shows it after a run.
type CommandLine struct {
	Line    int    `json:"line"`
	Command string `json:"command"`
	// Status is done, passed, failed or error.
	Status string `json:"status"`
	// Text is the runner's progress line (for instructors: the details).
	Text string `json:"text"`
	// Story is the one line a learner reads: what visibly happened
	// (Story); "" for a command with nothing to show (an ask).
	Story string `json:"story"`
	// Woke marks the outcome of a paused shop's reservation that settled
	// during this step (Command is its reserve line, maybe of an earlier
	// step): a story line, not one of the step's commands.
	Woke bool `json:"woke,omitempty"`
	// SKU is the product the command worked on, if any: the page follows
	// it (story mode).
	SKU string `json:"sku,omitempty"`
	// At is when the command finished: GET /api/state?at= shows the lab
	// as that line left it (the page links each story line there).
	At time.Time `json:"at,omitzero"`
}

// StepRun is what running one step did.
type StepRun struct {
	Report  string        `json:"report"`
	Results []CommandLine `json:"results"`
	// Failed is set when an expectation did not hold or the lab refused;
	// Results then ends at that command.
	Failed bool `json:"failed"`
}

// Lines turns a step's results into the lines a page shows; city names
// regions for people (see Story).
func Lines(res StepResult, city func(string) string) []CommandLine {
	out := make([]CommandLine, 0, len(res.Commands))
	for _, c := range res.Commands {
		out = append(out, Line(c, city))
	}
	return out
}

// Line is one command's result as a page shows it.
func Line(c CommandResult, city func(string) string) CommandLine {
	return CommandLine{
		Line: c.Command.Line, Command: DisplayLine(c.Command), Status: string(c.Status),
		Text: c.Text, Story: Story(c, city), Woke: c.Woke, SKU: SKUOf(c.Command), At: c.Done,
	}
}

// DisplayLine is a command as a page shows it: its source, or for an ask
// the question and options without the answer.
func DisplayLine(c Command) string {
	if a, ok := c.Action.(Ask); ok {
		return `ask "` + a.Poll.Question + `" options ` + strings.Join(a.Poll.Options, " | ")
	}
	return c.Source
}

// Expects reports whether a command states an expected result (an
// "expect …" command or a buy with "expect OUTCOME"): such a command gives
// a prediction away and is held back until the step has run.
func Expects(c Command) bool {
	switch a := c.Action.(type) {
	case ExpectLeader, ExpectRead, ExpectLinearizable, ExpectOversold:
		return true
	case Buy:
		return a.Expect != ""
	}
	return false
}

// HeldBack is what a viewer sees instead of a command with an expectation
// before the step has run.
func HeldBack(c Command) string {
	if b, ok := c.Action.(Buy); ok {
		b.Expect = ""
		return b.String()
	}
	return "expect … (shown once the step has run)"
}

// LessonView is the open lesson at its current step, as a page shows it:
// the "lesson" of a lesson frame and of GET /api/lesson.
type LessonView struct {
	ID         string   `json:"id"`
	Title      string   `json:"title"`
	Step       int      `json:"step"`  // from 0
	Steps      int      `json:"steps"` // how many
	StepTitle  string   `json:"stepTitle"`
	StepTitles []string `json:"stepTitles"`
	// HTML is the prose that may be shown now: the prose posing the
	// question, and once revealed (or run) the prose answering it.
	HTML string `json:"html"`
	// RevealHTML is, for the presenter only and only before the reveal,
	// the prose that answers the step's question: presenter notes.
	RevealHTML string `json:"revealHtml,omitempty"`
	// Revealed: the step's answers are out (its questions revealed, or
	// it ran), so HTML holds all of its prose.
	Revealed bool `json:"revealed"`
	// Commands are the step's lines. Before the step ran, a viewer's copy
	// holds back each expectation; Held marks those lines (in the
	// presenter's copy too, where the text is intact).
	Commands []string      `json:"commands"`
	Held     []bool        `json:"held"`
	Polls    int           `json:"polls"`   // questions in this step
	Results  []CommandLine `json:"results"` // of the last run of this step; [] before
	Ran      bool          `json:"ran"`
	Running  bool          `json:"running"`
	Failed   bool          `json:"failed"`
	Report   string        `json:"report,omitempty"`
	// Product is the product the step works on now: the SKU of the last
	// command run that named one, else the step's own (Lesson.Product).
	// Pages follow it: their product, score and checker (story mode).
	Product string `json:"product,omitempty"`
	// Minutes is how long a class spends on the lesson (Lesson.Minutes).
	Minutes int `json:"minutes"`
	// Spans say when each step that ran last ran (To is zero while it
	// runs): a page names the step an operation belongs to by its call.
	Spans []StepSpan `json:"spans,omitempty"`
}

// StepSpan is when one step ran: Step from 0, To zero while it runs.
type StepSpan struct {
	Step int       `json:"step"`
	From time.Time `json:"from"`
	To   time.Time `json:"to,omitzero"`
}

// PollView is the open question: the "poll" of a poll frame. Options are
// the values a vote sends; Labels the words shown for them. Tally (votes
// per option, in Options order) and Answer reach viewers only once
// Revealed; a presenter's view carries the tally live.
type PollView struct {
	Lesson      string   `json:"lesson"`
	Step        int      `json:"step"`
	Index       int      `json:"index"` // which question of the step, from 0
	Count       int      `json:"count"` // questions in the step
	Question    string   `json:"question"`
	Options     []string `json:"options"`
	Labels      []string `json:"labels"`
	Tally       []int    `json:"tally,omitempty"`
	Votes       int      `json:"votes"`
	Viewers     int      `json:"viewers,omitempty"` // presenters: viewers connected now (set by web)
	Revealed    bool     `json:"revealed"`
	Answer      string   `json:"answer,omitempty"`
	AnswerLabel string   `json:"answerLabel,omitempty"`
}

// SessionErrorKind says what kind of refusal a SessionError is.
type SessionErrorKind int

// Kinds of SessionError.
const (
	Conflict SessionErrorKind = iota // the session's state does not allow it now
	BadInput                         // the request names something that does not exist
	Full                             // a bound was reached
)

// SessionError is a refused session change, with a sentence for a person.
type SessionError struct {
	Kind SessionErrorKind
	Msg  string
}

func (e *SessionError) Error() string { return e.Msg }

func refuse(k SessionErrorKind, format string, args ...any) error {
	return &SessionError{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// ErrStepRunning is the sentence for changes refused while a step runs.
const errStepRunning = "A step is running; wait for it to finish."

// Open opens lesson l at step (0-based) and opens the step's first
// question; nil closes the lesson. Reopening the open lesson keeps what its
// steps did. It is refused while a step runs or when step is out of range.
func (s *Session) Open(l *Lesson, step int) error {
	if s.running {
		return refuse(Conflict, errStepRunning)
	}
	if l != nil && (step < 0 || step >= len(l.Steps)) {
		return refuse(BadInput, "Step must be a number from 0 to %d for lesson %q.", len(l.Steps)-1, l.Name)
	}
	s.moveTo(l, step)
	return nil
}

func (s *Session) moveTo(l *Lesson, step int) {
	if l == nil || s.lesson == nil || s.lesson.Name != l.Name {
		s.runs = map[int]StepRun{}
		s.revealed = map[int]bool{}
		s.spans = map[int]StepSpan{}
	}
	s.lesson, s.step, s.poll = l, step, nil
	if l != nil && len(l.Steps[step].Polls) > 0 {
		_, ran := s.runs[step]
		s.poll = &openPoll{step: step, poll: l.Steps[step].Polls[0], votes: map[string]int{}, revealed: ran}
	}
}

// Restart puts the open lesson back at its first step and forgets what
// its steps did and every vote (a new group in the same class); refused
// while a step runs. With no lesson open it does nothing.
func (s *Session) Restart() error {
	if s.running {
		return refuse(Conflict, errStepRunning)
	}
	l := s.lesson
	s.moveTo(nil, 0)
	if l != nil {
		s.moveTo(l, 0)
	}
	return nil
}

// Current is the open lesson (nil when none) and its step.
func (s *Session) Current() (*Lesson, int) { return s.lesson, s.step }

// Running reports whether a step is running.
func (s *Session) Running() bool { return s.running }

// BeginRun moves the session to step of l (if it is not there), marks the
// step running and reveals its open question: voting ends when the lab
// shows the answer. The caller then runs the step and calls EndRun.
func (s *Session) BeginRun(l *Lesson, step int) error {
	if s.running {
		return refuse(Conflict, errStepRunning)
	}
	if step < 0 || step >= len(l.Steps) {
		return refuse(BadInput, "Step must be a number from 0 to %d for lesson %q.", len(l.Steps)-1, l.Name)
	}
	if s.lesson == nil || s.lesson.Name != l.Name || s.step != step {
		if s.lesson != nil && s.lesson.Name == l.Name {
			l = s.lesson
		}
		s.moveTo(l, step)
	}
	s.running = true
	s.runs[step] = StepRun{Results: []CommandLine{}}
	if s.poll != nil {
		s.poll.revealed = true
	}
	return nil
}

// Mark records when the running step began (to zero) or ended; the
// session keeps no clock of its own.
func (s *Session) Mark(from, to time.Time) {
	if s.lesson == nil {
		return
	}
	if s.spans == nil {
		s.spans = map[int]StepSpan{}
	}
	s.spans[s.step] = StepSpan{Step: s.step, From: from, To: to}
}

// Progress adds one command's line to the running step's results, as it
// happens; EndRun then records the whole run.
func (s *Session) Progress(line CommandLine) {
	if !s.running {
		return
	}
	run := s.runs[s.step]
	run.Results = append(run.Results, line)
	s.runs[s.step] = run
}

// EndRun records what the running step did and ends the run.
func (s *Session) EndRun(run StepRun) {
	if !s.running {
		return
	}
	s.running = false
	if run.Results == nil {
		run.Results = []CommandLine{}
	}
	s.runs[s.step] = run
}

// Reveal shows the open question's tally and answer to everyone; the
// step's answering prose too once its last question is revealed.
func (s *Session) Reveal() error {
	if s.poll == nil {
		return refuse(Conflict, "No poll is open: go to a step that asks the audience a question.")
	}
	s.poll.revealed = true
	if s.poll.index == len(s.lesson.Steps[s.poll.step].Polls)-1 {
		s.revealed[s.poll.step] = true
	}
	return nil
}

// NextQuestion opens the current step's next question.
func (s *Session) NextQuestion() error {
	if s.poll == nil {
		return refuse(Conflict, "No poll is open: go to a step that asks the audience a question.")
	}
	polls := s.lesson.Steps[s.poll.step].Polls
	next := s.poll.index + 1
	if next >= len(polls) {
		return refuse(Conflict, "This step asks no further question.")
	}
	_, ran := s.runs[s.poll.step]
	s.poll = &openPoll{step: s.poll.step, index: next, poll: polls[next], votes: map[string]int{}, revealed: ran}
	return nil
}

// Vote records voter's choice of option (a value of Options), replacing an
// earlier one, and returns how many have voted.
func (s *Session) Vote(voter, option string) (int, error) {
	p := s.poll
	if p == nil {
		return 0, refuse(Conflict, "No poll is open; wait for the presenter's question.")
	}
	if p.revealed {
		return 0, refuse(Conflict, "The answer is out, so voting on %q has closed.", p.poll.Question)
	}
	i := slices.Index(p.poll.Options, option)
	if i < 0 {
		quoted := make([]string, len(p.poll.Options))
		for k, o := range p.poll.Options {
			quoted[k] = strconv.Quote(o)
		}
		return 0, refuse(BadInput, "%s is not an option; vote for one of %s.", inventory.Echo(option), strings.Join(quoted, ", "))
	}
	limit := s.MaxVoters
	if limit <= 0 {
		limit = DefaultMaxVoters
	}
	if _, ok := p.votes[voter]; !ok && len(p.votes) >= limit {
		return 0, refuse(Full, "This poll already counts %d voters, the most it takes; your vote was not added.", limit)
	}
	p.votes[voter] = i
	return len(p.votes), nil
}

// VoteOf is voter's vote on the open question, "" when none.
func (s *Session) VoteOf(voter string) string {
	if s.poll == nil {
		return ""
	}
	if i, ok := s.poll.votes[voter]; ok {
		return s.poll.poll.Options[i]
	}
	return ""
}

// stepRevealed reports whether the open step's answers are out.
func (s *Session) stepRevealed() bool {
	if s.lesson == nil {
		return false
	}
	_, ran := s.runs[s.step]
	return (ran && !s.running) || s.revealed[s.step] || len(s.lesson.Steps[s.step].Polls) == 0
}

// View is the open lesson for a presenter or a viewer; nil when none is
// open.
func (s *Session) View(presenter bool) *LessonView {
	if s.lesson == nil {
		return nil
	}
	l := s.lesson
	st := l.Steps[s.step]
	v := &LessonView{
		ID: l.Name, Title: l.Title, Step: s.step, Steps: len(l.Steps), StepTitle: st.Title,
		Polls: len(st.Polls), Results: []CommandLine{}, Running: s.running,
		Commands: make([]string, 0, len(st.Commands)), Held: make([]bool, 0, len(st.Commands)),
	}
	for _, x := range l.Steps {
		v.StepTitles = append(v.StepTitles, x.Title)
	}
	run, ran := s.runs[s.step]
	if ran {
		v.Ran = !s.running
		v.Results, v.Failed, v.Report = run.Results, run.Failed, run.Report
	}
	v.Product, v.Minutes = l.Product(s.step), l.Minutes()
	for i := range l.Steps {
		if sp, ok := s.spans[i]; ok {
			v.Spans = append(v.Spans, sp)
		}
	}
	for _, r := range v.Results {
		if r.SKU != "" {
			v.Product = r.SKU
		}
	}
	v.Revealed = s.stepRevealed()
	pose, reveal := st.Pose.HTML, st.Reveal.HTML
	if s.step == 0 && l.Intro.HTML != "" {
		pose = l.Intro.HTML + pose
	}
	v.HTML = pose
	switch {
	case v.Revealed:
		v.HTML += reveal
	case presenter:
		v.RevealHTML = reveal
	}
	for _, c := range st.Commands {
		held := Expects(c) && !v.Ran
		text := DisplayLine(c)
		if held && !presenter {
			text = HeldBack(c)
		}
		v.Commands = append(v.Commands, text)
		v.Held = append(v.Held, held)
	}
	return v
}

// PollView is the open question for a presenter or a viewer; nil when
// none is open.
func (s *Session) PollView(presenter bool) *PollView {
	p := s.poll
	if p == nil {
		return nil
	}
	v := &PollView{
		Lesson: s.lesson.Name, Step: p.step, Index: p.index, Count: len(s.lesson.Steps[p.step].Polls),
		Question: p.poll.Question, Options: slices.Clone(p.poll.Options), Labels: OptionLabels(p.poll.Options),
		Votes: len(p.votes), Revealed: p.revealed,
	}
	if presenter || p.revealed {
		v.Tally = make([]int, len(p.poll.Options))
		for _, i := range p.votes {
			v.Tally[i]++
		}
	}
	if p.revealed {
		v.Answer, v.AnswerLabel = p.poll.Answer, OptionLabel(p.poll.Answer)
	}
	return v
}
