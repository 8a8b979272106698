package lessons

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"caplab/lab/inventory"
)

// Lesson is one parsed lesson file.
type Lesson struct {
	// Name identifies the lesson on the command line and in the browser:
	// for a built-in, its file name without the numeric prefix and ".md"
	// ("last-iphone"); for a user's file, its file name without ".md".
	Name string
	// File is the file name the lesson was parsed from, as given to Parse.
	File string
	// Builtin reports whether the lesson is embedded in the binary.
	Builtin bool

	Title   string   // front matter "title"; the Name when absent
	Summary string   // front matter "summary"; may be empty
	Regions []string // front matter "regions"; DefaultRegions when absent

	// Intro is the prose before the first "## " heading. When the intro holds
	// lab blocks it becomes the first step instead, and Intro is empty.
	Intro Prose
	Steps []Step
}

// Prose is learner-facing Markdown and its HTML rendering. Lab blocks are
// not part of it.
type Prose struct {
	Markdown string
	HTML     string
}

// Step is one "## " section of a lesson: what a presenter shows at once.
type Step struct {
	Title string // the heading text, as written
	Line  int    // line of the heading (of the first intro line for an intro step)
	// Prose is all of the step's prose. A step with an ask splits it in
	// two (the spoiler rule of docs/lessons.md): Pose is the prose before
	// the end of the lab block holding the first ask, which poses the
	// question and is shown at once; Reveal is the prose after that block,
	// which answers it and is shown only after the reveal or once the step
	// ran. Without an ask, Pose is all of Prose and Reveal is empty.
	Prose  Prose
	Pose   Prose
	Reveal Prose
	// Commands are the step's lab-block lines, in file order.
	Commands []Command
	// Polls are the step's ask commands, for a browser to show as votes.
	Polls []Poll
}

// Command is one line of a lab block.
type Command struct {
	Line   int    // line in the file, counting from 1, front matter included
	Source string // the line as written, comment and outer spaces removed
	Action Action // what to do; one of the types below
}

// Action is what a command does. It is one of Reset, Stock, Partition, Cut,
// Heal, Latency, Crash, Restart, Lead, Quorum, Buy, Read, Wait, ExpectLeader,
// ExpectRead, ExpectLinearizable, ExpectOversold or Ask. String gives the
// canonical spelling, which parses back to the same Action.
type Action interface {
	String() string
	action()
}

// Reset: fresh stores, links up, history cleared.
type Reset struct{}

// Stock sets a SKU's stock to Quantity in Store, or in both stores when
// Store is "".
type Stock struct {
	SKU      string
	Quantity int
	Store    inventory.Store
	Split    map[string]int // geo store: units per region ("split A=4,B=6"); nil: even
}

// Partition separates regions into groups: every link between two groups
// is cut both ways and every link inside a group is up.
type Partition struct {
	Groups [][]string
}

// Cut takes down the link between From and To, both ways unless OneWay
// (then only From → To).
type Cut struct {
	From, To string
	OneWay   bool
}

// Heal brings links up: all of them when From is "", else the link between
// From and To (both ways unless OneWay).
type Heal struct {
	From, To string
	OneWay   bool
}

// Latency sets the round-trip time between From and To (only From → To
// when OneWay).
type Latency struct {
	From, To string
	RTTMs    float64
	OneWay   bool
}

// Crash stops a region abruptly.
type Crash struct{ Region string }

// Restart brings a crashed region back from its data.
type Restart struct{ Region string }

// Lead moves consensus leadership to Region.
type Lead struct{ Region string }

// Quorum configures the replicated store's write and read quorums.
type Quorum struct{ W, R int }

// GroupCommit turns the consensus store's group commit on or off.
type GroupCommit struct{ On bool }

// Buy is one purchase of Qty units. Expect is "" when the lesson does not
// assert the outcome.
type Buy struct {
	Store  inventory.Store
	SKU    string
	Region string
	Qty    int
	Expect inventory.Kind
}

// Read reads a SKU's quantity and shows it. Expect is "" when the lesson
// does not assert the outcome (extension: "read ... expect unavailable").
type Read struct {
	Store       inventory.Store
	SKU         string
	Region      string
	Consistency inventory.Consistency
	Expect      inventory.Kind
}

