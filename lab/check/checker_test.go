package check

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"caplab/lab/inventory"
)

var checkEpoch = time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)

// ms is a time checkEpoch + n milliseconds.
func ckMs(n int64) time.Time { return checkEpoch.Add(time.Duration(n) * time.Millisecond) }

func ckVer(n int64) inventory.Version { return inventory.Version{Wall: n} }

type ckOption func(*inventory.Operation)

func ckVersion(n int64) ckOption { return func(o *inventory.Operation) { o.Version = ckVer(n) } }
func ckBase(n int64) ckOption    { return func(o *inventory.Operation) { o.BaseVersion = ckVer(n) } }
func ckRegion(r string) ckOption { return func(o *inventory.Operation) { o.Region = r } }
func ckSKU(s string) ckOption    { return func(o *inventory.Operation) { o.SKU = s } }
func ckConsistency(c inventory.Consistency) ckOption {
	return func(o *inventory.Operation) { o.Consistency = c }
}

// ckOp builds one consensus-store operation on SKU "X" from us-east-1,
// called at call ms and returned at ret ms. qty is the units bought or the
// quantity stocked; quantity is what it answered (left after a buy, value
// of a read).
func ckOp(id int, op inventory.Op, outcome inventory.Kind, qty, quantity int, call, ret int64, opts ...ckOption) inventory.Operation {
	o := inventory.Operation{
		ID: id, Region: "us-east-1", Store: inventory.Consensus, SKU: "X", Op: op, Qty: qty,
		Outcome: outcome, Quantity: quantity, Call: ckMs(call), Return: ckMs(ret),
	}
	if op == inventory.OpRead {
		o.Qty = 0
		o.Consistency = inventory.Linearizable
	}
	for _, f := range opts {
		f(&o)
	}
	return o
}

