package lab

import "sync"

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
type History struct {
	mu         sync.Mutex
	ops        []Operation
	faults     []Fault
	lastOpID   int
	lastFault  int
	droppedOps int
	droppedFts int
}

// NewHistory returns an empty History.
func NewHistory() *History { return &History{} }

// AddOperation records op with the next operation ID and returns it with
// that ID set. Past MaxHistoryOperations the ID is still assigned but the
// operation is not stored.
func (h *History) AddOperation(op Operation) Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastOpID++
	op.ID = h.lastOpID
	if len(h.ops) >= MaxHistoryOperations {
		h.droppedOps++
		return op
	}
	h.ops = append(h.ops, op)
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

// View returns a copy of the history for one SKU ("" for every SKU), both
// stores, with every fault (faults belong to no SKU). Slices are never nil,
// so the view encodes as JSON arrays.
func (h *History) View(sku string) HistoryView {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := HistoryView{Operations: []Operation{}, Faults: make([]Fault, 0, len(h.faults))}
	for _, op := range h.ops {
		if sku == "" || op.SKU == sku {
			v.Operations = append(v.Operations, op)
		}
	}
	for _, f := range h.faults {
		f.Regions = append([]string(nil), f.Regions...)
		v.Faults = append(v.Faults, f)
	}
	return v
}

// Operations returns a copy of the operations on one store and SKU ("" for
// every SKU), in the order they were added — the input Check expects.
func (h *History) Operations(store Store, sku string) []Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Operation
	for _, op := range h.ops {
		if op.Store == store && (sku == "" || op.SKU == sku) {
			out = append(out, op)
		}
	}
	return out
}

// Dropped reports how many operations and faults were not stored because
// the history was full, since the last Clear.
func (h *History) Dropped() (operations, faults int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.droppedOps, h.droppedFts
}

// Clear forgets every operation and fault. IDs keep counting from where
// they were.
func (h *History) Clear() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops, h.faults = nil, nil
	h.droppedOps, h.droppedFts = 0, 0
}
