package lab

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHistoryRecordsAndFilters(t *testing.T) {
	var h History
	t0 := time.Unix(1000, 0)
	a := h.AddOperation(Operation{Store: Consensus, SKU: "A", Op: OpStock, Qty: 1, Call: t0})
	b := h.AddOperation(Operation{Store: Replicated, SKU: "A", Op: OpBuy, Qty: 1})
	c := h.AddOperation(Operation{Store: Consensus, SKU: "B", Op: OpRead})
	f := h.AddFault(Fault{Kind: FaultCut, Regions: []string{"us-east-1", "eu-west-1"}})
	if a.ID != 1 || b.ID != 2 || c.ID != 3 || f.ID != 1 {
		t.Fatalf("ids = %d,%d,%d fault %d; want 1,2,3 fault 1", a.ID, b.ID, c.ID, f.ID)
	}
	if v := h.View("A"); len(v.Operations) != 2 || v.Operations[0].ID != 1 || v.Operations[1].ID != 2 || len(v.Faults) != 1 {
		t.Errorf("View(A) = %+v", v)
	}
	if v := h.View(""); len(v.Operations) != 3 {
		t.Errorf("View(\"\") has %d operations, want 3", len(v.Operations))
	}
	if ops := h.Operations(Consensus, "A"); len(ops) != 1 || ops[0].ID != 1 || !ops[0].Call.Equal(t0) {
		t.Errorf("Operations(consensus, A) = %+v", ops)
	}
	if ops := h.Operations(Consensus, ""); len(ops) != 2 {
		t.Errorf("Operations(consensus, \"\") has %d, want 2", len(ops))
	}
	// Views are copies.
	v := h.View("")
	v.Operations[0].Qty = 99
	v.Faults[0].Regions[0] = "changed"
	if w := h.View(""); w.Operations[0].Qty != 1 || w.Faults[0].Regions[0] != "us-east-1" {
		t.Errorf("a view aliases the history: %+v", w)
	}

	h.Clear()
	empty := h.View("")
	if len(empty.Operations) != 0 || len(empty.Faults) != 0 {
		t.Fatalf("after Clear: %+v", empty)
	}
	js, _ := json.Marshal(empty)
	if !strings.Contains(string(js), `"operations":[]`) || !strings.Contains(string(js), `"faults":[]`) {
		t.Errorf("empty view encodes as %s, want empty arrays", js)
	}
	if d := h.AddOperation(Operation{}); d.ID != 4 {
		t.Errorf("ID after Clear = %d, want 4 (never reused)", d.ID)
	}
}

func TestHistoryCap(t *testing.T) {
	var h History
	for range MaxHistoryOperations + 5 {
		h.AddOperation(Operation{SKU: "A", Store: Consensus})
	}
	last := h.AddOperation(Operation{SKU: "A", Store: Consensus})
	if last.ID != MaxHistoryOperations+6 {
		t.Errorf("ID past the cap = %d", last.ID)
	}
	if n := len(h.Operations(Consensus, "A")); n != MaxHistoryOperations {
		t.Errorf("stored %d operations, want the cap %d", n, MaxHistoryOperations)
	}
	if ops, _ := h.Dropped(); ops != 6 {
		t.Errorf("Dropped = %d, want 6", ops)
	}
	h.Clear()
	if ops, _ := h.Dropped(); ops != 0 {
		t.Errorf("Dropped after Clear = %d", ops)
	}
}

func TestHistoryConcurrent(t *testing.T) {
	h := NewHistory()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				h.AddOperation(Operation{SKU: "A", Store: Replicated})
				h.AddFault(Fault{Kind: FaultHeal})
				h.View("A")
			}
		})
	}
	wg.Wait()
	v := h.View("A")
	seen := map[int]bool{}
	for _, op := range v.Operations {
		seen[op.ID] = true
	}
	if len(v.Operations) != 1600 || len(seen) != 1600 || len(v.Faults) != 1600 {
		t.Errorf("got %d operations (%d distinct ids), %d faults; want 1600 each", len(v.Operations), len(seen), len(v.Faults))
	}
}
