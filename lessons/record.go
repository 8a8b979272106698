package lessons

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"caplab/lab"
)

// ErrNothingRecorded is returned by Record when the recording holds no
// action; it wraps lab.ErrConflict (the API answers 409).
var ErrNothingRecorded error = nothingRecorded{}

type nothingRecorded struct{}

func (nothingRecorded) Error() string {
	return "Nothing was recorded since the last reset or \"Start recording\": act in the lab (stock, cut, buy …), then save the lesson."
}

func (nothingRecorded) Unwrap() error { return lab.ErrConflict }

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
	ops   []*lab.Operation
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

	leaderUnsure bool                          // the topology changed since the lesson last waited for a leader
	writers      map[lab.Store]map[string]bool // per store, regions that wrote since replicas last agreed
	split        bool                          // replicas were apart since they last agreed
	breakers     map[string]*breakerModel
	leftOut      int // outcomes left out of the replay (as comments)
	counts       map[string]int
}

func newRenderer(rec lab.Recording) *renderer {
	r := &renderer{rec: rec, down: map[string]bool{}, cut: map[[2]string]bool{},
		writers: map[lab.Store]map[string]bool{}, breakers: map[string]*breakerModel{}, counts: map[string]int{}}
	for _, s := range lab.Stores { // every store the lab records, the geo store's too
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

// ---- the network model: what the replay's topology is at each point ----

func (r *renderer) whole() bool { return len(r.down) == 0 && len(r.cut) == 0 }

func (r *renderer) linked(a, b string) bool {
	return a == b || (!r.cut[[2]string{a, b}] && !r.cut[[2]string{b, a}])
}

// canLead reports whether l could lead: it is up and reaches a majority.
func (r *renderer) canLead(l string) bool {
	if r.down[l] {
		return false
	}
	n := 0
	for _, v := range r.rec.Regions {
		if !r.down[v] && r.linked(l, v) {
			n++
		}
	}
	return n > len(r.rec.Regions)/2
}

func (r *renderer) majority() bool {
	return slices.ContainsFunc(r.rec.Regions, r.canLead)
}

// commits says whether a consensus write from x succeeds once a leader is
// elected: "yes" whoever leads, "no" whoever leads, or "maybe" (a partial
// partition where it depends on who leads).
func (r *renderer) commits(x string) string {
	if r.down[x] {
		return "no"
	}
	yes, no := 0, 0
	for _, l := range r.rec.Regions {
		if !r.canLead(l) {
			continue
		}
		if r.linked(x, l) {
			yes++
		} else {
			no++
		}
	}
	switch {
	case yes > 0 && no == 0:
		return "yes"
	case yes == 0:
		return "no"
	}
	return "maybe"
}

func (r *renderer) topologyChanged() {
	r.leaderUnsure = true
	if !r.whole() {
		r.split = true
	}
}

// beforeFault waits for replicas to agree before the network breaks, as a
// person's pace lets them.
func (r *renderer) beforeFault() {
	if r.whole() && (r.wrote() || r.split) {
		r.converged()
	}
}

func (r *renderer) waitLeader() {
	if r.leaderUnsure && r.majority() {
		r.emit("wait leader")
		r.leaderUnsure = false
	}
}

func (r *renderer) wrote() bool {
	return len(r.writers[lab.Consensus]) > 0 || len(r.writers[lab.Replicated]) > 0
}

func (r *renderer) converged() {
	r.emit("wait converged")
	r.split = false
	clear(r.writers[lab.Consensus])
	clear(r.writers[lab.Replicated])
}

// caughtUp waits, before an operation on store from region x that reads
// local data, until writes from other regions it can reach have reached it.
func (r *renderer) caughtUp(store lab.Store, x string) {
	other := false
	for w := range r.writers[store] {
		if w != x && r.linked(w, x) && !r.down[w] {
			other = true
		}
	}
	switch {
	case r.whole() && (other || r.split):
		r.converged()
	case other:
		r.emit("wait 1s # replication inside this side of the partition")
		clear(r.writers[store])
	}
}

// ---- actions ----

// action renders actions[i]; it returns how many further actions it used.
func (r *renderer) action(actions []lab.RecordedAction, i int) int {
	a := actions[i]
	gap := a.At.Sub(r.last)
	r.last = a.Done
	if a.Kind == lab.ActReserve && a.Op != nil {
		r.reserve(a)
		return 0
	}
	if a.Op != nil {
		if gap > StepPause && len(r.cur.lines) > 0 {
			r.newStep("")
		}
		return r.operation(actions, i)
	}
	reg := func(k int) string {
		if k < len(a.Regions) {
			return a.Regions[k]
		}
		return ""
	}
	switch a.Kind {
	case lab.ActPartition, lab.ActIsolate:
		groups := a.Groups
		if a.Kind == lab.ActIsolate {
			rest := slices.DeleteFunc(slices.Clone(r.rec.Regions), func(x string) bool { return x == reg(0) })
			groups = [][]string{{reg(0)}, rest}
		}
		r.newStep(r.partitionTitle(groups))
		r.beforeFault()
		parts := make([]string, len(groups))
		for k, g := range groups {
			parts[k] = strings.Join(g, ",")
		}
		r.emit("partition %s", strings.Join(parts, " | "))
		clear(r.cut)
		for _, g := range groups {
			for _, h := range groups {
				if slices.Equal(g, h) {
					continue
				}
				for _, x := range g {
					for _, y := range h {
						r.cut[[2]string{x, y}] = true
					}
				}
			}
		}
		r.counts["partition"]++
	case lab.ActBridge:
		r.newStep(fmt.Sprintf("Only %s links the others", r.city(reg(0))))
		r.beforeFault()
		r.emit("heal")
		clear(r.cut)
		for _, c := range a.Cuts {
			r.cut[c] = true
		}
		for _, c := range a.Cuts {
			back := r.cut[[2]string{c[1], c[0]}]
			switch {
			case back && c[0] < c[1]:
				r.emit("cut %s %s", c[0], c[1])
			case !back:
				r.emit("cut %s -> %s", c[0], c[1])
			}
		}
		r.counts["partition"]++
	case lab.ActCut:
		from, to := reg(0), reg(1)
		if a.OneWay {
			r.newStep(fmt.Sprintf("%s can no longer reach %s", r.city(from), r.city(to)))
		} else {
			r.newStep(fmt.Sprintf("The link between %s and %s is cut", r.city(from), r.city(to)))
		}
		r.beforeFault()
		r.emit("cut %s%s%s", from, arrowWord(a.OneWay), to)
		r.cut[[2]string{from, to}] = true
		if !a.OneWay {
			r.cut[[2]string{to, from}] = true
		}
		r.counts["cut"]++
	case lab.ActHealLink:
		from, to := reg(0), reg(1)
		if a.OneWay {
			r.newStep(fmt.Sprintf("%s reaches %s again", r.city(from), r.city(to)))
		} else {
			r.newStep(fmt.Sprintf("The link between %s and %s is back", r.city(from), r.city(to)))
		}
		r.emit("heal %s%s%s", from, arrowWord(a.OneWay), to)
		delete(r.cut, [2]string{from, to})
		if !a.OneWay {
			delete(r.cut, [2]string{to, from})
		}
		r.counts["heal"]++
	case lab.ActHeal:
		r.newStep("The network heals")
		r.emit("heal")
		clear(r.cut)
		r.counts["heal"]++
	case lab.ActLatency:
		from, to := reg(0), reg(1)
		r.newStep(fmt.Sprintf("%s–%s takes %s ms", r.city(from), r.city(to), trimFloat(a.RTTMs)))
		r.emit("latency %s%s%s %s", from, arrowWord(a.OneWay), to, trimFloat(a.RTTMs))
		r.counts["latency change"]++
	case lab.ActCrash:
		r.newStep(fmt.Sprintf("%s crashes", r.city(reg(0))))
		r.beforeFault()
		r.emit("crash %s", reg(0))
		r.down[reg(0)] = true
		r.counts["crash"]++
	case lab.ActRestart:
		r.newStep(fmt.Sprintf("%s comes back", r.city(reg(0))))
		r.emit("restart %s", reg(0))
		delete(r.down, reg(0))
		r.split = true // the restarted region has to catch up
		r.counts["restart"]++
	case lab.ActLead:
		r.configStep(fmt.Sprintf("%s takes the lead", r.city(reg(0))))
		r.emit("lead %s", reg(0))
		r.leaderUnsure = false
		return 0
	case lab.ActQuorum:
		r.configStep(fmt.Sprintf("The replicated store asks W=%d, R=%d", a.W, a.R))
		r.emit("quorum %d %d", a.W, a.R)
		return 0
	case lab.ActPause:
		r.newStep(fmt.Sprintf("%s's shop freezes for %s", r.city(reg(0)), trimFloat(a.Seconds)+"s"))
		r.emit("pause shop %s %ss", reg(0), trimFloat(a.Seconds))
		return 0
	case lab.ActClock:
		c := Clock{Reset: len(a.Regions) == 0}
		if !c.Reset {
			c.Region, c.Offset, c.DriftPpm = reg(0), time.Duration(a.OffsetMs*float64(time.Millisecond)), a.DriftPpm
			r.configStep(fmt.Sprintf("%s's clock is off by %s", r.city(reg(0)), strings.TrimPrefix(c.String(), "clock "+reg(0)+" ")))
		} else {
			r.configStep("Every clock back to true time")
		}
		r.emit("%s", c.String())
		return 0
	default:
		r.emit("# %s (not a lesson command; left out)", a.Kind)
		return 0
	}
	r.topologyChanged()
	return 0
}

func (r *renderer) partitionTitle(groups [][]string) string {
	if len(groups) == 2 {
		for k, g := range groups {
			if len(g) == 1 && len(groups[1-k]) > 1 {
				return r.city(g[0]) + " is cut off"
			}
		}
	}
	parts := make([]string, len(groups))
	for k, g := range groups {
		parts[k] = r.cities(g)
	}
	return "The network splits: " + strings.Join(parts, " | ")
}

func arrowWord(oneWay bool) string {
	if oneWay {
		return " -> "
	}
	return " "
}

func trimFloat(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%g", f)
}

// operation renders a stock, buy or read; it returns how many further
// actions it used (a stock of both stores is one command).
func (r *renderer) operation(actions []lab.RecordedAction, i int) int {
	op := actions[i].Op
	r.cur.ops = append(r.cur.ops, op)
	switch op.Op {
	case lab.OpStock:
		return r.stock(actions, i)
	case lab.OpBuy:
		r.counts["buy"]++
		r.buy(actions[i])
	case lab.OpRead:
		r.counts["read"]++
		r.read(actions[i])
	}
	return 0
}

func (r *renderer) stock(actions []lab.RecordedAction, i int) int {
	op := actions[i].Op
	r.counts["stock"]++
	if op.Outcome != lab.OK {
		r.leave("stock %s %d on %s from %s answered %s; a replay can only go on from a stocked shelf", op.SKU, op.Qty, op.Store, op.Region, op.Outcome)
		return 0
	}
	if r.leaderUnsure {
		r.waitLeader()
	}
	r.noteWriter(op.Store, op.Region)
	// "stock SKU N" stocks the consensus and the replicated store (the
	// geo store only when named): two such stocks in a row are one line.
	if i+1 < len(actions) {
		if n := actions[i+1].Op; n != nil && n.Op == lab.OpStock && n.Outcome == lab.OK && n.SKU == op.SKU && n.Qty == op.Qty && bothStores(op.Store, n.Store) {
			r.cur.ops = append(r.cur.ops, n)
			r.noteWriter(n.Store, n.Region)
			r.last = actions[i+1].Done
			r.emit("stock %s %d", op.SKU, op.Qty)
			return 1
		}
	}
	// A geo stock given per region keeps its split; an even split is
	// what "on geo" does by itself.
	r.emit("%s", Stock{SKU: op.SKU, Quantity: op.Qty, Store: op.Store, Split: op.Allocations}.String())
	return 0
}

// bothStores reports whether a and b are the two stores a plain "stock"
// line writes.
func bothStores(a, b lab.Store) bool {
	return (a == lab.Consensus && b == lab.Replicated) || (a == lab.Replicated && b == lab.Consensus)
}

// noteWriter remembers that region wrote to store since replicas last
// agreed; a store the renderer has no map for (one a newer lab adds) gets
// one rather than a panic.
func (r *renderer) noteWriter(store lab.Store, region string) {
	if r.writers[store] == nil {
		r.writers[store] = map[string]bool{}
	}
	r.writers[store][region] = true
}

// leave writes an outcome the replay cannot promise as a comment.
func (r *renderer) leave(format string, args ...any) {
	r.leftOut++
	r.emit("# left out: "+format, args...)
}

// breaker follows the (region, store) circuit breaker of the replay; it
// returns false when the recorded outcome cannot be reproduced.
func (r *renderer) breaker(a lab.RecordedAction) bool {
	op := a.Op
	key := op.Region + "/" + string(op.Store)
	b := r.breakers[key]
	if b == nil {
		b = &breakerModel{}
		r.breakers[key] = b
	}
	trips := max(r.rec.BreakerTrips, 1)
	if op.Outcome == lab.FailFast {
		return b.open
	}
	if b.open {
		// The recording got through: the cooldown had passed. The replay
		// waits it out too (the runner multiplies waits by the scale).
		d := time.Duration(float64(r.rec.BreakerCooldown)/math.Max(r.rec.LatencyScale, 1)) + 500*time.Millisecond
		r.emit("wait %s # the circuit breaker's cooldown", d.Round(100*time.Millisecond))
		b.open = false
		if op.Outcome == lab.Unavailable {
			b.failures = trips - 1
		}
	}
	if op.Outcome == lab.Unavailable {
		b.failures++
		b.open = b.failures >= trips
	} else {
		b.failures = 0
	}
	return true
}

func (r *renderer) storeOp(a lab.RecordedAction, command string) (emit bool) {
	op := a.Op
	local := op.Store == lab.Replicated || op.Consistency == lab.Serializable
	if local {
		r.caughtUp(op.Store, op.Region)
	}
	if op.Store == lab.Consensus && op.Consistency != lab.Serializable && op.Outcome != lab.FailFast {
		switch c := r.commits(op.Region); {
		case op.Outcome == lab.Unavailable && c == "yes" && r.leaderUnsure:
			r.leave("%s answered unavailable while the majority was still electing a leader; a replay waits for the leader, so it would not", command)
			r.waitLeader()
			return false
		case op.Outcome != lab.Unavailable:
			r.waitLeader()
		}
	}
	if !r.breaker(a) {
		r.leave("%s answered fail_fast, but the replay's circuit breaker for %s in %s would not be open", command, op.Store, op.Region)
		return false
	}
	return true
}

func (r *renderer) buy(a lab.RecordedAction) {
	op := a.Op
	cmd := fmt.Sprintf("buy %s %s from %s", op.Store, op.SKU, op.Region)
	if op.Qty != 1 {
		cmd += fmt.Sprintf(" qty %d", op.Qty)
	}
	if !r.storeOp(a, cmd) {
		return
	}
	if op.Outcome == lab.OK || op.Outcome == lab.Unavailable {
		r.noteWriter(op.Store, op.Region)
	}
	r.emit("%s expect %s", cmd, op.Outcome)
}

func (r *renderer) read(a lab.RecordedAction) {
	op := a.Op
	cmd := fmt.Sprintf("read %s %s from %s", op.Store, op.SKU, op.Region)
	if op.Store == lab.Consensus && op.Consistency == lab.Serializable {
		cmd += " serializable"
	}
	if !r.storeOp(a, cmd) {
		return
	}
	if op.Outcome == lab.OK {
		r.emit("expect %s = %d", cmd, op.Quantity)
		return
	}
	r.emit("%s expect %s", cmd, op.Outcome)
}

// checks adds the checker's verdicts as a last step, when the replay
// carries every recorded outcome (else its history would differ).
func (r *renderer) checks() {
	if r.leftOut > 0 || len(r.rec.Checks) == 0 {
		return
	}
	var lines []string
	for _, c := range r.rec.Checks {
		if c.TimedOut || c.SKU == "" {
			continue
		}
		verdict := "linearizable"
		if !c.Linearizable {
			verdict = "not linearizable"
		}
		lines = append(lines, fmt.Sprintf("expect check %s %s %s", c.Store, c.SKU, verdict),
			fmt.Sprintf("expect check %s %s oversold = %d", c.Store, c.SKU, c.Oversold))
	}
	if len(lines) == 0 {
		return
	}
	r.newStep("What the checker says")
	r.cur.lines = append(r.cur.lines, lines...)
}

// stepTitle names a step by its operations when no fault named it.
func (r *renderer) stepTitle(s *recStep, i int) string {
	if s.title != "" {
		return s.title
	}
	var stock bool
	var buyers, readers []string
	for _, op := range s.ops {
		switch op.Op {
		case lab.OpStock:
			stock = true
		case lab.OpBuy:
			if !slices.Contains(buyers, op.Region) {
				buyers = append(buyers, op.Region)
			}
		case lab.OpRead:
			if !slices.Contains(readers, op.Region) {
				readers = append(readers, op.Region)
			}
		}
	}
	switch {
	case stock:
		return "Stock the shelf"
	case len(buyers) > 0:
		return "Shoppers in " + r.cities(buyers) + " buy"
	case len(readers) > 0:
		return "Reading the stock in " + r.cities(readers)
	case i == 0:
		return "A fresh lab"
	}
	return fmt.Sprintf("Step %d", i+1)
}

func (r *renderer) summary() string {
	order := []string{"stock", "partition", "cut", "heal", "latency change", "crash", "restart", "buy", "reservation", "read"}
	var parts []string
	for _, k := range order {
		if n := r.counts[k]; n > 0 {
			if n == 1 {
				parts = append(parts, "1 "+k)
			} else {
				parts = append(parts, fmt.Sprintf("%d %ss", n, k))
			}
		}
	}
	if len(parts) == 0 {
		return "Recorded in the lab."
	}
	return "Recorded in the lab: " + strings.Join(parts, ", ") + "."
}

func (r *renderer) markdown() []byte {
	var b bytes.Buffer
	started := r.rec.Started.UTC().Format("2006-01-02 15:04 UTC")
	fmt.Fprintf(&b, "---\ntitle: Recorded session, %s\nsummary: %s\nregions: [%s]\n---\n\n", started, r.summary(), strings.Join(r.rec.Regions, ", "))
	scale := trimFloat(r.rec.LatencyScale)
	fmt.Fprintf(&b, "<!-- Recorded from a running caplab at latency scale %s. Replay it on a fresh lab with the same flags:\n", scale)
	fmt.Fprintf(&b, "     caplab lessons run THIS-FILE.md --latency-scale %s\n", scale)
	b.WriteString("     Fill in the prose, rename the steps, add ask lines for predictions. -->\n")
	if r.rec.Dropped > 0 {
		fmt.Fprintf(&b, "\n<!-- The recording was full: it kept the first %d actions; %d later ones are not in this lesson. -->\n", lab.MaxRecordedActions, r.rec.Dropped)
	}
	for i, s := range r.steps {
		if len(s.lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n## %s\n\n", r.stepTitle(s, i))
		b.WriteString("<!-- say what happened -->\n")
		for _, n := range s.notes {
			fmt.Fprintf(&b, "<!-- note: %s -->\n", n)
		}
		b.WriteString("\n```lab\n")
		for _, l := range s.lines {
			b.WriteString(l + "\n")
		}
		b.WriteString("```\n")
	}
	return b.Bytes()
}

// reserve renders a lock-based reservation with the outcome it got.
func (r *renderer) reserve(a lab.RecordedAction) {
	op := a.Op
	r.counts["reservation"]++
	r.cur.ops = append(r.cur.ops, op)
	r.waitLeader()
	cmd := Reserve{SKU: op.SKU, Region: op.Region, Fenced: a.Fenced, Expect: op.Outcome}
	r.noteWriter(lab.Consensus, op.Region)
	r.emit("%s", cmd.String())
}