func TestCheckHandBuilt(t *testing.T) {
	tests := []struct {
		name    string
		ops     []inventory.Operation
		want    Result // Store, SKU and Explanation are not compared here
		explain string // a substring of the explanation
	}{
		{
			name: "sequential ok history",
			ops: []inventory.Operation{
				ckOp(1, inventory.OpStock, inventory.OK, 3, 3, 0, 10, ckVersion(1)),
				ckOp(2, inventory.OpBuy, inventory.OK, 1, 2, 20, 30, ckVersion(2), ckBase(1), ckRegion("ap-southeast-1")),
				ckOp(3, inventory.OpRead, inventory.OK, 0, 2, 40, 50, ckVersion(2)),
				ckOp(4, inventory.OpBuy, inventory.OK, 2, 0, 60, 70, ckVersion(3), ckBase(2)),
				ckOp(5, inventory.OpBuy, inventory.SoldOut, 1, 0, 80, 90, ckVersion(3)),
				ckOp(6, inventory.OpRead, inventory.OK, 0, 0, 100, 110, ckVersion(3), ckRegion("eu-west-1")),
			},
			want:    Result{Linearizable: true, SoldUnits: 3, InitialUnits: 3, Operations: 6},
			explain: "Linearizable: every answer fits one order of events; nothing was oversold.",
		},
		{
			name: "two concurrent ok buys of the last unit",
			ops: []inventory.Operation{
				ckOp(1, inventory.OpStock, inventory.OK, 1, 1, 0, 10, ckVersion(1)),
				ckOp(2, inventory.OpBuy, inventory.OK, 1, 0, 20, 40, ckVersion(2), ckBase(1), ckRegion("us-east-1")),
				ckOp(3, inventory.OpBuy, inventory.OK, 1, 0, 25, 45, ckVersion(3), ckBase(1), ckRegion("ap-southeast-1")),
			},
			want:    Result{SoldUnits: 2, InitialUnits: 1, Oversold: 1, LostUpdates: 1, Operations: 3},
			explain: "Not linearizable: 2 units were sold but only 1 unit stocked — the store sold the same unit twice.",
		},
		{
			name: "stale serializable read",
			ops: []inventory.Operation{
				ckOp(1, inventory.OpStock, inventory.OK, 2, 2, 0, 10, ckVersion(1)),
				ckOp(2, inventory.OpBuy, inventory.OK, 1, 1, 20, 30, ckVersion(2), ckBase(1)),
				ckOp(3, inventory.OpRead, inventory.OK, 0, 2, 40, 50, ckVersion(1), ckConsistency(inventory.Serializable), ckRegion("ap-southeast-1")),
			},
			want:    Result{Linearizable: true, SoldUnits: 1, InitialUnits: 2, StaleReads: 1, Operations: 2},
			explain: "1 serializable read returned an old count",
		},
		{
			name: "stale linearizable read",
			ops: []inventory.Operation{
				ckOp(1, inventory.OpStock, inventory.OK, 2, 2, 0, 10, ckVersion(1)),
				ckOp(2, inventory.OpBuy, inventory.OK, 1, 1, 20, 30, ckVersion(2), ckBase(1)),
				ckOp(3, inventory.OpRead, inventory.OK, 0, 2, 40, 50, ckVersion(1), ckRegion("ap-southeast-1")),
			},
			want:    Result{SoldUnits: 1, InitialUnits: 2, StaleReads: 1, Operations: 3},
			explain: "a stale read",
		},
		{
			name: "read concurrent with a write is not stale",
			ops: []inventory.Operation{
				ckOp(1, inventory.OpStock, inventory.OK, 2, 2, 0, 10, ckVersion(1)),
				ckOp(2, inventory.OpBuy, inventory.OK, 1, 1, 20, 50, ckVersion(2), ckBase(1)),
				ckOp(3, inventory.OpRead, inventory.OK, 0, 2, 30, 40, ckVersion(1)),
			},
			want: Result{Linearizable: true, SoldUnits: 1, InitialUnits: 2, Operations: 3},
		},
		{
			name: "unavailable buy that applied later",
			ops: []inventory.Operation{
				ckOp(1, inventory.OpStock, inventory.OK, 1, 1, 0, 10, ckVersion(1)),
				ckOp(2, inventory.OpBuy, inventory.Unavailable, 1, 0, 20, 30),
				ckOp(3, inventory.OpRead, inventory.OK, 0, 1, 40, 50, ckVersion(1)),
				ckOp(4, inventory.OpRead, inventory.OK, 0, 0, 60, 70, ckVersion(2)),
				ckOp(5, inventory.OpBuy, inventory.SoldOut, 1, 0, 80, 90, ckVersion(2)),
			},
			want:    Result{Linearizable: true, InitialUnits: 1, Indeterminate: 1, Operations: 5},
			explain: "1 unavailable write may or may not have applied",
		},
		{
			name: "unavailable buy that never applied",
			ops: []inventory.Operation{
				ckOp(1, inventory.OpStock, inventory.OK, 1, 1, 0, 10, ckVersion(1)),
				ckOp(2, inventory.OpBuy, inventory.Unavailable, 1, 0, 20, 30),
				ckOp(3, inventory.OpBuy, inventory.OK, 1, 0, 40, 50, ckVersion(2), ckBase(1)),
				ckOp(4, inventory.OpRead, inventory.OK, 0, 0, 60, 70, ckVersion(2)),
			},
			want: Result{Linearizable: true, SoldUnits: 1, InitialUnits: 1, Indeterminate: 1, Operations: 4},
		},
		{
			name: "an unavailable buy cannot explain a sale that did not fit",
			ops: []inventory.Operation{
				ckOp(1, inventory.OpStock, inventory.OK, 1, 1, 0, 10, ckVersion(1)),
				ckOp(2, inventory.OpBuy, inventory.Unavailable, 1, 0, 20, 30),
				ckOp(3, inventory.OpRead, inventory.OK, 0, 0, 40, 50, ckVersion(2)),
				ckOp(4, inventory.OpBuy, inventory.OK, 1, 0, 60, 70, ckVersion(3), ckBase(2)),
			},
			want: Result{SoldUnits: 1, InitialUnits: 1, Indeterminate: 1, Operations: 4},
		},
		{
			name: "lost update",
			ops: []inventory.Operation{
				ckOp(1, inventory.OpStock, inventory.OK, 5, 5, 0, 10, ckVersion(1)),
				ckOp(2, inventory.OpBuy, inventory.OK, 1, 4, 20, 40, ckVersion(2), ckBase(1), ckRegion("us-east-1")),
				ckOp(3, inventory.OpBuy, inventory.OK, 1, 4, 22, 42, ckVersion(3), ckBase(1), ckRegion("eu-west-1")),
				ckOp(4, inventory.OpBuy, inventory.OK, 1, 4, 24, 44, ckVersion(4), ckBase(1), ckRegion("ap-southeast-1")),
				ckOp(5, inventory.OpRead, inventory.OK, 0, 4, 50, 60, ckVersion(4)),
			},
			want:    Result{SoldUnits: 3, InitialUnits: 5, LostUpdates: 2, Operations: 5},
			explain: "lost update",
		},
		{
			name: "fail_fast, conflict and unavailable reads are left out",
			ops: []inventory.Operation{
				ckOp(1, inventory.OpStock, inventory.OK, 1, 1, 0, 10, ckVersion(1)),
				ckOp(2, inventory.OpBuy, inventory.FailFast, 1, 0, 20, 21),
				ckOp(3, inventory.OpBuy, inventory.Conflict, 1, 0, 20, 30),
				ckOp(4, inventory.OpRead, inventory.Unavailable, 0, 0, 20, 30),
				ckOp(5, inventory.OpStock, inventory.FailFast, 9, 0, 20, 30),
				ckOp(6, inventory.OpRead, inventory.OK, 0, 1, 40, 50, ckVersion(1)),
			},
			want: Result{Linearizable: true, InitialUnits: 1, Operations: 2},
		},
		{
			name: "counts restart at the last restock",
			ops: []inventory.Operation{
				ckOp(1, inventory.OpStock, inventory.OK, 1, 1, 0, 10, ckVersion(1)),
				ckOp(2, inventory.OpBuy, inventory.OK, 1, 0, 20, 30, ckVersion(2), ckBase(1)),
				ckOp(3, inventory.OpBuy, inventory.Unavailable, 1, 0, 32, 34),
				ckOp(4, inventory.OpStock, inventory.OK, 5, 5, 40, 50, ckVersion(3)),
				ckOp(5, inventory.OpBuy, inventory.OK, 2, 3, 60, 70, ckVersion(4), ckBase(3)),
				ckOp(6, inventory.OpBuy, inventory.OK, 1, 2, 80, 90, ckVersion(5), ckBase(4)),
			},
			want: Result{Linearizable: true, SoldUnits: 3, InitialUnits: 5, Operations: 6},
		},
		{
			name: "unavailable restock is indeterminate",
			ops: []inventory.Operation{
				ckOp(1, inventory.OpStock, inventory.OK, 1, 1, 0, 10, ckVersion(1)),
				ckOp(2, inventory.OpStock, inventory.Unavailable, 5, 0, 20, 30),
				ckOp(3, inventory.OpRead, inventory.OK, 0, 5, 40, 50, ckVersion(2)),
				ckOp(4, inventory.OpBuy, inventory.OK, 2, 3, 60, 70, ckVersion(3), ckBase(2)),
			},
			// The restock answered unavailable but applied (the read saw 5):
			// the window cannot place it, but the history is linearizable,
			// so nothing was oversold.
			want: Result{Linearizable: true, SoldUnits: 2, InitialUnits: 1, Oversold: 0, Indeterminate: 1, Operations: 4},
		},
		{
			name: "never stocked",
			ops: []inventory.Operation{
				ckOp(1, inventory.OpRead, inventory.OK, 0, 0, 0, 10),
				ckOp(2, inventory.OpBuy, inventory.SoldOut, 1, 0, 20, 30),
			},
			want: Result{Linearizable: true, Operations: 2},
		},
		{
			name:    "empty",
			want:    Result{Linearizable: true},
			explain: "Nothing to check yet",
		},
		{
			name: "other stores and SKUs are ignored",
			ops: []inventory.Operation{
				ckOp(1, inventory.OpStock, inventory.OK, 1, 1, 0, 10, ckVersion(1)),
				ckOp(2, inventory.OpBuy, inventory.OK, 1, 0, 20, 30, ckVersion(2), ckBase(1)),
				func() inventory.Operation {
					o := ckOp(3, inventory.OpBuy, inventory.OK, 1, 0, 20, 30, ckVersion(2), ckBase(1))
					o.Store = inventory.Replicated
					return o
				}(),
				ckOp(4, inventory.OpBuy, inventory.OK, 1, 0, 20, 30, ckVersion(2), ckBase(1), ckSKU("Y")),
			},
			want: Result{Linearizable: true, SoldUnits: 1, InitialUnits: 1, Operations: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := Operations(tt.ops, inventory.Consensus, "X", 10*time.Second)
			if got.Store != inventory.Consensus || got.SKU != "X" {
				t.Errorf("store, sku = %q, %q", got.Store, got.SKU)
			}
			explanation := got.Explanation
			got.Store, got.SKU, got.Explanation, got.Unplaced = "", "", "", nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Check =\n %+v\nwant\n %+v", got, tt.want)
			}
			if !strings.Contains(explanation, tt.explain) {
				t.Errorf("explanation %q does not contain %q", explanation, tt.explain)
			}
			if explanation == "" {
				t.Error("empty explanation")
			}
		})
	}
}

