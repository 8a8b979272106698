package lessons

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// ErrNothingRecorded is returned by Record when the recording holds no
// action; it wraps inventory.ErrConflict (the API answers 409).
var ErrNothingRecorded error = nothingRecorded{}

type nothingRecorded struct{}

func (nothingRecorded) Error() string {
	return "Nothing was recorded since the last reset or \"Start recording\": act in the lab (stock, cut, buy …), then save the lesson."
}

func (nothingRecorded) Unwrap() error { return inventory.ErrConflict }

// StepPause is the pause between two actions that starts a new step.
const StepPause = 5 * time.Second

// Record renders a recording as a lesson file (LESSONS.md format): front
// matter with the lab's regions, one step per fault or per pause of more
// than StepPause, each with a lab block, every buy and read asserting the
// outcome it got, prose placeholders for a person to fill in, and no
// questions (ask lines are a person's to write).
//
// Replays are meant to meet every expectation on a fresh lab with the same
// flags, so Record inserts "wait leader" and "wait converged" where an
// outcome depended on an election or on replication having caught up, and
// leaves out (as comments) the few outcomes that only timing explains.
// docs/lessons.md ("Recorded lessons") lists the rules.
func Record(rec lab.Recording) ([]byte, error) {
	if len(rec.Actions) == 0 {
		return nil, ErrNothingRecorded
	}
	// In the order the actions began: a shop frozen in a pause returns
	// long after it started, but a replay must start it first.
	rec.Actions = slices.Clone(rec.Actions)
	slices.SortStableFunc(rec.Actions, func(a, b lab.RecordedAction) int { return a.At.Compare(b.At) })
	r := newRenderer(rec)
	for i := 0; i < len(rec.Actions); i++ {
		i += r.action(rec.Actions, i)
	}
	r.checks()
	return r.markdown(), nil
}

// recStep is one step being written.
type recStep struct {
	title string // "" until known: then named after its operations
	lines []string
	ops   []*inventory.Operation
	notes []string // what the recording saw, for the prose placeholder
}

type breakerModel struct {
	failures int
	open     bool
}

type renderer struct {
	rec   lab.Recording
	steps []*recStep
	cur   *recStep
	last  time.Time // when the previous action returned

	down map[string]bool
	cut  map[[2]string]bool

	leaderUnsure bool                                // the topology changed since the lesson last waited for a leader
	writers      map[inventory.Store]map[string]bool // per store, regions that wrote since replicas last agreed
	split        bool                                // replicas were apart since they last agreed
	breakers     map[string]*breakerModel
	leftOut      int // outcomes left out of the replay (as comments)
	counts       map[string]int
}

func newRenderer(rec lab.Recording) *renderer {
	r := &renderer{rec: rec, down: map[string]bool{}, cut: map[[2]string]bool{},
		writers: map[inventory.Store]map[string]bool{}, breakers: map[string]*breakerModel{}, counts: map[string]int{}}
	for _, s := range inventory.Stores { // every store the lab records, the geo store's too
		r.writers[s] = map[string]bool{}
	}
	first := &recStep{}
	first.lines = append(first.lines, "reset")
	if q := rec.Quorum; q.W != 0 && (q.W != 1 || q.R != 1) {
		first.lines = append(first.lines, fmt.Sprintf("quorum %d %d", q.W, q.R))
	}
	if !rec.FromReset {
		first.notes = append(first.notes, "recording started mid-session: what was set up before it is not in this lesson")
	}
	r.steps = []*recStep{first}
	r.cur = first
	r.last = rec.Started
	return r
}

func (r *renderer) city(region string) string {
	if c := r.rec.Cities[region]; c != "" {
		return c
	}
	return region
}

func (r *renderer) cities(regions []string) string {
	names := make([]string, len(regions))
	for i, x := range regions {
		names[i] = r.city(x)
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// newStep starts a step, unless the current one is still empty.
func (r *renderer) newStep(title string) {
	if len(r.cur.lines) == 0 || (r.cur == r.steps[0] && r.cur.title == "" && len(r.cur.ops) == 0) {
		r.cur.title = title // the reset joins the first thing done
		return
	}
	r.cur = &recStep{title: title}
	r.steps = append(r.steps, r.cur)
}

// configStep starts a step for a configuration change (lead, quorum),
// unless the current step has no operations yet: set-up belongs to the
// step it prepares.
func (r *renderer) configStep(title string) {
	if len(r.cur.ops) > 0 {
		r.newStep(title)
	}
}

func (r *renderer) emit(format string, args ...any) {
	r.cur.lines = append(r.cur.lines, fmt.Sprintf(format, args...))
}
