package lab

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"caplab/lab/check"
	"caplab/lab/guard"
	"caplab/lab/inventory"
	"caplab/nodes"
)

// MaxRecordedActions bounds a recording. Past it, further actions are
// counted (Recording.Dropped) but not kept, until the next reset or
// StartRecording.
const MaxRecordedActions = 1000

// ActionKind names a recorded action.
type ActionKind string

// Recorded actions. Stock, buy and read carry their Operation.
const (
	ActStock     ActionKind = "stock"
	ActBuy       ActionKind = "buy"
	ActRead      ActionKind = "read"
	ActPartition ActionKind = "partition" // Groups
	ActIsolate   ActionKind = "isolate"   // Regions[0] alone against the rest
	ActBridge    ActionKind = "bridge"    // Regions[0] is the bridge; Cuts is the result
	ActCut       ActionKind = "cut"       // Regions = from, to; OneWay
	ActHealLink  ActionKind = "heal-link" // Regions = from, to; OneWay
	ActHeal      ActionKind = "heal"      // every link up
	ActLatency   ActionKind = "latency"   // Regions = from, to; RTTMs; OneWay
	ActCrash     ActionKind = "crash"     // Regions[0]
	ActRestart   ActionKind = "restart"   // Regions[0]
	ActLead      ActionKind = "lead"      // Regions[0]
	ActQuorum    ActionKind = "quorum"    // W, R
	ActClock     ActionKind = "clock"     // Regions[0] (none: every clock reset); OffsetMs, DriftPpm
	ActPause     ActionKind = "pause"     // Regions[0]'s shop; Seconds
	ActReserve   ActionKind = "reserve"   // Op (a buy of 1 on the consensus store); Fenced

	ActGroupCommit ActionKind = "groupcommit" // On: the consensus store's group commit
)

// RecordedAction is one action taken through the lab's API, as the
// recorder kept it. It says what was done and what came of it, not how a
// lesson would spell it: rendering is the lessons package's job.
type RecordedAction struct {
	Seq     int         `json:"seq"` // from 1, in the order the actions returned
	Kind    ActionKind  `json:"kind"`
	At      time.Time   `json:"at"`   // when it began (operations) or took effect (faults)
	Done    time.Time   `json:"done"` // when it returned
	Regions []string    `json:"regions,omitempty"`
	Groups  [][]string  `json:"groups,omitempty"`
	Cuts    [][2]string `json:"cuts,omitempty"` // bridge: every ordered pair left cut
	OneWay  bool        `json:"oneWay,omitempty"`
	RTTMs   float64     `json:"rttMs,omitempty"`
	// OffsetMs and DriftPpm: a clock setting.
	OffsetMs float64                `json:"offsetMs,omitempty"`
	DriftPpm float64                `json:"driftPpm,omitempty"`
	Seconds  float64                `json:"seconds,omitempty"` // a pause
	Fenced   bool                   `json:"fenced,omitempty"`  // a reservation with a fencing token
	On       bool                   `json:"on,omitempty"`      // groupcommit: turned on (false: off)
	W        int                    `json:"w,omitempty"`
	R        int                    `json:"r,omitempty"`
	Op       *inventory.Operation   `json:"operation,omitempty"` // stock, buy, read
	Quorum   *inventory.QuorumState `json:"quorum,omitempty"`    // the replicated store's W/R when an operation ran
}

// Recording is what the lab did since the last reset or StartRecording.
type Recording struct {
	Started   time.Time `json:"started"`
	FromReset bool      `json:"fromReset"` // false: "Start recording" mid-session
	// Regions of the running lab, in order, with their cities.
	Regions         []string          `json:"regions"`
	Cities          map[string]string `json:"cities"`
	LatencyScale    float64           `json:"latencyScale"`
	BreakerCooldown time.Duration     `json:"breakerCooldown"`
	BreakerTrips    int               `json:"breakerTrips"` // consecutive unavailable answers that open a breaker
	// Quorum is the replicated store's W and R when the recording began.
	Quorum  inventory.QuorumState `json:"quorum"`
	Actions []RecordedAction      `json:"actions"`
	// Dropped counts actions past MaxRecordedActions, which were not kept.
	Dropped int `json:"dropped"`
	// Checks is the checker's verdict, at the time Recording was called,
	// for every (store, SKU) the recorded operations touched.
	Checks []check.Result `json:"checks,omitempty"`
}

// Recorder is the lab's room for the lesson recording: every action taken
// through the lab's API since the last reset or Start, in order, at most
// MaxRecordedActions, for the lessons package to render as a lesson (the
// lab knows nothing of the lesson format). Safe for concurrent use; the
// zero value records nothing until start.
type Recorder struct {
	mu  sync.Mutex
	rec Recording

	// What a Recording says of the lab it was made on.
	regions      []string
	latencyScale float64
	breaker      guard.BreakerSettings
	quorum       func() inventory.QuorumState                        // the replicated store's W and R now
	check        func(inventory.Store, string) (check.Result, error) // Lab.Check
}