// WaitFor says what a Wait waits for.
type WaitFor string

// What a Wait can wait for.
const (
	WaitDuration  WaitFor = "duration"  // a fixed time
	WaitLeader    WaitFor = "leader"    // until the majority has a leader
	WaitConverged WaitFor = "converged" // until all replicas agree
)

// Wait waits for a time or a condition.
type Wait struct {
	For      WaitFor
	Duration time.Duration // for WaitDuration
}

// ExpectLeader asserts that the consensus leader is in one of Regions.
type ExpectLeader struct{ Regions []string }

// ExpectRead asserts that a read answers ok with Quantity.
type ExpectRead struct {
	Store       inventory.Store
	SKU         string
	Region      string
	Consistency inventory.Consistency // "" when the lesson does not name one
	Quantity    int
}

// ExpectLinearizable asserts the checker's linearizability verdict for one
// store and SKU.
type ExpectLinearizable struct {
	Store inventory.Store
	SKU   string
	Want  bool // false for "not linearizable"
}

// ExpectOversold asserts the checker's count of oversold units: exactly N,
// or at least N when AtLeast.
type ExpectOversold struct {
	Store   inventory.Store
	SKU     string
	N       int
	AtLeast bool
}

// Ask is a prediction: viewers vote, the presenter reveals the answer.
type Ask struct{ Poll Poll }

// Poll is a question with options and the answer, for a browser to show.
type Poll struct {
	Line     int
	Question string
	Options  []string // ["yes", "no"] when the lesson names none
	Answer   string   // one of Options
}

func (Reset) action()              {}
func (Stock) action()              {}
func (Partition) action()          {}
func (Cut) action()                {}
func (Heal) action()               {}
func (Latency) action()            {}
func (Crash) action()              {}
func (Restart) action()            {}
func (Lead) action()               {}
func (Quorum) action()             {}
func (GroupCommit) action()        {}
func (Buy) action()                {}
func (Read) action()               {}
func (Wait) action()               {}
func (ExpectLeader) action()       {}
func (ExpectRead) action()         {}
func (ExpectLinearizable) action() {}
func (ExpectOversold) action()     {}
func (Ask) action()                {}
func (Clock) action()              {}
func (PauseShop) action()          {}
func (Reserve) action()            {}

func arrow(oneWay bool) string {
	if oneWay {
		return " -> "
	}
	return " "
}

func (Reset) String() string { return "reset" }

func (a Stock) String() string {
	s := fmt.Sprintf("stock %s %d", a.SKU, a.Quantity)
	if a.Store != "" {
		s += " on " + string(a.Store)
	}
	if len(a.Split) > 0 {
		regions := make([]string, 0, len(a.Split))
		for r := range a.Split {
			regions = append(regions, r)
		}
		sort.Strings(regions)
		parts := make([]string, len(regions))
		for i, r := range regions {
			parts[i] = fmt.Sprintf("%s=%d", r, a.Split[r])
		}
		s += " split " + strings.Join(parts, ",")
	}
	return s
}

func (a Partition) String() string {
	groups := make([]string, len(a.Groups))
	for i, g := range a.Groups {
		groups[i] = strings.Join(g, ",")
	}
	return "partition " + strings.Join(groups, " | ")
}

func (a Cut) String() string { return "cut " + a.From + arrow(a.OneWay) + a.To }

func (a Heal) String() string {
	if a.From == "" {
		return "heal"
	}
	return "heal " + a.From + arrow(a.OneWay) + a.To
}

func (a Latency) String() string {
	return "latency " + a.From + arrow(a.OneWay) + a.To + " " + strconv.FormatFloat(a.RTTMs, 'f', -1, 64)
}

func (a Crash) String() string   { return "crash " + a.Region }
func (a Restart) String() string { return "restart " + a.Region }
func (a Lead) String() string    { return "lead " + a.Region }
func (a Quorum) String() string  { return fmt.Sprintf("quorum %d %d", a.W, a.R) }

