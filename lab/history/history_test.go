package history_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"caplab/lab/history"
	"caplab/lab/inventory"
)

func TestHistoryRecordsAndFilters(t *testing.T) {
	var h history.History
	t0 := time.Unix(1000, 0)
	a := h.AddOperation(inventory.Operation{Store: inventory.Consensus, SKU: "A", Op: inventory.OpStock, Qty: 1, Call: t0})
	b := h.AddOperation(inventory.Operation{Store: inventory.Replicated, SKU: "A", Op: inventory.OpBuy, Qty: 1})
	c := h.AddOperation(inventory.Operation{Store: inventory.Consensus, SKU: "B", Op: inventory.OpRead})
	f := h.AddFault(inventory.Fault{Kind: inventory.FaultCut, Regions: []string{"us-east-1", "eu-west-1"}})
	if a.ID != 1 || b.ID != 2 || c.ID != 3 || f.ID != 1 {
		t.Fatalf("ids = %d,%d,%d fault %d; want 1,2,3 fault 1", a.ID, b.ID, c.ID, f.ID)
	}
	if v := h.View("A"); len(v.Operations) != 2 || v.Operations[0].ID != 1 || v.Operations[1].ID != 2 || len(v.Faults) != 1 {
		t.Errorf("View(A) = %+v", v)
	}
	if v := h.View(""); len(v.Operations) != 3 {
		t.Errorf("View(\"\") has %d operations, want 3", len(v.Operations))
	}
	if ops := h.Operations(inventory.Consensus, "A"); len(ops) != 1 || ops[0].ID != 1 || !ops[0].Call.Equal(t0) {
		t.Errorf("Operations(consensus, A) = %+v", ops)
	}
	if ops := h.Operations(inventory.Consensus, ""); len(ops) != 2 {
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
	if d := h.AddOperation(inventory.Operation{}); d.ID != 4 {
		t.Errorf("ID after Clear = %d, want 4 (never reused)", d.ID)
	}
}

func TestHistoryCap(t *testing.T) {
	var h history.History
	for range history.MaxOperations + 5 {
		h.AddOperation(inventory.Operation{SKU: "A", Store: inventory.Consensus})
	}
	last := h.AddOperation(inventory.Operation{SKU: "A", Store: inventory.Consensus})
	if last.ID != history.MaxOperations+6 {
		t.Errorf("ID past the cap = %d", last.ID)
	}
	if n := len(h.Operations(inventory.Consensus, "A")); n != history.MaxOperations {
		t.Errorf("stored %d operations, want the cap %d", n, history.MaxOperations)
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
	h := history.New()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				h.AddOperation(inventory.Operation{SKU: "A", Store: inventory.Replicated})
				h.AddFault(inventory.Fault{Kind: inventory.FaultHeal})
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

// TestHistoryLockFreeAddsAndClear: concurrent adds get distinct IDs, are all seen by
// View and by a reader of Since (each exactly once), and a Clear in the
// middle neither loses IDs to reuse nor deadlocks.
func TestHistoryLockFreeAddsAndClear(t *testing.T) {
	var h history.History
	const writers, each = 8, 3000
	var wg sync.WaitGroup
	var seen sync.Map
	var dup atomic.Int64
	stop := make(chan struct{})
	var read []inventory.Operation
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		var cur history.Cursor
		for {
			ops, next, _ := h.Since(cur)
			cur = next
			read = append(read, ops...)
			select {
			case <-stop:
				ops, _, _ := h.Since(cur)
				read = append(read, ops...)
				return
			default:
			}
		}
	}()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				op := h.AddOperation(inventory.Operation{Region: strconv.Itoa(w), Qty: i})
				if _, loaded := seen.LoadOrStore(op.ID, true); loaded {
					dup.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-readerDone
	if dup.Load() > 0 {
		t.Fatalf("%d IDs given twice", dup.Load())
	}
	if n := len(h.View("").Operations); n != writers*each {
		t.Fatalf("View has %d operations, want %d", n, writers*each)
	}
	ids := map[int]bool{}
	for _, op := range read {
		if ids[op.ID] {
			t.Fatalf("Since handed operation %d twice", op.ID)
		}
		ids[op.ID] = true
	}
	if len(ids) != writers*each {
		t.Fatalf("Since saw %d operations, want %d", len(ids), writers*each)
	}

	// Clear while writers run: afterwards IDs keep counting, nothing is
	// given twice, and the history holds only what came after.
	var more sync.WaitGroup
	for range 4 {
		more.Add(1)
		go func() {
			defer more.Done()
			for range 2000 {
				op := h.AddOperation(inventory.Operation{})
				if _, loaded := seen.LoadOrStore(op.ID, true); loaded {
					dup.Add(1)
				}
			}
		}()
	}
	h.Clear()
	more.Wait()
	if dup.Load() > 0 {
		t.Fatalf("%d IDs given twice across a Clear", dup.Load())
	}
	for _, op := range h.View("").Operations {
		if op.ID <= writers*each {
			t.Fatalf("operation %d from before the Clear survived it", op.ID)
		}
	}
	if last := h.AddOperation(inventory.Operation{}); last.ID != writers*each+4*2000+1 {
		t.Fatalf("next ID %d, want %d", last.ID, writers*each+4*2000+1)
	}
}
