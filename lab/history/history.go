package history

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"caplab/lab/inventory"
)

// History caps. Past a cap, further records are not stored (History.Dropped
// counts them) until Clear: the lab keeps serving, and the checker keeps
// judging the operations that were recorded first.
const (
	MaxOperations = inventory.MaxHistoryOperations
	MaxFaults     = 10_000
)

// History records every operation and fault of the lab since the last
// Clear. It is safe for concurrent use; the zero History is empty and ready.
//
// Operations and faults are numbered by two separate sequences, each
// starting at 1 (so ID 0 means "not recorded") and never reused, not even
// after Clear. Operations are kept in the order they were added, which is
// the order they returned when the lab adds each one as it returns.
//
// Recording an operation takes no lock: one atomic add claims the next
// slot of an append-only log of fixed-size chunks, the operation is written
// there, and the slot is marked filled. Readers see the filled slots; the
// lab's counters read only what is new since their last look (Since). Faults are
// rare and keep a plain mutex.
type History struct {
	log atomic.Pointer[opLog] // the operations since the last Clear

	clearMu    sync.Mutex // serializes Clear (and the lazy first log)
	mu         sync.Mutex // faults
	faults     []inventory.Fault
	lastFault  int
	droppedFts int
}

// opChunk holds chunkSize consecutive slots of an opLog.
const chunkSize = 1024

type opChunk struct {
	ops    [chunkSize]inventory.Operation
	filled [chunkSize]atomic.Bool
}

// opLog is the operations of one generation (Clear starts a new one).
// Slot s holds the operation with ID base+s.
type opLog struct {
	started time.Time    // when the log began (the lab's start or last Clear)
	base    int          // ID of slot 0
	next    atomic.Int64 // slots claimed; ≥ sealed once Clear retired the log
	dropped atomic.Int64 // operations past the cap
	// reserved counts operations promised a slot when they were called
	// (Reserve): the lab decides at the call whether an operation will be
	// kept, so that one past the cap is known as unrecorded before it can
	// reach a store (gaps.go in this package).
	reserved atomic.Int64
	// start: the network when the log began (SetStart), for replays.
	start  atomic.Pointer[inventory.FaultNet]
	chunks [MaxOperations/chunkSize + 1]atomic.Pointer[opChunk]
}

// sealed marks a retired log: claims on it are retried on the new one.
const sealed = int64(1) << 62

// OpBytes is what one recorded operation takes in the history:
// its slot (the Operation value and its filled flag) in a chunk. Strings
// an operation holds (region, SKU, …) are shared with the request.
const OpBytes = int64(unsafe.Sizeof(opChunk{}) / chunkSize)

// recorded is the number of operations stored in g.
func (g *opLog) recorded() int { return int(min(g.next.Load()&^sealed, MaxOperations)) }

// Stored is the number of operations stored since the last Clear.
func (h *History) Stored() int { return h.current().recorded() }

// NextID is the ID the next operation stored gets (after a Clear: the
// first of the new history).
func (h *History) NextID() int { return h.current().base }

// StartedAt is when the history began: the lab's start or its last Clear.
func (h *History) StartedAt() time.Time { return h.current().started }

// SetStart records the network as it was when the History began (the
// lab's start or its last Clear): a replay draws a moment before the
// first fault from it. Views carry it (View.Start).
func (h *History) SetStart(n *inventory.FaultNet) { h.current().start.Store(n) }

// Start is the network SetStart recorded for this History, or nil.
func (h *History) Start() *inventory.FaultNet { return h.current().start.Load() }

// New returns an empty History.
func New() *History { return &History{} }

func (h *History) current() *opLog {
	if g := h.log.Load(); g != nil {
		return g
	}
	h.clearMu.Lock()
	defer h.clearMu.Unlock()
	if h.log.Load() == nil {
		h.log.Store(&opLog{base: 1, started: time.Now()})
	}
	return h.log.Load()
}

