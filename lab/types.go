package lab

import (
	"time"

	"caplab/nodes"
)

// Store names a store. The API spells them "consensus" and "replicated".
type Store string

const (
	// Consensus is the CP store: one etcd Raft group spanning all regions.
	Consensus Store = "consensus"
	// Replicated is the AP / tunable-quorum store over per-region replicas.
	Replicated Store = "replicated"
	// Geo is the geo-partitioned store: one allocation per (sku, region)
	// in the region's own regional Raft group (geo.go).
	Geo Store = "geo"
)

// Stores lists every store in display order.
var Stores = []Store{Consensus, Replicated, Geo}

// Kind is the outcome of one operation, as the API spells it.
type Kind string

const (
	OK          Kind = "ok"          // done; for reads, the value is in Quantity
	SoldOut     Kind = "sold_out"    // not enough stock; nothing changed
	Unavailable Kind = "unavailable" // no quorum or deadline passed; a buy may still have applied
	FailFast    Kind = "fail_fast"   // the circuit breaker is open; nothing was sent
	Conflict    Kind = "conflict"    // optimistic-lock retries exhausted; nothing changed
	Overloaded  Kind = "overloaded"  // the region's gateway was at its in-flight limit; nothing was sent
)

// Kinds lists every outcome kind.
var Kinds = []Kind{OK, SoldOut, Unavailable, FailFast, Conflict, Overloaded}

// Op names what an operation did.
type Op string

const (
	OpStock Op = "stock"
	OpBuy   Op = "buy"
	OpRead  Op = "read"
)

// Consistency of a read. It applies to the consensus store; the replicated
// store's reads are governed by R.
type Consistency string

const (
	Linearizable Consistency = "linearizable"
	Serializable Consistency = "serializable"
)

// Version orders values of one SKU. For the consensus store Wall is the
// etcd ModRevision and Logical is 0; for the replicated store it is a hybrid
// logical clock (Wall in ms, Logical counter) with the writing region as the
// tie-breaker (last-writer-wins). The zero Version means "never written".
type Version struct {
	Wall    int64  `json:"wall"`
	Logical int64  `json:"logical"`
	Region  string `json:"region,omitempty"`
}

// Less reports whether v orders before o.
func (v Version) Less(o Version) bool {
	if v.Wall != o.Wall {
		return v.Wall < o.Wall
	}
	if v.Logical != o.Logical {
		return v.Logical < o.Logical
	}
	return v.Region < o.Region
}

// IsZero reports whether v is the zero Version.
func (v Version) IsZero() bool { return v == Version{} }

// Outcome is the answer to one stock, buy or read. The first nine fields are
// the API contract (API.md); the rest are extensions.
type Outcome struct {
	Outcome    Kind     `json:"outcome"`
	Store      Store    `json:"store"`
	Region     string   `json:"region"`
	SKU        string   `json:"sku"`
	Quantity   int      `json:"quantity"`
	LatencyMs  float64  `json:"latencyMs"`
	AnsweredBy []string `json:"answeredBy"`
	Message    string   `json:"message"`

	Op          Op          `json:"op"`
	Qty         int         `json:"qty,omitempty"`         // units asked for (buy) or set (stock)
	Consistency Consistency `json:"consistency,omitempty"` // reads only
	Version     Version     `json:"version"`               // version written (stock, buy) or read
	BaseVersion Version     `json:"baseVersion"`           // version a buy read before writing
	OpID        int         `json:"opId"`                  // index in the history

	// Geo store (geo.go): every region's allocation (stock, read), regions
	// that could not be reached, units stranded there (last seen).
	Allocations map[string]Allocation `json:"allocations,omitempty"`
	Unreachable []string              `json:"unreachable,omitempty"`
	Stranded    int                   `json:"stranded,omitempty"`
}

