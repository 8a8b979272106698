package lessons

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"caplab/lab"
	verdict "caplab/lab/check"
	"caplab/lab/inventory"
	"caplab/lab/load"
)

// Lab is what the runner needs from the lab: the lesson vocabulary.
// LabOf(l) satisfies it for a *lab.Lab; tests may use something smaller
// that behaves the same.
type Lab interface {
	State() lab.State
	Partition(groups [][]string) error
	HealAll() error
	SetLink(from, to string, up, oneWay bool) error
	SetLatency(from, to string, rttMs float64, oneWay bool) error
	Crash(region string) error
	Restart(region string) error
	Lead(ctx context.Context, region string) error
	Stock(ctx context.Context, store inventory.Store, sku, region string, quantity int) (inventory.Outcome, error)
	StockSplit(ctx context.Context, sku, region string, quantity int, allocations map[string]int) (inventory.Outcome, error)
	Buy(ctx context.Context, store inventory.Store, sku, region string, qty int) (inventory.Outcome, error)
	Read(ctx context.Context, store inventory.Store, sku, region string, c inventory.Consistency) (inventory.Outcome, error)
	SetQuorum(w, r int) error
	SetGroupCommit(on bool)
	Check(store inventory.Store, sku string) (verdict.Result, error)
	Reset(ctx context.Context) error
	WaitLeader(ctx context.Context) error
	WaitConverged(ctx context.Context) error
	Leader() string
}

// BaseWaitTimeout bounds "wait leader", "wait converged" and "lead" at
// latency scale 1; the runner multiplies it by max(latency scale, 1).
const BaseWaitTimeout = 30 * time.Second

// Status is how one command went.
type Status string

// Command statuses.
const (
	StatusDone   Status = "done"   // an action or a poll; nothing was asserted
	StatusPassed Status = "passed" // an expectation held
	StatusFailed Status = "failed" // an expectation did not hold; the run stops
	StatusError  Status = "error"  // the lab refused or timed out; the run stops
)

// CommandResult is what one command did, for a browser panel.
type CommandResult struct {
	Command  Command
	Status   Status
	Outcomes []inventory.Outcome // stock (one per store), buy, read, expect read
	Check    *verdict.Result     // expect check
	Leader   string              // expect leader: the leader found ("" for none)
	Load     *LoadFacts          // load commands: what the load saw (load.go)
	// Woke marks the outcome of a paused shop's reservation, settled
	// before a later command (its Command is the reserve line).
	Woke     bool
	Poll     *Poll  // ask
	Expected string // expectations: what the lesson expected
	Got      string // expectations and errors: what happened
	Elapsed  time.Duration
	// Done is when the command finished (a woken reservation: when the
	// step saw it settled): its moment, for a page to show again.
	Done time.Time
	// Text is the progress line as printed, without indentation.
	Text string
}

// StepResult is what one step did. Commands ends at the command that
// stopped the step, if any.
type StepResult struct {
	Step     int // index into Lesson.Steps
	Title    string
	Commands []CommandResult
}

// Failure is why a run stopped: an unmet expectation, or a command the lab
// could not carry out.
type Failure struct {
	File     string
	Line     int
	Step     int    // index into Lesson.Steps
	Command  string // canonical command
	Expected string // "" for a lab error
	Got      string
	Err      error // the lab's error, if that is why
}

// Error reads "file:line: expected X, got Y" or "file:line: CMD: error".
func (f *Failure) Error() string {
	if f.Expected != "" {
		return fmt.Sprintf("%s:%d: expected %s, got %s", f.File, f.Line, f.Expected, f.Got)
	}
	return fmt.Sprintf("%s:%d: %s: %s", f.File, f.Line, f.Command, f.Got)
}

// Unwrap returns the lab's error, if any.
func (f *Failure) Unwrap() error { return f.Err }

// Runner runs a parsed, valid lesson against a lab, step by step, writing
// progress lines as it goes. A Runner is not safe for concurrent use; run
// one step at a time.
type Runner struct {
	lesson *Lesson
	lab    Lab
	out    io.Writer

	// NoTiming leaves latencies, durations and lab messages out of the
	// progress lines, so that transcripts of two runs compare equal.
	NoTiming bool
	// WaitTimeout bounds "wait leader", "wait converged" and "lead". Zero
	// means BaseWaitTimeout × max(latency scale, 1).
	WaitTimeout time.Duration
	// Load runs the "load" commands; nil makes one of the runner's own
	// for a *lab.Lab, which Close closes (load.go).
	Load    *load.Controller
	ownLoad bool

	background []pending       // reservations of paused shops still running (time.go)
	woke       []CommandResult // their outcomes, settled before the next command's result
	// Progress, when set, hears of each command's result as soon as it is
	// known (a page shows the step's story as it happens).
	Progress func(CommandResult)
}