func (g *opLog) chunk(i int) *opChunk {
	if c := g.chunks[i].Load(); c != nil {
		return c
	}
	c := new(opChunk)
	if g.chunks[i].CompareAndSwap(nil, c) {
		return c
	}
	return g.chunks[i].Load()
}

// Reserve promises the operation being called a slot: false once
// MaxOperations are promised since the last Clear (the operation
// will not be stored: drop it at its return).
func (h *History) Reserve() bool {
	return h.current().reserved.Add(1) <= MaxOperations
}

// AddOperation records op with the next operation ID and returns it with
// that ID set. Past MaxOperations the ID is still assigned but the
// operation is not stored.
func (h *History) AddOperation(op inventory.Operation) inventory.Operation {
	if !h.Reserve() {
		return h.Drop(op)
	}
	op, _ = h.AddReserved(op)
	return op
}

// AddReserved stores op, which Reserve promised a slot, with the next
// ID, and says whether it was stored (a slot is always there unless
// AddOperation past the cap raced it).
func (h *History) AddReserved(op inventory.Operation) (inventory.Operation, bool) {
	for {
		g := h.current()
		s := g.next.Add(1) - 1
		if s >= sealed { // Clear is swapping logs: take a slot in the new one
			runtime.Gosched()
			continue
		}
		if s >= MaxOperations {
			return h.Drop(op), false
		}
		op.ID = g.base + int(s)
		c := g.chunk(int(s) / chunkSize)
		c.ops[s%chunkSize] = op
		c.filled[s%chunkSize].Store(true)
		return op, true
	}
}

// Drop gives op an ID after every stored one without storing it, and
// counts it in Dropped.
func (h *History) Drop(op inventory.Operation) inventory.Operation {
	h.current()
	h.clearMu.Lock() // against Clear, which numbers the next log after these
	defer h.clearMu.Unlock()
	g := h.log.Load()
	op.ID = g.base + MaxOperations + int(g.dropped.Add(1)-1)
	return op
}

// AddFault records f with the next fault ID and returns it with that ID
// set. Past MaxFaults the ID is still assigned but the fault is not
// stored.
func (h *History) AddFault(f inventory.Fault) inventory.Fault {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastFault++
	f.ID = h.lastFault
	f.Regions = append([]string(nil), f.Regions...)
	if len(h.faults) >= MaxFaults {
		h.droppedFts++
		return f
	}
	h.faults = append(h.faults, f)
	return f
}

// scan calls fn for every filled slot from slot from on, in order, and
// returns the slot after the last one it handed to fn. A slot claimed but
// not yet written (an AddOperation in progress) is skipped, unless
// prefix: then the scan stops there, so that a later scan from the
// returned slot sees it.
func (g *opLog) scan(from int, prefix bool, fn func(op *inventory.Operation)) (next int) {
	n := int(min(g.next.Load(), MaxOperations))
	s := from
	for ; s < n; s++ {
		c := g.chunks[s/chunkSize].Load()
		if c == nil || !c.filled[s%chunkSize].Load() {
			if prefix {
				break
			}
			continue
		}
		fn(&c.ops[s%chunkSize])
	}
	return max(from, s)
}

// Scan calls fn for every stored operation, in order, in place: fn must
// not modify or keep what op points to beyond the call (a pass over the
// whole history without copying it).
func (h *History) Scan(fn func(op *inventory.Operation)) { h.current().scan(0, false, fn) }

