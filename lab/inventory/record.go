package inventory

import (
	"time"
)

// GeoCallKind names one call into a regional group.
type GeoCallKind string

const (
	GeoSet         GeoCallKind = "set"          // stock: the allocation becomes Set
	GeoBuy         GeoCallKind = "buy"          // allocation −= qty
	GeoTransferOut GeoCallKind = "transfer-out" // debit at a borrowing's source
	GeoTransferIn  GeoCallKind = "transfer-in"  // credit at the destination (and the sale)
	GeoRefund      GeoCallKind = "refund"       // an aborted transfer back at its source
	GeoRead        GeoCallKind = "read"         // the row's quantity, read or returned by a failed compare
)

// GeoCall is one call into one region's group on one SKU, as the checker
// sees it: a register holding the allocation. Delta is the change a write
// makes (set: Set); Left is the allocation after (or read); Unknown: the
// call failed and may still have applied. The geo store's verdict is
// computed from these calls (and its counts from the operations), so
// exports carry them.
type GeoCall struct {
	SKU     string      `json:"sku"`
	Region  string      `json:"region"`
	Kind    GeoCallKind `json:"kind"`
	Delta   int         `json:"delta,omitempty"`
	Set     int         `json:"set,omitempty"`
	Left    int         `json:"left"`
	Unknown bool        `json:"unknown,omitempty"`
	Call    time.Time   `json:"call"`
	Return  time.Time   `json:"return"`
}

// GapReason says why writes went unrecorded.
type GapReason string

const (
	// GapSkipped: the caller left the operations out of the history
	// (WithOpRecording.SkipHistory — a load's unchecked SKUs, or its
	// recording budget spent).
	GapSkipped GapReason = "skipped"
	// GapHistoryFull: the History held its maximum of operations.
	GapHistoryFull GapReason = "history-full"
	// GapGeoLogFull: the geo store's call log held its maximum.
	GapGeoLogFull GapReason = "geo-log-full"
	// GapTooManySKUs: the lab tracks gaps for at most maxGapKeys
	// (store, SKU)s; past that, one gap covers every SKU of the store.
	GapTooManySKUs GapReason = "too-many-skus"
	// GapResumed: the lab started on the data an earlier run left (see
	// nodes' LayoutFile), or a history file holds a run that did not end
	// cleanly: what the stores held before is not in this history. One
	// store-wide gap per store; a SKU is judged again from its first
	// clean restock after it.
	GapResumed GapReason = "resumed"
)

// RecordingGap is a stretch of one store's SKU (SKU "": every SKU of the
// store) in which the lab made writes it did not record.
type RecordingGap struct {
	ID     int64     `json:"id"` // names the gap across updates of it (an export keeps the last)
	Store  Store     `json:"store"`
	SKU    string    `json:"sku,omitempty"`
	Reason GapReason `json:"reason"`
	// From is the earliest call of an unrecorded write.
	From time.Time `json:"from"`
	// To is when the last of them returned, once every one has returned
	// with a definite answer; zero while one is in flight, or when one
	// answered unavailable (it may still apply at any time): the gap has
	// not ended.
	To time.Time `json:"to,omitzero"`
	// Writes counts the unrecorded writes that may have applied. A gap
	// that ended with none (every one was refused: sold out, conflict,
	// fail-fast) changed nothing and cuts nothing.
	Writes int `json:"writes"`
}

// Ended reports whether the gap is over (the checker may resume after it).
func (g RecordingGap) Ended() bool { return !g.To.IsZero() }

// Harmless reports whether the gap changed nothing: ended with no write.
func (g RecordingGap) Harmless() bool { return g.Ended() && g.Writes == 0 }
