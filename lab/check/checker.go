package check

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"caplab/lab/inventory"
)

// VisualizeTimeout bounds the linearizability search Visualize runs before
// drawing what it found.
const VisualizeTimeout = 10 * time.Second

// checkInput is what an operation asked for, as the inventory model sees it.
type checkInput struct {
	SKU    string
	Region string
	Op     inventory.Op
	Qty    int // buy: units; stock: quantity set

	// Indeterminate operations only: their class (same SKU, op and Qty,
	// hence the same effect) and their rank in it by call time.
	Class, Rank int
}

// checkOutput is what an operation answered. Unknown marks an operation
// answered "unavailable" that may or may not have applied.
type checkOutput struct {
	Kind     inventory.Kind // OK or SoldOut; ignored when Unknown
	Unknown  bool
	Quantity int // buy: units left after; read: value read
}

// checkState is the model's state: the quantity (0 also means "never
// stocked") and, per class of indeterminate operations, how many of the
// class have been linearized.
type checkState struct {
	quantity int
	taken    []int // indexed by checkInput.Class; never mutated
}

// checkedOp is one Operation chosen for the linearizability check, with its
// times in nanoseconds since the earliest call.
type checkedOp struct {
	op           inventory.Operation
	call, ret    int64
	indefinitely bool // may have applied at any time after call
	client       int
	class, rank  int // indefinitely only; see checkInput
}

// inventoryModel is the sequential specification of one SKU's stock, for
// histories with the given number of classes of indeterminate operations:
//
//   - stock(N) sets the quantity to N;
//   - buy(q) answered ok needs quantity ≥ q and leaves quantity−q, which
//     must be the "left" it reported; answered sold_out needs quantity < q
//     and changes nothing;
//   - an unknown (unavailable) stock or buy is accepted in any state: it
//     applies as above if it can, else it is a no-op;
//   - read must return the quantity.
//
// Indeterminate operations of one class have the same effect and never
// return, so any linearization can swap them into call order: the model
// only accepts them in that order (rank). That keeps the search linear
// rather than exponential in the number of unavailable buys — a minority
// region clicking "buy" twenty times during a partition — and loses no
// linearization. Operations are partitioned by SKU.
func inventoryModel(classes int) porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			bySKU := map[string][]porcupine.Operation{}
			var order []string
			for _, o := range history {
				sku := o.Input.(checkInput).SKU
				if _, ok := bySKU[sku]; !ok {
					order = append(order, sku)
				}
				bySKU[sku] = append(bySKU[sku], o)
			}
			out := make([][]porcupine.Operation, 0, len(order))
			for _, sku := range order {
				out = append(out, bySKU[sku])
			}
			return out
		},
		Init: func() any { return checkState{taken: make([]int, classes)} },
		Step: func(state, input, output any) (bool, any) {
			st, in, out := state.(checkState), input.(checkInput), output.(checkOutput)
			s := st.quantity
			if out.Unknown {
				if st.taken[in.Class] != in.Rank {
					return false, st
				}
				taken := slices.Clone(st.taken)
				taken[in.Class]++
				switch {
				case in.Op == inventory.OpStock:
					s = in.Qty
				case in.Op == inventory.OpBuy && s >= in.Qty:
					s -= in.Qty
				}
				return true, checkState{quantity: s, taken: taken}
			}
			switch in.Op {
			case inventory.OpStock:
				return true, checkState{quantity: in.Qty, taken: st.taken}
			case inventory.OpBuy:
				switch out.Kind {
				case inventory.SoldOut:
					return s < in.Qty, st
				case inventory.OK:
					return s >= in.Qty && s-in.Qty == out.Quantity, checkState{quantity: s - in.Qty, taken: st.taken}
				}
			case inventory.OpRead:
				return out.Quantity == s, st
			}
			return false, st
		},
		Equal: func(a, b any) bool {
			x, y := a.(checkState), b.(checkState)
			return x.quantity == y.quantity && slices.Equal(x.taken, y.taken)
		},
		Hash: func(state any) uint64 {
			st := state.(checkState)
			h := uint64(st.quantity)
			for _, n := range st.taken {
				h = h*1_000_003 + uint64(n)
			}
			return h
		},
		DescribeOperation: func(input, output any) string {
			return describeCheckOp(input.(checkInput), output.(checkOutput))
		},
		DescribeState: func(state any) string {
			return fmt.Sprintf("%d in stock", state.(checkState).quantity)
		},
		DescribeOperationMetadata: func(info any) string {
			s, _ := info.(string)
			return s
		},
	}
}