func TestCheckAllSKUs(t *testing.T) {
	ops := []inventory.Operation{
		ckOp(1, inventory.OpStock, inventory.OK, 1, 1, 0, 10, ckVersion(1)),
		ckOp(2, inventory.OpBuy, inventory.OK, 1, 0, 20, 30, ckVersion(2), ckBase(1)),
		ckOp(3, inventory.OpStock, inventory.OK, 1, 1, 0, 10, ckVersion(1), ckSKU("Y")),
		ckOp(4, inventory.OpBuy, inventory.OK, 1, 0, 20, 40, ckVersion(2), ckBase(1), ckSKU("Y")),
		ckOp(5, inventory.OpBuy, inventory.OK, 1, 0, 25, 45, ckVersion(3), ckBase(1), ckSKU("Y")),
	}
	got, _ := Operations(ops, inventory.Consensus, "", 0)
	if got.Linearizable || got.SoldUnits != 3 || got.InitialUnits != 2 || got.Oversold != 1 || got.Operations != 5 {
		t.Errorf("Operations(all SKUs) = %+v; want not linearizable, 3 sold of 2, 1 oversold", got)
	}
	x, _ := Operations(ops, inventory.Consensus, "X", 0)
	if !x.Linearizable {
		t.Errorf("SKU X alone should be linearizable: %+v", x)
	}
}