// Recorder is the lab's room for the lesson recording.
func (l *Lab) Recorder() *Recorder { return l.recorder }

func (r *Recorder) start(fromReset bool, quorum inventory.QuorumState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rec.Started, r.rec.FromReset, r.rec.Quorum = time.Now(), fromReset, quorum
	r.rec.Actions, r.rec.Dropped = nil, 0
}

func (r *Recorder) add(a RecordedAction) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rec.Actions) >= MaxRecordedActions {
		r.rec.Dropped++
		return
	}
	if a.At.IsZero() {
		a.At = time.Now()
	}
	if a.Done.IsZero() {
		a.Done = a.At
	}
	a.Seq = len(r.rec.Actions) + 1
	a.Regions = slices.Clone(a.Regions)
	r.rec.Actions = append(r.rec.Actions, a)
}

func (r *Recorder) snapshot() Recording {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.rec
	rec.Actions = slices.Clone(r.rec.Actions)
	return rec
}

// Start forgets what was recorded and records from now on. A reset does
// the same (the recording then starts from a fresh lab).
func (r *Recorder) Start() {
	r.start(false, r.quorum())
}

// Recording returns what was recorded since the last reset or Start, with
// the checker's verdict for every store and SKU the recorded operations
// touched.
func (r *Recorder) Recording() Recording {
	rec := r.snapshot()
	rec.Regions = slices.Clone(r.regions)
	rec.Cities = map[string]string{}
	for _, g := range r.regions {
		rec.Cities[g] = g
		if p, ok := nodes.Lookup(g); ok {
			rec.Cities[g] = p.City
		}
	}
	rec.LatencyScale = r.latencyScale
	rec.BreakerCooldown = r.breaker.Cooldown
	rec.BreakerTrips = int(r.breaker.Threshold)
	if rec.BreakerTrips == 0 {
		rec.BreakerTrips = 3
	}
	type key struct {
		store inventory.Store
		sku   string
	}
	var seen []key
	for _, a := range rec.Actions {
		if a.Op != nil && !slices.Contains(seen, key{a.Op.Store, a.Op.SKU}) {
			seen = append(seen, key{a.Op.Store, a.Op.SKU})
		}
	}
	if len(seen) > maxRecordingChecks {
		return rec // too many to judge quickly; the export leaves the checker step out
	}
	for _, k := range seen {
		if res, err := r.check(k.store, k.sku); err == nil {
			rec.Checks = append(rec.Checks, res)
		}
	}
	return rec
}

// maxRecordingChecks bounds the (store, SKU) pairs Recording judges.
const maxRecordingChecks = 8

// RecordingStatus says how much has been recorded, for a presenter's dot.
type RecordingStatus struct {
	Started   time.Time `json:"started"`
	FromReset bool      `json:"fromReset"`
	Actions   int       `json:"actions"`
	Max       int       `json:"max"`
	Dropped   int       `json:"dropped"`
	Message   string    `json:"message"`
}

// Status reports the recording's size without copying it.
func (r *Recorder) Status() RecordingStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := &r.rec
	st := RecordingStatus{Started: rec.Started, FromReset: rec.FromReset, Actions: len(rec.Actions), Max: MaxRecordedActions, Dropped: rec.Dropped}
	switch {
	case rec.Dropped > 0:
		st.Message = "The recording is full: it kept the first 1,000 actions and left out the " + plural(rec.Dropped, "action") + " after them. Save it as a lesson, then reset or start recording again."
	case len(rec.Actions) == 0:
		st.Message = "Recording: nothing yet."
	default:
		st.Message = "Recording: " + plural(len(rec.Actions), "action") + " so far."
	}
	return st
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

type noRecording struct{}

// WithoutRecording marks operations run with ctx as not to be recorded:
// a load generator's thousands of buys are not a presenter's actions.
func WithoutRecording(ctx context.Context) context.Context {
	return context.WithValue(ctx, noRecording{}, true)
}

// op records an operation as it returned, unless its context says
// not to (WithoutRecording): a stock, buy or read with the replicated
// store's W and R as it began (kind ""), or a reservation (ActReserve,
// fenced or not).
func (r *Recorder) op(ctx context.Context, op inventory.Operation, quorum inventory.QuorumState, kind ActionKind, fenced bool) {
	if ctx.Value(noRecording{}) != nil {
		return
	}
	if kind == ActReserve {
		r.add(RecordedAction{Kind: ActReserve, At: op.Call, Done: op.Return, Regions: []string{op.Region}, Op: &op, Fenced: fenced})
		return
	}
	kind = ActBuy
	switch op.Op {
	case inventory.OpStock:
		kind = ActStock
	case inventory.OpRead:
		kind = ActRead
	}
	r.add(RecordedAction{Kind: kind, At: op.Call, Done: op.Return, Regions: []string{op.Region}, Op: &op, Quorum: &quorum})
}

// linkAction is the kind of a SetLink.
func linkAction(up bool) ActionKind {
	if up {
		return ActHealLink
	}
	return ActCut
}