// rankIndeterminate sorts the indeterminate operations into classes of the
// same effect (SKU, op, Qty) and ranks each class by call time. It returns
// the number of classes.
func rankIndeterminate(ops []checkedOp) int {
	type key struct {
		sku string
		op  inventory.Op
		qty int
	}
	classes := map[key]int{}
	var members [][]int
	for i, c := range ops {
		if !c.indefinitely {
			continue
		}
		k := key{c.op.SKU, c.op.Op, c.op.Qty}
		id, ok := classes[k]
		if !ok {
			id = len(members)
			classes[k] = id
			members = append(members, nil)
		}
		ops[i].class = id
		members[id] = append(members[id], i)
	}
	for _, m := range members {
		slices.SortStableFunc(m, func(a, b int) int {
			return cmp.Or(cmp.Compare(ops[a].call, ops[b].call), cmp.Compare(ops[a].op.ID, ops[b].op.ID))
		})
		for rank, i := range m {
			ops[i].rank = rank
		}
	}
	return len(members)
}

// describeCheckOp reads like "us-east-1 buy 1 → ok (0 left)".
func describeCheckOp(in checkInput, out checkOutput) string {
	var b strings.Builder
	b.WriteString(in.Region)
	b.WriteByte(' ')
	b.WriteString(string(in.Op))
	if in.Op != inventory.OpRead {
		fmt.Fprintf(&b, " %d", in.Qty)
	}
	b.WriteString(" → ")
	switch {
	case out.Unknown:
		b.WriteString("unavailable (may have applied)")
	case in.Op == inventory.OpRead:
		fmt.Fprintf(&b, "%d", out.Quantity)
	case in.Op == inventory.OpBuy && out.Kind == inventory.OK:
		fmt.Fprintf(&b, "ok (%d left)", out.Quantity)
	case out.Kind == inventory.SoldOut:
		b.WriteString("sold out")
	default:
		b.WriteString(string(out.Kind))
	}
	return b.String()
}

// entersCheck sorts one operation into the linearizability check: whether it
// enters, and whether it is indeterminate (may have applied, never
// returned as far as the check is concerned).
func entersCheck(op inventory.Operation) (enters, indeterminate bool) {
	switch op.Op {
	case inventory.OpBuy:
		switch op.Outcome {
		case inventory.OK, inventory.SoldOut:
			return true, false
		case inventory.Unavailable:
			return true, true
		}
	case inventory.OpStock:
		switch op.Outcome {
		case inventory.OK:
			return true, false
		case inventory.Unavailable:
			return true, true
		}
	case inventory.OpRead:
		return op.Outcome == inventory.OK && !op.Consistency.MayBeStale(), false
	}
	return false, false
}

// prepareCheck selects the operations of store and sku ("" = every SKU)
// that enter the check, puts their times on one nanosecond axis starting at
// the earliest call among ops of store and sku, and assigns client ids.
// It also returns the operations left out, for annotations, and the origin.
func prepareCheck(ops []inventory.Operation, store inventory.Store, sku string) (in []checkedOp, out []inventory.Operation, origin time.Time) {
	var mine []inventory.Operation
	for _, op := range ops {
		if op.Store == store && (sku == "" || op.SKU == sku) {
			mine = append(mine, op)
		}
	}
	if len(mine) == 0 {
		return nil, nil, time.Time{}
	}
	origin = mine[0].Call
	for _, op := range mine[1:] {
		if op.Call.Before(origin) {
			origin = op.Call
		}
	}
	var latest int64
	for _, op := range mine {
		enters, indeterminate := entersCheck(op)
		if !enters {
			out = append(out, op)
			continue
		}
		c := checkedOp{op: op, call: op.Call.Sub(origin).Nanoseconds(), indefinitely: indeterminate}
		c.ret = max(c.call, op.Return.Sub(origin).Nanoseconds())
		latest = max(latest, c.ret)
		in = append(in, c)
	}
	// "+infinity": a return after every other event of this history.
	for i := range in {
		if in[i].indefinitely {
			in[i].ret = latest + 1
		}
	}
	assignClients(in)
	return in, out, origin
}

