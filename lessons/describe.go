package lessons

// How the runner puts outcomes and the lab into words.

import (
	"fmt"
	"strings"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

func consistencyOrDefault(c inventory.Consistency) inventory.Consistency {
	if c == "" {
		return inventory.Linearizable
	}
	return c
}

// outcome describes a stock or buy outcome: "ok (0 left, 3 ms)".
func (r *Runner) outcome(o inventory.Outcome) string {
	var details []string
	if o.Outcome == inventory.OK || o.Outcome == inventory.SoldOut {
		details = append(details, fmt.Sprintf("%d left", o.Quantity))
	}
	return r.describe(o, details)
}

// readValue describes a read: "1 (2 ms)" or "unavailable (2001 ms)".
func (r *Runner) readValue(o inventory.Outcome) string {
	if o.Outcome == inventory.OK {
		return fmt.Sprint(o.Quantity) + r.took(time.Duration(o.LatencyMs*float64(time.Millisecond)))
	}
	return r.describe(o, nil)
}

func (r *Runner) describe(o inventory.Outcome, details []string) string {
	if !r.NoTiming {
		details = append(details, formatMs(o.LatencyMs))
		if o.Outcome != inventory.OK && o.Message != "" {
			details = append(details, o.Message)
		}
	}
	if len(details) == 0 {
		return string(o.Outcome)
	}
	return string(o.Outcome) + " (" + strings.Join(details, ", ") + ")"
}

// took is " (3 ms)", or "" without timing.
func (r *Runner) took(d time.Duration) string {
	if r.NoTiming {
		return ""
	}
	return " (" + formatMs(float64(d)/float64(time.Millisecond)) + ")"
}

func formatMs(ms float64) string {
	if ms < 10 {
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

// describeLab says in one line what the lab looked like when a lesson
// stopped — each region's consensus role and term, the cut links — so an
// unmet expectation can be told from a lab that was still settling.
func describeLab(st lab.State) string {
	var regions []string
	for _, r := range st.Regions {
		switch {
		case !r.Up:
			regions = append(regions, r.Name+" crashed")
		default:
			regions = append(regions, fmt.Sprintf("%s %s (term %d, applied %d)", r.Name, r.Consensus.Role, r.Consensus.Term, r.Consensus.AppliedIndex))
		}
	}
	var cut []string
	for _, k := range st.Links {
		if k.State != "up" {
			cut = append(cut, k.From+"→"+k.To)
		}
	}
	links := "every link up"
	if len(cut) > 0 {
		links = "cut " + strings.Join(cut, ", ")
	}
	return strings.Join(append(regions, links), "; ")
}
