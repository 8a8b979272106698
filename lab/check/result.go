package check

import (
	"caplab/lab/inventory"
)

// Result is the checker's verdict for one store and SKU (API.md).
type Result struct {
	Store         inventory.Store `json:"store"`
	SKU           string          `json:"sku"`
	Linearizable  bool            `json:"linearizable"`
	SoldUnits     int             `json:"soldUnits"`
	InitialUnits  int             `json:"initialUnits"`
	Oversold      int             `json:"oversold"`
	Indeterminate int             `json:"indeterminate"`
	StaleReads    int             `json:"staleReads"`
	LostUpdates   int             `json:"lostUpdates"`
	Operations    int             `json:"operations"`         // operations considered
	Explanation   string          `json:"explanation"`        // one or two sentences for a learner
	TimedOut      bool            `json:"timedOut,omitempty"` // porcupine gave up; Linearizable is then false
	// Unjudged counts operations recorded after the in-memory history
	// reached inventory.MaxHistoryOperations (every store and SKU): the verdict
	// judged only the first ones, and the explanation says so.
	Unjudged int        `json:"unjudged,omitempty"`
	Geo      *GeoResult `json:"geo,omitempty"` // geo store: per-region Memo and conservation
	// Cuts: where writes on a SKU went unrecorded (a load's budget, the
	// History's cap, an unsampled SKU): its history is judged up to there
	// and again from a clean restock after (cut.go), never across. The
	// explanation says what was judged.
	Cuts []Cut `json:"cuts,omitempty"`
	// NotJudged counts the recorded operations the cuts left out.
	NotJudged int `json:"notJudged,omitempty"`
	// Unplaced: when not linearizable, the answer no order of events
	// could place, with what the answers before it allow (evidence.go).
	Unplaced *Unplaced `json:"unplaced,omitempty"`
	// Counterexample: when not linearizable, the fewest answers (two or
	// three) that prove it on their own (counterexample.go); nil when
	// none that small does.
	Counterexample *Counterexample `json:"counterexample,omitempty"`
}

// GeoResult is the geo store's part of a Result: per-region
// linearizability of the allocation histories (from the recorded call
// log: the verdict), and live figures that are no part of it — the
// conservation audit of the regional groups (read from the stores when
// the lab checks one SKU) and the stores' counters.
type GeoResult struct {
	GeoLinearizability
	Conservation *GeoConservation `json:"conservation,omitempty"` // live: read from every regional group
	AuditError   string           `json:"auditError,omitempty"`
	Stranded     int              `json:"stranded"` // live: buys refused because the units left were unreachable
	Borrowed     int              `json:"borrowed"` // live: units moved between regions
}