// assignClients gives every operation a porcupine client id such that no
// two operations of one client overlap: operations are taken in call order
// and get the lowest id whose previous operation returned strictly before
// the call (porcupine's intervals are closed). An indeterminate operation
// never returns, so its id is retired. The result depends only on times,
// never on Operation.Client.
func assignClients(ops []checkedOp) {
	slices.SortStableFunc(ops, func(a, b checkedOp) int {
		return cmp.Or(cmp.Compare(a.call, b.call), cmp.Compare(a.ret, b.ret), cmp.Compare(a.op.ID, b.op.ID))
	})
	var free clientIDHeap
	var busy busyClientHeap
	next := 0
	for i := range ops {
		for len(busy) > 0 && busy[0].ret < ops[i].call {
			heap.Push(&free, heap.Pop(&busy).(busyClient).id)
		}
		id := next
		if len(free) > 0 {
			id = heap.Pop(&free).(int)
		} else {
			next++
		}
		ops[i].client = id
		if !ops[i].indefinitely {
			heap.Push(&busy, busyClient{ret: ops[i].ret, id: id})
		}
	}
}

type clientIDHeap []int

func (h clientIDHeap) Len() int           { return len(h) }
func (h clientIDHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h clientIDHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *clientIDHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *clientIDHeap) Pop() any          { old := *h; x := old[len(old)-1]; *h = old[:len(old)-1]; return x }

type busyClient struct {
	ret int64
	id  int
}

type busyClientHeap []busyClient

func (h busyClientHeap) Len() int           { return len(h) }
func (h busyClientHeap) Less(i, j int) bool { return h[i].ret < h[j].ret }
func (h busyClientHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *busyClientHeap) Push(x any)        { *h = append(*h, x.(busyClient)) }
func (h *busyClientHeap) Pop() any          { old := *h; x := old[len(old)-1]; *h = old[:len(old)-1]; return x }

func toPorcupine(in []checkedOp) []porcupine.Operation {
	pops := make([]porcupine.Operation, len(in))
	for i, c := range in {
		out := checkOutput{Kind: c.op.Outcome, Unknown: c.indefinitely, Quantity: c.op.Quantity}
		meta := fmt.Sprintf("operation %d, %s store", c.op.ID, c.op.Store)
		if c.indefinitely {
			meta += "; answered unavailable, so it may have applied at any time after its call"
		}
		pops[i] = porcupine.Operation{
			ClientId: c.client,
			Input:    checkInput{SKU: c.op.SKU, Region: c.op.Region, Op: c.op.Op, Qty: c.op.Qty, Class: c.class, Rank: c.rank},
			Output:   out,
			Call:     c.call,
			Return:   c.ret,
			Metadata: meta,
		}
	}
	return pops
}

