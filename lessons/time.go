package lessons

import (
	"fmt"
	"time"
)

// clocker is what "clock" needs from the lab; *lab.Lab has it.
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