func (a GroupCommit) String() string {
	if a.On {
		return "groupcommit on"
	}
	return "groupcommit off"
}

func (a Buy) String() string {
	s := fmt.Sprintf("buy %s %s from %s", a.Store, a.SKU, a.Region)
	if a.Qty != 1 {
		s += fmt.Sprintf(" qty %d", a.Qty)
	}
	if a.Expect != "" {
		s += " expect " + string(a.Expect)
	}
	return s
}

func (a Read) String() string {
	s := fmt.Sprintf("read %s %s from %s", a.Store, a.SKU, a.Region)
	if a.Consistency != "" {
		s += " " + string(a.Consistency)
	}
	if a.Expect != "" {
		s += " expect " + string(a.Expect)
	}
	return s
}

func (a Wait) String() string {
	if a.For == WaitDuration {
		return "wait " + a.Duration.String()
	}
	return "wait " + string(a.For)
}

func (a ExpectLeader) String() string { return "expect leader in " + strings.Join(a.Regions, ",") }

func (a ExpectRead) String() string {
	s := fmt.Sprintf("expect read %s %s from %s", a.Store, a.SKU, a.Region)
	if a.Consistency != "" {
		s += " " + string(a.Consistency)
	}
	return s + fmt.Sprintf(" = %d", a.Quantity)
}

func (a ExpectLinearizable) String() string {
	verdict := "linearizable"
	if !a.Want {
		verdict = "not linearizable"
	}
	return fmt.Sprintf("expect check %s %s %s", a.Store, a.SKU, verdict)
}

func (a ExpectOversold) String() string {
	op := "="
	if a.AtLeast {
		op = ">="
	}
	return fmt.Sprintf("expect check %s %s oversold %s %d", a.Store, a.SKU, op, a.N)
}

func (a Ask) String() string {
	opts := make([]string, len(a.Poll.Options))
	for i, o := range a.Poll.Options {
		opts[i] = pollWord(o)
	}
	return fmt.Sprintf("ask %s options %s answer %s", strconv.Quote(a.Poll.Question), strings.Join(opts, "|"), pollWord(a.Poll.Answer))
}

// pollWord quotes an option or answer unless it reads back as written.
func pollWord(s string) string {
	toks, _, err := tokenize(s)
	plain := err == nil && len(toks) > 0
	words := make([]string, 0, len(toks))
	for _, t := range toks {
		if t.quoted || t.punct() || t.is("answer") {
			plain = false
		}
		words = append(words, t.text)
	}
	if plain && strings.Join(words, " ") == s {
		return s
	}
	return strconv.Quote(s)
}

// Clock sets a region's wall clock (Offset from true time, DriftPpm), or
// every clock back to true time when Reset.
type Clock struct {
	Region   string
	Offset   time.Duration
	DriftPpm float64
	Reset    bool
}

func (a Clock) String() string {
	if a.Reset {
		return "clock reset"
	}
	s := "clock " + a.Region + " "
	if a.Offset >= 0 {
		s += "+"
	}
	s += a.Offset.String()
	if a.DriftPpm != 0 {
		s += " drift " + strconv.FormatFloat(a.DriftPpm, 'f', -1, 64)
	}
	return s
}

// PauseShop freezes a region's shop for Duration (a GC pause, a VM
// migration): its requests stop mid-flight and resume afterwards.
type PauseShop struct {
	Region   string
	Duration time.Duration
}

func (a PauseShop) String() string { return "pause shop " + a.Region + " " + a.Duration.String() }

// Reserve is the lock-based reservation of one unit from Region: take the
// SKU's etcd lock, read the stock, write the sale (with a fencing token when
// Fenced). Expect is "" when the lesson does not assert the outcome. From a
// paused shop it runs on in the background (the lesson goes on); its
// outcome is checked before the next expectation.
type Reserve struct {
	SKU    string
	Region string
	Fenced bool
	Expect inventory.Kind
}

func (a Reserve) String() string {
	s := "reserve " + a.SKU + " from " + a.Region
	if a.Fenced {
		s += " fenced"
	}
	if a.Expect != "" {
		s += " expect " + string(a.Expect)
	}
	return s
}