func TestExplainTimedOut(t *testing.T) {
	s := explainCheck(Result{TimedOut: true, Operations: 40, SoldUnits: 3, InitialUnits: 2, Oversold: 1})
	if !strings.HasPrefix(s, "Undecided") || !strings.Contains(s, "3 units were sold but only 2 units stocked") {
		t.Errorf("explanation = %q", s)
	}
}

func TestDescribeCheckOp(t *testing.T) {
	tests := []struct {
		in   checkInput
		out  checkOutput
		want string
	}{
		{checkInput{Region: "us-east-1", Op: inventory.OpBuy, Qty: 1}, checkOutput{Kind: inventory.OK, Quantity: 0}, "us-east-1 buy 1 → ok (0 left)"},
		{checkInput{Region: "eu-west-1", Op: inventory.OpBuy, Qty: 2}, checkOutput{Kind: inventory.SoldOut}, "eu-west-1 buy 2 → sold out"},
		{checkInput{Region: "eu-west-1", Op: inventory.OpBuy, Qty: 1}, checkOutput{Unknown: true}, "eu-west-1 buy 1 → unavailable (may have applied)"},
		{checkInput{Region: "us-east-1", Op: inventory.OpStock, Qty: 5}, checkOutput{Kind: inventory.OK, Quantity: 5}, "us-east-1 stock 5 → ok"},
		{checkInput{Region: "ap-southeast-1", Op: inventory.OpRead}, checkOutput{Kind: inventory.OK, Quantity: 3}, "ap-southeast-1 read → 3"},
	}
	for _, tt := range tests {
		if got := describeCheckOp(tt.in, tt.out); got != tt.want {
			t.Errorf("describeCheckOp = %q, want %q", got, tt.want)
		}
	}
}

