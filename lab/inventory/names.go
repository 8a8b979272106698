package inventory

// Store names a store. The API spells them "consensus", "replicated" and
// "geo".
type Store string

const (
	// Consensus is the CP store: one etcd Raft group spanning all regions.
	Consensus Store = "consensus"
	// Replicated is the AP / tunable-quorum store over per-region replicas.
	Replicated Store = "replicated"
	// Geo is the geo-partitioned store: one allocation per (sku, region)
	// in the region's own regional Raft group (lab/store/geo).
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
	// Cached (consensus store): answered from the region's memory, fed by
	// an etcd watch through its own member — no network, no Raft; stale by
	// the watch's lag, which the Outcome reports (CacheLag). The checker
	// treats it like Serializable.
	Cached Consistency = "cached"
)

// MayBeStale reports whether a read of consistency c may return an old
// value by contract (serializable and cached reads): the checker counts
// such reads as stale instead of judging them.
func (c Consistency) MayBeStale() bool { return c == Serializable || c == Cached }

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

// QuorumState is the replicated store's configuration.
type QuorumState struct {
	N int `json:"n"`
	W int `json:"w"`
	R int `json:"r"`
}

// Faults of the time issue.
const (
	FaultClock FaultKind = "clock" // a region's clock was set or reset
	FaultPause FaultKind = "pause" // a region's shop was paused
)

// FaultOutsideWrite records a write to a SKU of the consensus store that no
// operation of the lab made: an outside etcd client (etcdctl through a
// client endpoint, say) changed the inventory behind the lab's back.
const FaultOutsideWrite FaultKind = "outside_write"

// MaxHistoryOperations is how many operations the lab's in-memory history
// keeps since its last reset (package history); a verdict past it says
// how many it did not judge.
const MaxHistoryOperations = 100_000

// FaultMerge records that the replicated store's copies of one SKU merged
// after a heal and lost sales; its Detail is the sentence.
const FaultMerge FaultKind = "merge"

// FaultSpeed records a change of the network's speed (lab.Faults.SetSpeed).
const FaultSpeed FaultKind = "speed"

// FaultGroupCommit records that the consensus store's group commit was
// turned on or off (lab.Faults.SetGroupCommit); its Detail says which.
const FaultGroupCommit FaultKind = "group_commit"