// Operations judges the operations of one store on one SKU ("" checks every
// SKU, each on its own) and returns the verdict with the information
// Visualize-style callers can draw. A timeout of 0 means no limit; when the
// search runs out of time the result is not linearizable and TimedOut.
//
// Which operations enter the linearizability check:
//   - buys answered ok or sold_out, stocks answered ok, reads answered ok
//     unless their consistency is serializable or cached (those may be
//     stale by contract and are only counted in StaleReads);
//   - buys and stocks answered unavailable are indeterminate: they enter
//     with a return after every other event and an output the model
//     accepts whether or not they applied;
//   - unavailable reads and fail_fast, overloaded and conflict operations
//     changed nothing and are left out.
//
// Result.Operations counts the operations that entered the check.
//
// The counts cover the window since the last restock, per SKU. Let S be
// the stock answered ok with the latest call time (ties: the one added
// last). InitialUnits is S's quantity, and every other count considers only
// the operations called strictly after S returned — those follow S in every
// possible order of events, so a buy racing the restock is never charged to
// it. With no ok stock, InitialUnits is 0 and every operation counts. A
// restock answered unavailable is no boundary (it may not have applied; it
// counts as Indeterminate), and restocks racing each other make S
// ambiguous: in both cases trust Linearizable over Oversold.
//   - SoldUnits: units of buys answered ok;
//   - Oversold: max(0, SoldUnits − InitialUnits);
//   - Indeterminate: buys and stocks answered unavailable;
//   - StaleReads: reads answered ok (any consistency) whose Version is
//     older than the Version of some stock or buy answered ok (anywhere in
//     the history) that returned strictly before the read was called;
//   - LostUpdates: buys answered ok grouped by their non-zero BaseVersion;
//     each group of k buys adds k−1 (all of them read the same count, so
//     all but one overwrote another's write) — except that buys one group
//     commit carried (the same Batch.Commit) count as one commit: per base,
//     the buys beyond the distinct counts left by its largest commit are
//     lost (batch.go).
//
// With sku "" the counts are the sums over SKUs.
func Operations(ops []inventory.Operation, store inventory.Store, sku string, timeout time.Duration) (Result, porcupine.LinearizationInfo) {
	in, _, _ := prepareCheck(ops, store, sku)
	model := inventoryModel(rankIndeterminate(in))
	pops := toPorcupine(in)
	res, info := porcupine.CheckOperationsVerbose(model, pops, timeout)
	r := Result{
		Store:        store,
		SKU:          sku,
		Linearizable: res == porcupine.Ok,
		TimedOut:     res == porcupine.Unknown,
		Operations:   len(in),
	}
	if res == porcupine.Illegal {
		r.Unplaced = unplacedOp(in, pops, model, info, sku)
	}
	countWindow(&r, ops, store, sku)
	if r.Linearizable {
		// One order of events explains every answer, and the model never
		// sells what is not in stock: nothing was oversold. A positive
		// count here comes from restocks the window cannot place (one
		// answered unavailable that applied, or restocks that overlap).
		r.Oversold = 0
	}
	r.Explanation = explainCheck(r)
	return r, info
}

// countWindow fills the counts of r per the rules documented on Check.
func countWindow(r *Result, ops []inventory.Operation, store inventory.Store, sku string) {
	bySKU := map[string][]inventory.Operation{}
	for _, op := range ops {
		if op.Store == store && (sku == "" || op.SKU == sku) {
			bySKU[op.SKU] = append(bySKU[op.SKU], op)
		}
	}
	for _, mine := range bySKU {
		restock := -1
		for i, op := range mine {
			if op.Op == inventory.OpStock && op.Outcome == inventory.OK && (restock < 0 || !op.Call.Before(mine[restock].Call)) {
				restock = i
			}
		}
		inWindow := func(i int) bool {
			return restock < 0 || mine[i].Call.After(mine[restock].Return)
		}
		if restock >= 0 {
			r.InitialUnits += mine[restock].Qty
		}

		// Writes answered ok, by return time, with the newest version
		// returned so far: newestBy[i] is the max Version of writes[:i+1].
		var writes []inventory.Operation
		for _, op := range mine {
			if op.Outcome == inventory.OK && (op.Op == inventory.OpBuy || op.Op == inventory.OpStock) {
				writes = append(writes, op)
			}
		}
		slices.SortFunc(writes, func(a, b inventory.Operation) int { return a.Return.Compare(b.Return) })
		newestBy := make([]inventory.Version, len(writes))
		for i, w := range writes {
			newestBy[i] = w.Version
			if i > 0 && w.Version.Less(newestBy[i-1]) {
				newestBy[i] = newestBy[i-1]
			}
		}

		sold := 0
		bases := baseGroups{}
		for i, op := range mine {
			if !inWindow(i) {
				continue
			}
			switch {
			case op.Op == inventory.OpBuy && op.Outcome == inventory.OK:
				sold += op.Qty
				bases.add(&op)
			case (op.Op == inventory.OpBuy || op.Op == inventory.OpStock) && op.Outcome == inventory.Unavailable:
				r.Indeterminate++
			case op.Op == inventory.OpRead && op.Outcome == inventory.OK:
				// writes[:n] returned strictly before the read's call.
				n, _ := slices.BinarySearchFunc(writes, op.Call, func(w inventory.Operation, t time.Time) int {
					if w.Return.Before(t) {
						return -1
					}
					return 1
				})
				if n > 0 && op.Version.Less(newestBy[n-1]) {
					r.StaleReads++
				}
			}
		}
		r.LostUpdates += bases.lost()
		r.SoldUnits += sold
		if restock >= 0 {
			r.Oversold += max(0, sold-mine[restock].Qty)
		} else {
			r.Oversold += sold
		}
	}
}

// Timeout bounds the checker's linearizability search.
const Timeout = 10 * time.Second