// TestAssignClients checks that no client has two overlapping operations
// (closed intervals), that ids are the lowest free ones, and that an
// indeterminate operation retires its id.
func TestAssignClients(t *testing.T) {
	ops := []checkedOp{
		{call: 0, ret: 10},
		{call: 5, ret: 15},
		{call: 10, ret: 20}, // overlaps the first at 10: needs a third id
		{call: 11, ret: 12}, // first is free again
		{call: 16, ret: 1 << 40, indefinitely: true},
		{call: 30, ret: 40},
		{call: 31, ret: 41},
		{call: 32, ret: 42},
	}
	assignClients(ops)
	got := make([]int, len(ops))
	for i, o := range ops {
		got[i] = o.client
	}
	// [0,10]→0, [5,15]→1, [10,20]→2, [11,12]→0, 16..inf→0 (retired),
	// [30,40]→1, [31,41]→2, [32,42]→3 (0 never comes back).
	if want := []int{0, 1, 2, 0, 0, 1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("clients = %v, want %v", got, want)
	}

	rng := rand.New(rand.NewPCG(11, 12))
	for range 200 {
		ops := make([]checkedOp, 1+rng.IntN(60))
		for i := range ops {
			c := int64(rng.IntN(100))
			ops[i] = checkedOp{call: c, ret: c + int64(rng.IntN(20)), indefinitely: rng.IntN(10) == 0}
			if ops[i].indefinitely {
				ops[i].ret = 1 << 40
			}
		}
		assignClients(ops)
		for i := range ops {
			for j := range i {
				a, b := ops[i], ops[j]
				if a.client == b.client && a.call <= b.ret && b.call <= a.ret {
					t.Fatalf("client %d has overlapping %+v and %+v", a.client, a, b)
				}
			}
		}
	}
}

// ckSequentialRun generates a history from a reference execution: each
// operation takes effect at a distinct instant inside [call, return], so
// the history is linearizable by construction. It mixes buys, restocks,
// linearizable and (possibly stale) serializable reads, unavailable buys
// and stocks that did or did not apply, and fail_fast / conflict buys.
func ckSequentialRun(rng *rand.Rand, n int) []inventory.Operation {
	return ckSequentialRunJitter(rng, n, 60)
}

