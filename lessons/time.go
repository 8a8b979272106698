package lessons

import (
	"context"
	"fmt"
	"time"

	"caplab/lab/inventory"
)

// clocker is what "clock" needs from the lab; LabOf's adapter has it.
type clocker interface {
	SetClock(region string, offsetMs, driftPpm float64) error
	ResetClocks() error
}

// clock runs a Clock command.
func (r *Runner) clock(a Clock, labErr func(error) (CommandResult, error), done func(string) (CommandResult, error)) (CommandResult, error) {
	c, ok := r.lab.(clocker)
	if !ok {
		return labErr(fmt.Errorf("this lab has no per-region clocks"))
	}
	var err error
	if a.Reset {
		err = c.ResetClocks()
	} else {
		err = c.SetClock(a.Region, float64(a.Offset)/float64(time.Millisecond), a.DriftPpm)
	}
	if err != nil {
		return labErr(err)
	}
	return done("")
}

// reserver is what "pause" and "reserve" need from the lab; LabOf's
// adapter has it.
type reserver interface {
	Pause(region string, seconds float64) error
	Paused(region string) time.Duration
	Reserve(ctx context.Context, sku, region string, fenced bool) (inventory.Outcome, error)
	ReserveAsync(ctx context.Context, sku, region string, fenced bool) (<-chan inventory.Outcome, error)
}

// pending is a reservation of a paused shop that is still running.
type pending struct {
	cmd    Command
	expect inventory.Kind
	done   <-chan inventory.Outcome
}

func (r *Runner) pause(a PauseShop, labErr func(error) (CommandResult, error), done func(string) (CommandResult, error)) (CommandResult, error) {
	p, ok := r.lab.(reserver)
	if !ok {
		return labErr(fmt.Errorf("this lab cannot pause shops"))
	}
	if err := p.Pause(a.Region, a.Duration.Seconds()); err != nil {
		return labErr(err)
	}
	return done("")
}

// reserve runs a reservation. From a paused shop it returns once the shop
// froze (holding the lock, it believes) and leaves the rest to settle.
func (r *Runner) reserve(ctx context.Context, c Command, a Reserve, cr *CommandResult, labErr func(error) (CommandResult, error), done func(string) (CommandResult, error)) (CommandResult, error) {
	p, ok := r.lab.(reserver)
	if !ok {
		return labErr(fmt.Errorf("this lab has no lock-based reservation"))
	}
	if p.Paused(a.Region) > 0 {
		ch, err := p.ReserveAsync(ctx, a.SKU, a.Region, a.Fenced)
		if err != nil {
			return labErr(err)
		}
		r.background = append(r.background, pending{cmd: c, expect: a.Expect, done: ch})
		return done(" → the shop froze mid-flight, holding the lock; it goes on when its pause ends")
	}
	o, err := p.Reserve(ctx, a.SKU, a.Region, a.Fenced)
	if err != nil {
		return labErr(err)
	}
	cr.Outcomes = []inventory.Outcome{o}
	if a.Expect != "" && o.Outcome != a.Expect {
		b := a
		b.Expect = ""
		cr.Expected, cr.Got, cr.Status = b.String()+" → "+string(a.Expect), r.outcome(o), StatusFailed
		cr.Text = fmt.Sprintf("line %d: expected %s, got %s", c.Line, cr.Expected, cr.Got)
		return *cr, &Failure{File: r.lesson.File, Line: c.Line, Command: a.String(), Expected: cr.Expected, Got: cr.Got}
	}
	if a.Expect != "" {
		cr.Status = StatusPassed
	}
	return done(" → " + r.outcome(o) + r.message(o))
}

// message is the lab's sentence for a reservation (it says who held which
// token), unless timing is left out.
func (r *Runner) message(o inventory.Outcome) string {
	if r.NoTiming || o.Message == "" || o.Outcome != inventory.OK {
		return ""
	}
	return " — " + o.Message
}

// settle waits for the reservations of paused shops before an
// expectation (next is the command about to run; the zero Command at the
// end of a lesson) and checks their expected outcomes.
func (r *Runner) settle(ctx context.Context, next Command) (CommandResult, error) {
	switch next.Action.(type) {
	case ExpectRead, ExpectLinearizable, ExpectOversold, ExpectLeader, nil:
	default:
		return CommandResult{}, nil
	}
	for len(r.background) > 0 {
		p := r.background[0]
		r.background = r.background[1:]
		t := time.NewTimer(inventory.MaxPause + r.waitTimeout())
		var o inventory.Outcome
		select {
		case o = <-p.done:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return CommandResult{Command: p.cmd, Status: StatusError}, ctx.Err()
		case <-t.C:
			cr := CommandResult{Command: p.cmd, Status: StatusError, Got: "the paused shop never finished"}
			cr.Text = fmt.Sprintf("line %d: %s: %s", p.cmd.Line, p.cmd.Action, cr.Got)
			return cr, &Failure{File: r.lesson.File, Line: p.cmd.Line, Command: p.cmd.Action.String(), Got: cr.Got}
		}
		a := p.cmd.Action.(Reserve)
		text := fmt.Sprintf("line %d: %s → %s%s", p.cmd.Line, a, r.outcome(o), r.message(o))
		if p.expect != "" && o.Outcome != p.expect {
			b := a
			b.Expect = ""
			cr := CommandResult{Command: p.cmd, Status: StatusFailed, Outcomes: []inventory.Outcome{o}, Woke: true, Expected: b.String() + " → " + string(p.expect), Got: r.outcome(o)}
			cr.Text = fmt.Sprintf("line %d: expected %s, got %s", p.cmd.Line, cr.Expected, cr.Got)
			return cr, &Failure{File: r.lesson.File, Line: p.cmd.Line, Command: a.String(), Expected: cr.Expected, Got: cr.Got}
		}
		mark := "   "
		woke := CommandResult{Command: p.cmd, Status: StatusDone, Outcomes: []inventory.Outcome{o}, Woke: true, Text: text + " (the paused shop woke)", Done: time.Now()}
		if p.expect != "" {
			mark = " ✓ "
			woke.Status = StatusPassed
		}
		r.woke = append(r.woke, woke)
		fmt.Fprintf(r.out, "%s%s (the paused shop woke)\n", mark, text)
	}
	return CommandResult{}, nil
}