// View returns a copy of the history for one SKU ("" for every SKU), both
// stores, with every fault (faults belong to no SKU). Slices are never nil,
// so the view encodes as JSON arrays.
func (h *History) View(sku string) View {
	g := h.current()
	v := View{Operations: []inventory.Operation{}, StartedAt: g.started, Start: g.start.Load()}
	if sku == "" { // every operation: one copy, no regrowing (a replay reads them all)
		v.Operations = make([]inventory.Operation, 0, g.recorded())
	}
	v.DroppedOperations = int(g.dropped.Load())
	g.scan(0, false, func(op *inventory.Operation) {
		if sku == "" || op.SKU == sku {
			v.Operations = append(v.Operations, *op)
		}
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	v.Faults = make([]inventory.Fault, 0, len(h.faults))
	for _, f := range h.faults {
		f.Regions = append([]string(nil), f.Regions...)
		v.Faults = append(v.Faults, f)
	}
	v.DroppedFaults = h.droppedFts
	return v
}

// Operations returns a copy of the operations on one store and SKU ("" for
// every SKU), in the order they were added — the input Check expects.
func (h *History) Operations(store inventory.Store, sku string) []inventory.Operation {
	var out []inventory.Operation
	h.current().scan(0, false, func(op *inventory.Operation) {
		if op.Store == store && (sku == "" || op.SKU == sku) {
			out = append(out, *op)
		}
	})
	return out
}

// Select returns a copy of the operations on one store and SKU ("" for
// every SKU) for which keep is true, in the order they were added.
func (h *History) Select(store inventory.Store, sku string, keep func(op *inventory.Operation) bool) []inventory.Operation {
	var out []inventory.Operation
	h.current().scan(0, false, func(op *inventory.Operation) {
		if op.Store == store && (sku == "" || op.SKU == sku) && keep(op) {
			out = append(out, *op)
		}
	})
	return out
}

// Cursor marks how far a reader of Since has read.
type Cursor struct {
	log  *opLog
	slot int
}

// Since returns the operations recorded after cur (all of them for the
// zero cursor, or when a Clear came in between: fresh reports whether that
// happened) and the cursor to pass next time. It copies only what is new
// and takes no lock.
func (h *History) Since(cur Cursor) (ops []inventory.Operation, next Cursor, fresh bool) {
	g := h.current()
	if cur.log != g {
		cur, fresh = Cursor{log: g}, true
	}
	cur.slot = g.scan(cur.slot, true, func(op *inventory.Operation) { ops = append(ops, *op) })
	return ops, cur, fresh
}

// SinceShared is Since without the copies: pointers to the history's own
// slots, which are written once before they are marked filled and never
// change after (a Clear starts a new log; the old one stays as it was).
// The caller must not modify what they point to.
func (h *History) SinceShared(cur Cursor) (ops []*inventory.Operation, next Cursor, fresh bool) {
	g := h.current()
	if cur.log != g {
		cur, fresh = Cursor{log: g}, true
	}
	cur.slot = g.scan(cur.slot, true, func(op *inventory.Operation) { ops = append(ops, op) })
	return ops, cur, fresh
}

// Dropped reports how many operations and faults were not stored because
// the history was full, since the last Clear.
func (h *History) Dropped() (operations, faults int) {
	ops := int(h.current().dropped.Load())
	h.mu.Lock()
	defer h.mu.Unlock()
	return ops, h.droppedFts
}

// Clear forgets every operation and fault. IDs keep counting from where
// they were.
func (h *History) Clear() {
	h.current()
	h.clearMu.Lock()
	old := h.log.Load()
	n := min(old.next.Swap(sealed), MaxOperations) // retire the log; late claims retry on the new one
	next := old.base + int(n)
	if d := old.dropped.Load(); d > 0 {
		next = old.base + MaxOperations + int(d) // after the IDs drop gave
	}
	h.log.Store(&opLog{base: next, started: time.Now()})
	h.clearMu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = nil
	h.droppedFts = 0
}

// View is what GET /api/history answers.
type View struct {
	Operations []inventory.Operation `json:"operations"`
	Faults     []inventory.Fault     `json:"faults"`

	// For replays (lab's MomentAt): when the History started (the last
	// reset, or the lab's start), the network then (SetStart), and what
	// its caps left out since. Not part of GET /api/history.
	StartedAt         time.Time           `json:"-"`
	Start             *inventory.FaultNet `json:"-"`
	DroppedOperations int                 `json:"-"`
	DroppedFaults     int                 `json:"-"`
}