// ckSequentialRunJitter is ckSequentialRun with calls and returns up to
// jitter ms either side of the instants 10 ms apart where operations take
// effect (small jitter: few operations overlap).
func ckSequentialRunJitter(rng *rand.Rand, n, jitter int) []inventory.Operation {
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-1"}
	state, v := 0, int64(0)
	type past struct {
		q int
		v int64
	}
	var seen []past
	var ops []inventory.Operation
	for i := range n {
		point := int64(i*10 + 5)
		call := point - int64(rng.IntN(jitter))
		ret := point + int64(rng.IntN(jitter))
		o := inventory.Operation{ID: i + 1, Region: regions[rng.IntN(3)], Store: inventory.Replicated, SKU: "X", Call: ckMs(call), Return: ckMs(ret)}
		apply := func() {}
		k := rng.IntN(20)
		if i == 0 {
			k = 0
		}
		switch {
		case k == 0:
			o.Op, o.Qty, o.Outcome = inventory.OpStock, 1+rng.IntN(6), inventory.OK
			apply = func() { v++; state = o.Qty; o.Version = ckVer(v) }
		case k == 1 && rng.IntN(3) > 0:
			o.Op, o.Qty, o.Outcome = inventory.OpBuy, 1, []inventory.Kind{inventory.FailFast, inventory.Conflict}[rng.IntN(2)]
		case k == 1:
			o.Op, o.Qty, o.Outcome = inventory.OpStock, 1+rng.IntN(4), inventory.Unavailable
			if rng.IntN(2) == 0 {
				apply = func() { v++; state = o.Qty }
			}
		case k < 10:
			o.Op, o.Qty = inventory.OpBuy, 1+rng.IntN(2)
			apply = func() {
				if state < o.Qty {
					o.Outcome, o.Quantity, o.Version = inventory.SoldOut, state, ckVer(v)
					return
				}
				o.BaseVersion = ckVer(v)
				v++
				state -= o.Qty
				o.Outcome, o.Quantity, o.Version = inventory.OK, state, ckVer(v)
			}
		case k < 12:
			o.Op, o.Qty, o.Outcome = inventory.OpBuy, 1, inventory.Unavailable
			if rng.IntN(2) == 0 {
				apply = func() {
					if state >= o.Qty {
						v++
						state -= o.Qty
					}
				}
			}
		case k == 12:
			o.Op, o.Qty, o.Outcome = inventory.OpBuy, 1, []inventory.Kind{inventory.FailFast, inventory.Conflict}[rng.IntN(2)]
		case k < 17:
			o.Op, o.Outcome, o.Consistency = inventory.OpRead, inventory.OK, inventory.Linearizable
			apply = func() { o.Quantity, o.Version = state, ckVer(v) }
		default:
			o.Op, o.Outcome, o.Consistency = inventory.OpRead, inventory.OK, inventory.Serializable
			apply = func() {
				o.Quantity, o.Version = state, ckVer(v)
				if len(seen) > 0 && rng.IntN(2) == 0 {
					p := seen[rng.IntN(len(seen))]
					o.Quantity, o.Version = p.q, ckVer(p.v)
				}
			}
		}
		apply()
		seen = append(seen, past{state, v})
		ops = append(ops, o)
	}
	// The lab adds operations as they return.
	slices.SortStableFunc(ops, func(a, b inventory.Operation) int { return a.Return.Compare(b.Return) })
	return ops
}

func TestCheckRandomLinearizable(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for i := range 150 {
		ops := ckSequentialRun(rng, 10+rng.IntN(50))
		got, _ := Operations(ops, inventory.Replicated, "X", 30*time.Second)
		serializable := 0
		for _, o := range ops {
			if o.Op == inventory.OpRead && o.Consistency == inventory.Serializable {
				serializable++
			}
		}
		if !got.Linearizable || got.LostUpdates != 0 || got.StaleReads > serializable || (ckClearRestocks(ops) && got.Oversold != 0) {
			t.Fatalf("history %d (%d ops): %+v\n%s", i, len(ops), got, ckDumpOps(ops))
		}
	}
}

// TestCheckRandomBroken breaks one linearizable read at random and expects
// the checker to notice.
func TestCheckRandomBroken(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for i := range 100 {
		ops := ckSequentialRun(rng, 10+rng.IntN(40))
		var reads []int
		for j, o := range ops {
			if o.Op == inventory.OpRead && o.Consistency == inventory.Linearizable {
				reads = append(reads, j)
			}
		}
		if len(reads) == 0 {
			continue
		}
		ops[reads[rng.IntN(len(reads))]].Quantity = 100 // never stocked that high
		if got, _ := Operations(ops, inventory.Replicated, "X", 30*time.Second); got.Linearizable {
			t.Fatalf("history %d: broken read accepted: %+v\n%s", i, got, ckDumpOps(ops))
		}
	}
}

func TestCheckTimeoutIsNotLinearizable(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	ops := ckSequentialRun(rng, 400)
	got, _ := Operations(ops, inventory.Replicated, "X", time.Nanosecond)
	if got.TimedOut && got.Linearizable {
		t.Fatalf("timed out but linearizable: %+v", got)
	}
	if !got.TimedOut && !got.Linearizable {
		t.Fatalf("not linearizable without timing out: %+v", got)
	}
}