// Operation is one recorded client operation.
type Operation struct {
	ID          int         `json:"id"`
	Client      int         `json:"client"` // porcupine client id: one per (region, store) session
	Region      string      `json:"region"`
	Store       Store       `json:"store"`
	SKU         string      `json:"sku"`
	Op          Op          `json:"op"`
	Qty         int         `json:"qty,omitempty"` // buy: units asked; stock: quantity set
	Consistency Consistency `json:"consistency,omitempty"`
	Outcome     Kind        `json:"outcome"`
	Quantity    int         `json:"quantity"` // buy: left after; read: value read
	Version     Version     `json:"version"`
	BaseVersion Version     `json:"baseVersion"`
	Call        time.Time   `json:"call"`
	Return      time.Time   `json:"return"`

	Allocations map[string]int `json:"allocations,omitempty"` // geo stock: units per region

	// Message and AnsweredBy are the store's answer in words and the
	// regions that confirmed it (the Outcome's), kept so that the history
	// says what the live answer said (Say, sentence.go). A load's
	// operations leave them out.
	Message    string   `json:"message,omitempty"`
	AnsweredBy []string `json:"answeredBy,omitempty"`
}

// FaultKind names a recorded fault or configuration change.
type FaultKind string

const (
	FaultCut       FaultKind = "cut"
	FaultHeal      FaultKind = "heal"
	FaultPartition FaultKind = "partition"
	FaultLatency   FaultKind = "latency"
	FaultCrash     FaultKind = "crash"
	FaultRestart   FaultKind = "restart"
	FaultLead      FaultKind = "lead"
	FaultQuorum    FaultKind = "quorum"
	FaultReset     FaultKind = "reset"
)

// Fault is one recorded fault or configuration change.
type Fault struct {
	ID      int       `json:"id"`
	Kind    FaultKind `json:"kind"`
	Regions []string  `json:"regions,omitempty"`
	Detail  string    `json:"detail"`
	At      time.Time `json:"at"`
	// Net (extension): the network and regions as the fault left them,
	// so that the moment can be shown again (replay.go).
	Net *FaultNet `json:"net,omitempty"`
}

// HistoryView is what GET /api/history answers.
type HistoryView struct {
	Operations []Operation `json:"operations"`
	Faults     []Fault     `json:"faults"`

	// For replays (replay.go), filled by Lab.History: when the History
	// started (the last reset, or the lab's start), the network then, and
	// what its caps left out since.
	StartedAt         time.Time `json:"-"`
	Start             *FaultNet `json:"-"`
	DroppedOperations int       `json:"-"`
	DroppedFaults     int       `json:"-"`
}

