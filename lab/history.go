package lab

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// History caps. Past a cap, further records are not stored (History.Dropped
// counts them) until Clear: the lab keeps serving, and the checker keeps
// judging the operations that were recorded first.
const (
	MaxHistoryOperations = 100_000
	MaxHistoryFaults     = 10_000
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
// auditor reads only what is new since its last look (Since). Faults are
// rare and keep a plain mutex.
type History struct {
	log atomic.Pointer[opLog] // the operations since the last Clear

	clearMu    sync.Mutex // serializes Clear (and the lazy first log)
	mu         sync.Mutex // faults
	faults     []Fault
	lastFault  int
	droppedFts int
}

// opChunk holds chunkSize consecutive slots of an opLog.
const chunkSize = 1024

type opChunk struct {
	ops    [chunkSize]Operation
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
	// (reserve): the lab decides at the call whether an operation will be
	// kept, so that one past the cap is known as unrecorded before it can
	// reach a store (gaps.go).
	reserved atomic.Int64
	chunks   [MaxHistoryOperations/chunkSize + 1]atomic.Pointer[opChunk]
}

// sealed marks a retired log: claims on it are retried on the new one.
const sealed = int64(1) << 62

// historyOpBytes is what one recorded operation takes in the history:
// its slot (the Operation value and its filled flag) in a chunk. Strings
// an operation holds (region, SKU, …) are shared with the request.
const historyOpBytes = int64(unsafe.Sizeof(opChunk{}) / chunkSize)

// recorded is the number of operations stored in g.
func (g *opLog) recorded() int { return int(min(g.next.Load()&^sealed, MaxHistoryOperations)) }

// startedAt is when the history began: the lab's start or its last Clear.
func (h *History) startedAt() time.Time { return h.current().started }

// NewHistory returns an empty History.
func NewHistory() *History { return &History{} }

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

// reserve promises the operation being called a slot: false once
// MaxHistoryOperations are promised since the last Clear (the operation
// will not be stored: drop it at its return).
func (h *History) reserve() bool {
	return h.current().reserved.Add(1) <= MaxHistoryOperations
}

// AddOperation records op with the next operation ID and returns it with
// that ID set. Past MaxHistoryOperations the ID is still assigned but the
// operation is not stored.
func (h *History) AddOperation(op Operation) Operation {
	if !h.reserve() {
		return h.drop(op)
	}
	op, _ = h.addOperation(op)
	return op
}

// addOperation stores op, which reserve promised a slot, with the next
// ID, and says whether it was stored (a slot is always there unless
// AddOperation past the cap raced it).
func (h *History) addOperation(op Operation) (Operation, bool) {
	for {
		g := h.current()
		s := g.next.Add(1) - 1
		if s >= sealed { // Clear is swapping logs: take a slot in the new one
			runtime.Gosched()
			continue
		}
		if s >= MaxHistoryOperations {
			return h.drop(op), false
		}
		op.ID = g.base + int(s)
		c := g.chunk(int(s) / chunkSize)
		c.ops[s%chunkSize] = op
		c.filled[s%chunkSize].Store(true)
		return op, true
	}
}

// drop gives op an ID after every stored one without storing it, and
// counts it in Dropped.
func (h *History) drop(op Operation) Operation {
	h.current()
	h.clearMu.Lock() // against Clear, which numbers the next log after these
	defer h.clearMu.Unlock()
	g := h.log.Load()
	op.ID = g.base + MaxHistoryOperations + int(g.dropped.Add(1)-1)
	return op
}

// AddFault records f with the next fault ID and returns it with that ID
// set. Past MaxHistoryFaults the ID is still assigned but the fault is not
// stored.
func (h *History) AddFault(f Fault) Fault {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastFault++
	f.ID = h.lastFault
	f.Regions = append([]string(nil), f.Regions...)
	if len(h.faults) >= MaxHistoryFaults {
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
func (g *opLog) scan(from int, prefix bool, fn func(op *Operation)) (next int) {
	n := int(min(g.next.Load(), MaxHistoryOperations))
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

// View returns a copy of the history for one SKU ("" for every SKU), both
// stores, with every fault (faults belong to no SKU). Slices are never nil,
// so the view encodes as JSON arrays.
func (h *History) View(sku string) HistoryView {
	v := HistoryView{Operations: []Operation{}}
	g := h.current()
	if sku == "" { // every operation: one copy, no regrowing (a replay reads them all)
		v.Operations = make([]Operation, 0, g.recorded())
	}
	g.scan(0, false, func(op *Operation) {
		if sku == "" || op.SKU == sku {
			v.Operations = append(v.Operations, *op)
		}
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	v.Faults = make([]Fault, 0, len(h.faults))
	for _, f := range h.faults {
		f.Regions = append([]string(nil), f.Regions...)
		v.Faults = append(v.Faults, f)
	}
	return v
}

// Operations returns a copy of the operations on one store and SKU ("" for
// every SKU), in the order they were added — the input Check expects.
func (h *History) Operations(store Store, sku string) []Operation {
	var out []Operation
	h.current().scan(0, false, func(op *Operation) {
		if op.Store == store && (sku == "" || op.SKU == sku) {
			out = append(out, *op)
		}
	})
	return out
}

// Select returns a copy of the operations on one store and SKU ("" for
// every SKU) for which keep is true, in the order they were added.
func (h *History) Select(store Store, sku string, keep func(op *Operation) bool) []Operation {
	var out []Operation
	h.current().scan(0, false, func(op *Operation) {
		if op.Store == store && (sku == "" || op.SKU == sku) && keep(op) {
			out = append(out, *op)
		}
	})
	return out
}

// HistoryCursor marks how far a reader of Since has read.
type HistoryCursor struct {
	log  *opLog
	slot int
}

// Since returns the operations recorded after cur (all of them for the
// zero cursor, or when a Clear came in between: fresh reports whether that
// happened) and the cursor to pass next time. It copies only what is new
// and takes no lock.
func (h *History) Since(cur HistoryCursor) (ops []Operation, next HistoryCursor, fresh bool) {
	g := h.current()
	if cur.log != g {
		cur, fresh = HistoryCursor{log: g}, true
	}
	cur.slot = g.scan(cur.slot, true, func(op *Operation) { ops = append(ops, *op) })
	return ops, cur, fresh
}

// sinceRefs is Since without the copies: pointers to the history's own
// slots, which are written once before they are marked filled and never
// change after (a Clear starts a new log; the old one stays as it was).
// The caller must not modify what they point to.
func (h *History) sinceRefs(cur HistoryCursor) (ops []*Operation, next HistoryCursor, fresh bool) {
	g := h.current()
	if cur.log != g {
		cur, fresh = HistoryCursor{log: g}, true
	}
	cur.slot = g.scan(cur.slot, true, func(op *Operation) { ops = append(ops, op) })
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
	n := min(old.next.Swap(sealed), MaxHistoryOperations) // retire the log; late claims retry on the new one
	next := old.base + int(n)
	if d := old.dropped.Load(); d > 0 {
		next = old.base + MaxHistoryOperations + int(d) // after the IDs drop gave
	}
	h.log.Store(&opLog{base: next, started: time.Now()})
	h.clearMu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = nil
	h.droppedFts = 0
}