func TestVisualize(t *testing.T) {
	ops := []inventory.Operation{
		ckOp(1, inventory.OpStock, inventory.OK, 1, 1, 0, 10, ckVersion(1)),
		ckOp(2, inventory.OpBuy, inventory.OK, 1, 0, 20, 40, ckVersion(2), ckBase(1)),
		ckOp(3, inventory.OpBuy, inventory.OK, 1, 0, 25, 45, ckVersion(3), ckBase(1), ckRegion("ap-southeast-1")),
		ckOp(4, inventory.OpRead, inventory.OK, 0, 1, 50, 60, ckVersion(1), ckConsistency(inventory.Serializable)),
		ckOp(5, inventory.OpBuy, inventory.FailFast, 1, 0, 70, 70),
		ckOp(6, inventory.OpBuy, inventory.Unavailable, 1, 0, 80, 90),
	}
	var buf bytes.Buffer
	if err := Visualize(ops, inventory.Consensus, "X", &buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	res, _ := Operations(ops, inventory.Consensus, "X", time.Minute)
	if res.Unplaced == nil {
		t.Fatalf("no unplaced answer: %+v", res)
	}
	// The picture marks the answer the verdict names, with its sentence.
	sentence := res.Unplaced.Sentence
	for _, want := range []string{"<html", "us-east-1 buy 1 → ok (0 left)", "not checked", "could not be placed", sentence[:40]} {
		if !strings.Contains(page, want) {
			t.Errorf("visualization lacks %q", want)
		}
	}

	// Cut at a gap: the operations after it are marked as not judged, the
	// stretch as unrecorded writes.
	buf.Reset()
	gap := inventory.RecordingGap{ID: 1, Store: inventory.Consensus, SKU: "X", Reason: inventory.GapSkipped, From: ckMs(30), Writes: 1}
	if err := VisualizeRecorded(Recorded{Operations: ops, Gaps: []inventory.RecordingGap{gap}}, inventory.Consensus, "X", &buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"unrecorded writes", "not judged", "judged as may-have-applied"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("the cut visualization lacks %q", want)
		}
	}
	if strings.Contains(buf.String(), "could not be placed") {
		t.Error("the cut history is linearizable, yet an answer is marked as not placed")
	}
	buf.Reset()
	if err := Visualize(nil, inventory.Consensus, "X", &buf); err != nil || !strings.Contains(buf.String(), "<html") {
		t.Errorf("empty visualization: %v, %d bytes", err, buf.Len())
	}
}

// ckClearRestocks reports whether every restock answered ok and no two
// overlap — when Check's Oversold count is exact.
func ckClearRestocks(ops []inventory.Operation) bool {
	var stocks []inventory.Operation
	for _, o := range ops {
		if o.Op == inventory.OpStock {
			if o.Outcome != inventory.OK {
				return false
			}
			stocks = append(stocks, o)
		}
	}
	for i, a := range stocks {
		for _, b := range stocks[:i] {
			if !a.Call.After(b.Return) && !b.Call.After(a.Return) {
				return false
			}
		}
	}
	return true
}

func ckDumpOps(ops []inventory.Operation) string {
	var b strings.Builder
	for _, o := range ops {
		fmt.Fprintf(&b, "#%d %s %s qty=%d %s q=%d v=%d base=%d [%d,%d]ms %s\n", o.ID, o.Region, o.Op, o.Qty, o.Outcome,
			o.Quantity, o.Version.Wall, o.BaseVersion.Wall, o.Call.Sub(checkEpoch).Milliseconds(), o.Return.Sub(checkEpoch).Milliseconds(), o.Consistency)
	}
	return b.String()
}