// CheckResult is the checker's verdict for one store and SKU (API.md).
type CheckResult struct {
	Store         Store  `json:"store"`
	SKU           string `json:"sku"`
	Linearizable  bool   `json:"linearizable"`
	SoldUnits     int    `json:"soldUnits"`
	InitialUnits  int    `json:"initialUnits"`
	Oversold      int    `json:"oversold"`
	Indeterminate int    `json:"indeterminate"`
	StaleReads    int    `json:"staleReads"`
	LostUpdates   int    `json:"lostUpdates"`
	Operations    int    `json:"operations"`         // operations considered
	Explanation   string `json:"explanation"`        // one or two sentences for a learner
	TimedOut      bool   `json:"timedOut,omitempty"` // porcupine gave up; Linearizable is then false
	// Unjudged counts operations recorded after the in-memory history
	// reached MaxHistoryOperations (every store and SKU): the verdict
	// judged only the first ones, and the explanation says so.
	Unjudged int       `json:"unjudged,omitempty"`
	Geo      *GeoCheck `json:"geo,omitempty"` // geo store: per-region verdicts and conservation
	// Cuts: where writes on a SKU went unrecorded (a load's budget, the
	// History's cap, an unsampled SKU): its history is judged up to there
	// and again from a clean restock after (cut.go), never across. The
	// explanation says what was judged.
	Cuts []CheckCut `json:"cuts,omitempty"`
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

// State is the whole lab as GET /api/state answers it (API.md).
type State struct {
	Regions      []RegionState  `json:"regions"`
	Links        []LinkState    `json:"links"`
	Replicated   QuorumState    `json:"replicated"`
	LatencyScale float64        `json:"latencyScale"`
	Speed        float64        `json:"speed,omitempty"` // extension: every link's delay × this (SetSpeed; 1 at the start)
	Version      int64          `json:"version"`         // extension: increases with every change
	Counters     []StoreCounter `json:"counters"`        // extension: outcome counts per store

	ZoneLinks []LinkState `json:"zoneLinks"` // extension (geo): links between the zones of each region
}

// RegionState is one region in State.
type RegionState struct {
	Name      string           `json:"name"`
	City      string           `json:"city"`
	Lat       float64          `json:"lat"`
	Lon       float64          `json:"lon"`
	Up        bool             `json:"up"`
	Consensus MemberState      `json:"consensus"`
	Replica   ReplicaState     `json:"replica"`
	Breakers  map[Store]string `json:"breakers"` // closed, open, half-open
	// ClientURLs (extension): etcd v3 client URLs of this region's member
	// and replica for outside clients, by the region the client stands in
	// (outside.go).
	ClientURLs ClientURLs       `json:"clientUrls"`
	Clock      nodes.ClockState `json:"clock"` // extension: the region's wall clock (offset, drift, skew now)
	Zones      []ZoneState      `json:"zones"` // geo store: the region's zones (geo_lab.go)
}

// MemberState is a region's member of the consensus group.
type MemberState struct {
	Role         string `json:"role"` // leader, follower, candidate, pre-candidate, offline
	Term         uint64 `json:"term"`
	Leader       string `json:"leader"` // region name; "" when it knows none
	CommitIndex  uint64 `json:"commitIndex"`
	AppliedIndex uint64 `json:"appliedIndex"`
}

// ReplicaState is a region's replica of the replicated store.
type ReplicaState struct {
	Revision int64 `json:"revision"`
}

// LinkState is one ordered pair of regions in State.
type LinkState struct {
	From      string  `json:"from"`
	To        string  `json:"to"`
	State     string  `json:"state"` // up, cut
	RTTMs     float64 `json:"rttMs"`
	DelayMs   float64 `json:"delayMs"`   // extension: one-way delay applied now (after the latency scale)
	Estimated bool    `json:"estimated"` // extension: RTT estimated from distance, not measured
	Bytes     int64   `json:"bytes"`
	Messages  int64   `json:"messages"`
}

// QuorumState is the replicated store's configuration.
type QuorumState struct {
	N int `json:"n"`
	W int `json:"w"`
	R int `json:"r"`
}

// StoreCounter counts outcomes per store since the last reset.
type StoreCounter struct {
	Store       Store `json:"store"`
	OK          int   `json:"ok"`
	SoldOut     int   `json:"soldOut"`
	Unavailable int   `json:"unavailable"`
	FailFast    int   `json:"failFast"`
	Conflict    int   `json:"conflict"`
	Overloaded  int   `json:"overloaded"` // extension: answered at once by a gateway at its limit
	Oversold    int   `json:"oversold"`
	StaleReads  int   `json:"staleReads"`

	Stranded int `json:"stranded,omitempty"` // geo: buys refused because the units left were unreachable
}

// EventType names what an Event carries.
type EventType string

const (
	EventState     EventType = "state"     // State changed (cluster, links, breakers, quorum)
	EventOperation EventType = "operation" // an operation returned (Operation and Outcome set)
	EventFault     EventType = "fault"     // a fault or configuration change was recorded
	EventReset     EventType = "reset"     // the lab was reset; history is empty

	// Recorders only (Lab.Record: the audit log), never subscribers:
	EventGap     EventType = "gap"      // a recording gap began or changed (Gap set; gaps.go)
	EventGeoCall EventType = "geo_call" // a call of the geo store's log (GeoCall set)
)

// Event is what Subscribe delivers. State is set on every event, so a
// subscriber that missed some (slow readers lose events, never block the
// lab) is whole again at the next one.
type Event struct {
	Type      EventType  `json:"type"`
	State     *State     `json:"state,omitempty"`
	Operation *Operation `json:"operation,omitempty"`
	Outcome   *Outcome   `json:"outcome,omitempty"`
	Fault     *Fault     `json:"fault,omitempty"`
	// FirstOpID (reset): the ID the first operation after the reset gets.
	// An answer that overtook the reset's frame (its OpID is at least
	// this) belongs to the fresh lab and stays on the page.
	FirstOpID int `json:"firstOpId,omitempty"`
	// Missed is how many events this subscriber lost, for want of room,
	// just before this one (0: none). A subscriber that shows what happened
	// (a page's outcomes, a timeline) reads the History again.
	Missed int64 `json:"missed,omitempty"`
	// Gap and GeoCall: what the checker needs besides operations, for
	// recorders (EventGap, EventGeoCall).
	Gap     *RecordingGap `json:"gap,omitempty"`
	GeoCall *GeoCall      `json:"geoCall,omitempty"`
}