// NewRunner returns a runner for l on lb that writes progress to out (nil:
// nowhere). l must have parsed without errors.
func NewRunner(l *Lesson, lb Lab, out io.Writer) *Runner {
	if out == nil {
		out = io.Discard
	}
	return &Runner{lesson: l, lab: lb, out: out}
}

// Lesson returns the lesson being run.
func (r *Runner) Lesson() *Lesson { return r.lesson }

// RunAll runs every step in order and stops at the first failure, which it
// returns as a *Failure (or the context's error).
func (r *Runner) RunAll(ctx context.Context) ([]StepResult, error) {
	l := r.lesson
	fmt.Fprintf(r.out, "lesson %s: %s\nregions: %s\n", l.Name, l.Title, strings.Join(l.Regions, ", "))
	var results []StepResult
	for i := range l.Steps {
		res, err := r.RunStep(ctx, i)
		results = append(results, res)
		if err != nil {
			var f *Failure
			if errors.As(err, &f) {
				fmt.Fprintf(r.out, "\nFAIL %s: step %d of %d stopped at line %d\n", l.Name, i+1, len(l.Steps), f.Line)
			} else {
				fmt.Fprintf(r.out, "\nFAIL %s: step %d of %d: %v\n", l.Name, i+1, len(l.Steps), err)
			}
			fmt.Fprintf(r.out, "the lab then: %s\n", describeLab(r.lab.State()))
			return results, err
		}
	}
	if res, err := r.settle(ctx, Command{}); err != nil {
		fmt.Fprintf(r.out, " ✗ %s\n\nFAIL %s: a paused shop's reservation\n", res.Text, l.Name)
		return results, err
	}
	fmt.Fprintf(r.out, "\nPASS %s: %d steps\n", l.Name, len(l.Steps))
	return results, nil
}

// RunStep runs step i (from 0) and stops at its first failure, which it
// returns as a *Failure (or the context's error). The result holds every
// command run so far.
func (r *Runner) RunStep(ctx context.Context, i int) (StepResult, error) {
	if i < 0 || i >= len(r.lesson.Steps) {
		return StepResult{Step: i}, fmt.Errorf("lessons: step %d does not exist (lesson %q has steps 1 to %d)", i+1, r.lesson.Name, len(r.lesson.Steps))
	}
	st := r.lesson.Steps[i]
	res := StepResult{Step: i, Title: st.Title}
	fmt.Fprintf(r.out, "\n## Step %d/%d: %s\n", i+1, len(r.lesson.Steps), st.Title)
	for _, c := range st.Commands {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		start := time.Now()
		cr, err := r.run(ctx, c)
		cr.Elapsed = time.Since(start)
		cr.Done = start.Add(cr.Elapsed)
		for _, w := range r.woke {
			res.Commands = append(res.Commands, w)
			if r.Progress != nil {
				r.Progress(w)
			}
		}
		r.woke = nil
		res.Commands = append(res.Commands, cr)
		if r.Progress != nil {
			r.Progress(cr)
		}
		mark := "   "
		switch cr.Status {
		case StatusPassed:
			mark = " ✓ "
		case StatusFailed, StatusError:
			mark = " ✗ "
		}
		if cr.Poll != nil {
			mark = " ? "
		}
		fmt.Fprintf(r.out, "%s%s\n", mark, cr.Text)
		if err != nil {
			if f, ok := err.(*Failure); ok {
				f.Step = i
			}
			return res, err
		}
	}
	return res, nil
}

// waitTimeout is the bound for waits and leadership moves.
func (r *Runner) waitTimeout() time.Duration {
	if r.WaitTimeout > 0 {
		return r.WaitTimeout
	}
	return time.Duration(float64(BaseWaitTimeout) * r.scale())
}

// scale is max(latency scale, 1).
func (r *Runner) scale() float64 { return max(r.lab.State().LatencyScale, 1) }