// ckManyUnavailable is a partition seen from the consensus store: a
// minority region's k buys are all unavailable and never apply, while the
// majority sells and reads normally. broken adds a read no order explains.
func ckManyUnavailable(k int, broken bool) []inventory.Operation {
	var ops []inventory.Operation
	add := func(o inventory.Operation) { o.ID = len(ops) + 1; ops = append(ops, o) }
	add(ckOp(0, inventory.OpStock, inventory.OK, 100, 100, 0, 10, ckVersion(1)))
	left := 100
	for i := range k {
		at := int64(20 + i*20)
		add(ckOp(0, inventory.OpBuy, inventory.Unavailable, 1, 0, at, at+10, ckRegion("ap-southeast-1")))
		left--
		add(ckOp(0, inventory.OpBuy, inventory.OK, 1, left, at+5, at+15, ckVersion(int64(i+2)), ckBase(int64(i+1))))
		add(ckOp(0, inventory.OpRead, inventory.OK, 0, left, at+16, at+18, ckVersion(int64(i+2))))
	}
	if broken {
		add(ckOp(0, inventory.OpRead, inventory.OK, 0, 1000, 100000, 100001))
	}
	return ops
}

// TestCheckManyIndeterminate: unavailable buys pile up during a partition;
// the checker must still decide, not time out (the search would be
// exponential in k without ordering interchangeable indeterminate buys).
func TestCheckManyIndeterminate(t *testing.T) {
	for _, broken := range []bool{false, true} {
		got, _ := Operations(ckManyUnavailable(60, broken), inventory.Consensus, "X", time.Minute)
		if got.TimedOut || got.Linearizable == broken || got.Indeterminate != 60 || got.SoldUnits != 60 {
			t.Errorf("broken=%v: %+v", broken, got)
		}
	}
}

func BenchmarkCheckManyIndeterminate(b *testing.B) {
	ops := ckManyUnavailable(40, false)
	for b.Loop() {
		Operations(ops, inventory.Consensus, "X", 0)
	}
}

// ckVerdict checks ops with the production model (chained) or with every
// indeterminate operation in a class of its own (unchained: porcupine
// tries every order, the slow reference).
func ckVerdict(ops []inventory.Operation, chained bool) bool {
	in, _, _ := prepareCheck(ops, inventory.Replicated, "X")
	classes := rankIndeterminate(in)
	if !chained {
		classes = 0
		for i := range in {
			if in[i].indefinitely {
				in[i].class, in[i].rank = classes, 0
				classes++
			}
		}
	}
	return porcupineOk(inventoryModel(classes), toPorcupine(in))
}

// TestCheckChainingLosesNothing compares the chained model with the
// unchained reference on small random histories rich in unavailable
// operations, some of them corrupted.
func TestCheckChainingLosesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	agreeLin, agreeNot := 0, 0
	for i := range 400 {
		ops := ckSequentialRun(rng, 8+rng.IntN(14))
		for j := range ops {
			if rng.IntN(4) == 0 && (ops[j].Op == inventory.OpBuy || ops[j].Op == inventory.OpStock) {
				ops[j].Outcome = inventory.Unavailable
			}
		}
		var answers []int // ok buys and linearizable reads
		for j, o := range ops {
			if o.Outcome == inventory.OK && (o.Op == inventory.OpBuy || o.Consistency == inventory.Linearizable) {
				answers = append(answers, j)
			}
		}
		if len(answers) > 0 && rng.IntN(2) == 0 {
			j := answers[rng.IntN(len(answers))]
			ops[j].Quantity += 1 - 2*rng.IntN(2)
		}
		chained, reference := ckVerdict(ops, true), ckVerdict(ops, false)
		if chained != reference {
			t.Fatalf("history %d: chained %v, reference %v\n%s", i, chained, reference, ckDumpOps(ops))
		}
		if chained {
			agreeLin++
		} else {
			agreeNot++
		}
	}
	if agreeLin < 100 || agreeNot < 100 { // both Memo well represented
		t.Errorf("weak sample: %d linearizable, %d not", agreeLin, agreeNot)
	}
}

func porcupineOk(m porcupine.Model, ops []porcupine.Operation) bool {
	return porcupine.CheckOperations(m, ops)
}
