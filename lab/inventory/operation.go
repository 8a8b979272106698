package inventory

import (
	"time"
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

	// Geo store (lab/store/geo): every region's allocation (stock, read), regions
	// that could not be reached, units stranded there (last seen).
	Allocations map[string]Allocation `json:"allocations,omitempty"`
	Unreachable []string              `json:"unreachable,omitempty"`
	Stranded    int                   `json:"stranded,omitempty"`

	// Consensus store with group commit: the Txn this buy shared with the
	// region's other buys of the SKU (absent: it went alone, or group
	// commit was off).
	Batch Batch `json:"batch,omitzero"`
	// Cached reads: how far behind the region's cache may be.
	CacheLag *CacheLag `json:"cacheLag,omitempty"`
}

// Batch is one buy's place in a group commit: Commit is the revision of
// the Txn that carried it (for a batch that sold nothing, the revision its
// read-only Txn saw), Size how many buys of its SKU the Txn answered,
// Position this buy's place among them (0-based; each buy's "left" is the
// count after the buys before it), SKUs how many SKUs the Txn carried (a
// compare-and-set each; absent: one). Buys of one batch share a
// BaseVersion legitimately: the checker's lost-update rule counts commits,
// not buys.
type Batch struct {
	Commit   int64 `json:"commit"`
	Size     int   `json:"size"`
	Position int   `json:"position"`
	SKUs     int   `json:"skus,omitempty"`
}

// CacheLag is how far behind a cached read may be: the cache's revision,
// the newest revision its member is known to have (from the watch's
// events and progress notifications), their difference, and the time
// since the cache last heard from its watch.
type CacheLag struct {
	Revision  int64   `json:"revision"`
	Known     int64   `json:"knownRevision"`
	Revisions int64   `json:"revisions"`
	Ms        float64 `json:"ms"`
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
	// says what the live answer said (lab.Say). A load's operations leave
	// them out.
	Message    string   `json:"message,omitempty"`
	AnsweredBy []string `json:"answeredBy,omitempty"`

	// Batch (consensus store, group commit): the buys that shared one
	// Txn carry its revision; see Batch.
	Batch Batch `json:"batch,omitzero"`
	// CacheLag (cached reads): how far behind the read may have been.
	CacheLag *CacheLag `json:"cacheLag,omitempty"`
}

// Fault is one recorded fault or configuration change.
type Fault struct {
	ID      int       `json:"id"`
	Kind    FaultKind `json:"kind"`
	Regions []string  `json:"regions,omitempty"`
	Detail  string    `json:"detail"`
	At      time.Time `json:"at"`
	// Net (extension): the network and regions as the fault left them,
	// so that the moment can be shown again (net.go).
	Net *FaultNet `json:"net,omitempty"`
}

// The lab's side of the geo store and zones: names, faults on zones,
// reset, recovery loop and the checker's verdict.

// Allocation is one region's share of a geo SKU in an Outcome.
type Allocation struct {
	Quantity    int   `json:"quantity"`
	Sold        int   `json:"sold,omitempty"`
	Revision    int64 `json:"revision,omitempty"`    // the region's group revision the read saw
	ModRevision int64 `json:"modRevision,omitempty"` // the row's version token
	Unreachable bool  `json:"unreachable,omitempty"` // not answered: Quantity is the last value seen
	Stranded    int   `json:"stranded,omitempty"`    // units there the reader cannot reach
}