// run carries out one command. The error is a *Failure or ctx's error.
func (r *Runner) run(ctx context.Context, c Command) (CommandResult, error) {
	cr := CommandResult{Command: c, Status: StatusDone}
	if res, err := r.settle(ctx, c); err != nil { // paused shops finish before the next expectation
		return res, err
	}
	start := time.Now()
	at := fmt.Sprintf("line %d: ", c.Line)
	what := c.Action.String()

	fail := func(expected, got string, err error) (CommandResult, error) {
		cr.Expected, cr.Got = expected, got
		if expected != "" {
			cr.Status = StatusFailed
			cr.Text = at + "expected " + expected + ", got " + got
		} else {
			cr.Status = StatusError
			cr.Text = at + what + ": " + got
		}
		if ctx.Err() != nil {
			return cr, ctx.Err()
		}
		return cr, &Failure{File: r.lesson.File, Line: c.Line, Command: what, Expected: expected, Got: got, Err: err}
	}
	labErr := func(err error) (CommandResult, error) { return fail("", err.Error(), err) }
	done := func(suffix string) (CommandResult, error) {
		cr.Text = at + what + suffix
		return cr, nil
	}

	switch a := c.Action.(type) {
	case Reset:
		if err := r.lab.Reset(ctx); err != nil {
			return labErr(err)
		}
		return done("")
	case Stock:
		stores := []inventory.Store{a.Store}
		if a.Store == "" {
			stores = []inventory.Store{inventory.Consensus, inventory.Replicated} // geo only when named (LESSONS.md: "both stores")
		}
		region := r.lab.Leader()
		if !slices.Contains(r.lesson.Regions, region) {
			region = r.lesson.Regions[0]
		}
		var parts []string
		for _, s := range stores {
			o, err := r.lab.Stock(ctx, s, a.SKU, region, a.Quantity)
			if s == inventory.Geo {
				o, err = r.lab.StockSplit(ctx, a.SKU, region, a.Quantity, a.Split)
			}
			if err != nil {
				return labErr(err)
			}
			cr.Outcomes = append(cr.Outcomes, o)
			parts = append(parts, string(s)+" "+r.outcome(o))
			if o.Outcome != inventory.OK {
				cr.Text = at + what + " → " + strings.Join(parts, ", ")
				return fail("", fmt.Sprintf("stocking %s from %s answered %s; a lesson can only go on from a stocked shelf", s, region, r.outcome(o)), nil)
			}
		}
		return done(" → " + strings.Join(parts, ", "))
	case Partition:
		if err := r.lab.Partition(a.Groups); err != nil {
			return labErr(err)
		}
		return done("")
	case Cut:
		if err := r.lab.SetLink(a.From, a.To, false, a.OneWay); err != nil {
			return labErr(err)
		}
		return done("")
	case Heal:
		var err error
		if a.From == "" {
			err = r.lab.HealAll()
		} else {
			err = r.lab.SetLink(a.From, a.To, true, a.OneWay)
		}
		if err != nil {
			return labErr(err)
		}
		return done("")
	case Latency:
		if err := r.lab.SetLatency(a.From, a.To, a.RTTMs, a.OneWay); err != nil {
			return labErr(err)
		}
		return done("")
	case Crash:
		if err := r.lab.Crash(a.Region); err != nil {
			return labErr(err)
		}
		return done("")
	case Restart:
		if err := r.lab.Restart(a.Region); err != nil {
			return labErr(err)
		}
		return done("")
	case Lead:
		lctx, cancel := context.WithTimeout(ctx, r.waitTimeout())
		defer cancel()
		if err := r.lab.Lead(lctx, a.Region); err != nil {
			return labErr(fmt.Errorf("could not move leadership to %s within %v: %w", a.Region, r.waitTimeout(), err))
		}
		return done("")
	case Quorum:
		if err := r.lab.SetQuorum(a.W, a.R); err != nil {
			return labErr(err)
		}
		return done("")
	case GroupCommit:
		r.lab.SetGroupCommit(a.On)
		return done("")
	case Buy:
		o, err := r.lab.Buy(ctx, a.Store, a.SKU, a.Region, a.Qty)
		if err != nil {
			return labErr(err)
		}
		cr.Outcomes = []inventory.Outcome{o}
		if a.Expect == "" {
			return done(" → " + r.outcome(o))
		}
		if o.Outcome != a.Expect {
			b := a
			b.Expect = ""
			return fail(b.String()+" → "+string(a.Expect), r.outcome(o), nil)
		}
		cr.Status = StatusPassed
		return done(" → " + r.outcome(o))
	case Read:
		o, err := r.lab.Read(ctx, a.Store, a.SKU, a.Region, consistencyOrDefault(a.Consistency))
		if err != nil {
			return labErr(err)
		}
		cr.Outcomes = []inventory.Outcome{o}
		if a.Expect == "" {
			return done(" → " + r.readValue(o))
		}
		if o.Outcome != a.Expect {
			b := a
			b.Expect = ""
			return fail(b.String()+" → "+string(a.Expect), r.readValue(o), nil)
		}
		cr.Status = StatusPassed
		return done(" → " + r.readValue(o))
	case Wait:
		switch a.For {
		case WaitDuration:
			d := time.Duration(float64(a.Duration) * r.scale())
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return cr, ctx.Err()
			case <-t.C:
			}
			if d != a.Duration && !r.NoTiming {
				return done(fmt.Sprintf(" (waited %v at latency scale %g)", d, r.scale()))
			}
			return done("")
		default:
			wait, what := r.lab.WaitLeader, "a leader"
			if a.For == WaitConverged {
				wait, what = r.lab.WaitConverged, "all replicas to agree"
			}
			timeout := r.waitTimeout()
			wctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			err := wait(wctx)
			if err == nil && a.For == WaitConverged {
				err = r.consensusCaughtUp(wctx)
			}
			if err != nil {
				return labErr(fmt.Errorf("waited %v for %s, in vain: %w", timeout, what, err))
			}
			return done(r.took(time.Since(start)))
		}
	case ExpectLeader:
		leader := r.lab.Leader()
		cr.Leader = leader
		if !slices.Contains(a.Regions, leader) {
			got := leader
			if got == "" {
				got = "no leader"
			}
			return fail(strings.TrimPrefix(what, "expect "), got, nil)
		}
		cr.Status = StatusPassed
		return done(" (" + leader + ")")
	case ExpectRead:
		o, err := r.lab.Read(ctx, a.Store, a.SKU, a.Region, consistencyOrDefault(a.Consistency))
		if err != nil {
			return labErr(err)
		}
		cr.Outcomes = []inventory.Outcome{o}
		want := strings.TrimPrefix(what, "expect ")
		if o.Outcome != inventory.OK || o.Quantity != a.Quantity {
			return fail(want, r.readValue(o), nil)
		}
		cr.Status = StatusPassed
		cr.Text = at + want + r.took(time.Duration(o.LatencyMs*float64(time.Millisecond)))
		return cr, nil
	case ExpectLinearizable:
		res, err := r.lab.Check(a.Store, a.SKU)
		if err != nil {
			return labErr(err)
		}
		cr.Check = &res
		got := "linearizable"
		if !res.Linearizable {
			got = "not linearizable"
			if res.TimedOut {
				got += " (the checker timed out)"
			}
		}
		want := strings.TrimPrefix(what, "expect ")
		if res.Linearizable != a.Want {
			return fail(want, got, nil)
		}
		cr.Status = StatusPassed
		cr.Text = at + want
		return cr, nil
	case ExpectOversold:
		res, err := r.lab.Check(a.Store, a.SKU)
		if err != nil {
			return labErr(err)
		}
		cr.Check = &res
		got := fmt.Sprintf("oversold = %d (sold %d of %d)", res.Oversold, res.SoldUnits, res.InitialUnits)
		want := strings.TrimPrefix(what, "expect ")
		if res.Oversold != a.N && !(a.AtLeast && res.Oversold > a.N) {
			return fail(want, got, nil)
		}
		cr.Status = StatusPassed
		cr.Text = at + want + fmt.Sprintf(" (got %d; sold %d of %d)", res.Oversold, res.SoldUnits, res.InitialUnits)
		return cr, nil
	case LoadStart, LoadStop, ExpectLoad:
		cr.Load = &LoadFacts{}
		suffix, expected, got, passed, err := r.runLoad(ctx, a, cr.Load) // load.go
		if err != nil {
			return labErr(err)
		}
		if expected != "" {
			if !passed {
				return fail(expected, got, nil)
			}
			cr.Status = StatusPassed
			cr.Text = at + expected + suffix
			return cr, nil
		}
		return done(suffix)
	case Clock:
		return r.clock(a, labErr, done)
	case PauseShop:
		return r.pause(a, labErr, done)
	case Reserve:
		return r.reserve(ctx, c, a, &cr, labErr, done)
	case Ask:
		p := a.Poll
		cr.Poll = &p
		cr.Text = fmt.Sprintf("%s%q (%s) → answer: %s", at, p.Question, strings.Join(p.Options, " | "), p.Answer)
		return cr, nil
	}
	return labErr(fmt.Errorf("the runner does not know %T", c.Action))
}

// consensusCaughtUp waits until every running region's consensus member
// knows a leader and has applied everything committed. Lab.WaitConverged
// covers the replicated store; "wait converged" promises that all replicas
// agree (LESSONS.md), so a serializable read afterwards is current.
func (r *Runner) consensusCaughtUp(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if caughtUp(r.lab.State()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consensus members did not catch up: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// caughtUp reports whether every running region's consensus member knows a
// leader and has applied the highest commit index of any of them.
func caughtUp(st lab.State) bool {
	var commit uint64
	for _, reg := range st.Regions {
		if reg.Up {
			commit = max(commit, reg.Consensus.CommitIndex)
		}
	}
	for _, reg := range st.Regions {
		if reg.Up && (reg.Consensus.Leader == "" || reg.Consensus.AppliedIndex < commit) {
			return false
		}
	}
	return true
}
