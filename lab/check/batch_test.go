package check

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"caplab/lab/inventory"
)

// ckBatch marks a buy as carried by the group commit at revision commit,
// position pos of size buys.
func ckBatch(commit int64, size, pos int) ckOption {
	return func(o *inventory.Operation) { o.Batch = inventory.Batch{Commit: commit, Size: size, Position: pos} }
}

// TestGroupCommitVerdicts: the checker accepts a correct group commit (k
// buys on one base, one commit, each leaving its own count) and still
// catches a real lost update among batched buys — two commits on one
// base, a batch that repeats a count, a batch that sells more than its
// base had — and cached reads count like serializable ones.
func TestGroupCommitVerdicts(t *testing.T) {
	B, OK, SO, R := inventory.OpBuy, inventory.OK, inventory.SoldOut, inventory.OpRead
	stock := ckOp(1, inventory.OpStock, OK, 5, 5, 0, 10, ckVersion(1))
	tests := []struct {
		name    string
		ops     []inventory.Operation
		want    Result
		explain string
	}{
		{
			name: "a correct batch: three buys, one commit, the last sold out",
			ops: []inventory.Operation{stock,
				ckOp(2, B, OK, 2, 3, 20, 50, ckVersion(2), ckBase(1), ckBatch(2, 3, 0)),
				ckOp(3, B, OK, 2, 1, 22, 50, ckVersion(2), ckBase(1), ckBatch(2, 3, 1)),
				ckOp(4, B, SO, 2, 1, 24, 50, ckVersion(1), ckBase(1), ckBatch(2, 3, 2)),
				ckOp(5, R, OK, 0, 1, 60, 70, ckVersion(2)),
			},
			want:    Result{Linearizable: true, SoldUnits: 4, InitialUnits: 5, Operations: 5},
			explain: "Linearizable",
		},
		{
			name: "a batch, then a buy alone on the batch's commit",
			ops: []inventory.Operation{stock,
				ckOp(2, B, OK, 1, 4, 20, 50, ckVersion(2), ckBase(1), ckBatch(2, 2, 0)),
				ckOp(3, B, OK, 1, 3, 22, 50, ckVersion(2), ckBase(1), ckBatch(2, 2, 1)),
				ckOp(4, B, OK, 1, 2, 60, 70, ckVersion(3), ckBase(2)),
			},
			want: Result{Linearizable: true, SoldUnits: 3, InitialUnits: 5, Operations: 4},
		},
		{
			name: "two commits on one base: the second batch overwrote the first",
			ops: []inventory.Operation{stock,
				ckOp(2, B, OK, 1, 4, 20, 50, ckVersion(2), ckBase(1), ckBatch(2, 2, 0), ckRegion("us-east-1")),
				ckOp(3, B, OK, 1, 3, 22, 50, ckVersion(2), ckBase(1), ckBatch(2, 2, 1), ckRegion("us-east-1")),
				ckOp(4, B, OK, 1, 4, 21, 55, ckVersion(3), ckBase(1), ckBatch(3, 2, 0), ckRegion("eu-west-1")),
				ckOp(5, B, OK, 1, 3, 23, 55, ckVersion(3), ckBase(1), ckBatch(3, 2, 1), ckRegion("eu-west-1")),
				ckOp(6, R, OK, 0, 3, 60, 70, ckVersion(3)),
			},
			want:    Result{SoldUnits: 4, InitialUnits: 5, LostUpdates: 2, Operations: 6},
			explain: "lost update",
		},
		{
			name: "a batch whose buys repeat a count",
			ops: []inventory.Operation{stock,
				ckOp(2, B, OK, 1, 4, 20, 50, ckVersion(2), ckBase(1), ckBatch(2, 2, 0)),
				ckOp(3, B, OK, 1, 4, 22, 50, ckVersion(2), ckBase(1), ckBatch(2, 2, 1)),
				ckOp(4, R, OK, 0, 4, 60, 70, ckVersion(2)),
			},
			want:    Result{SoldUnits: 2, InitialUnits: 5, LostUpdates: 1, Operations: 4},
			explain: "lost update",
		},
		{
			name: "a batch that sells more than its base had",
			ops: []inventory.Operation{
				ckOp(1, inventory.OpStock, OK, 2, 2, 0, 10, ckVersion(1)),
				ckOp(2, B, OK, 1, 1, 20, 50, ckVersion(2), ckBase(1), ckBatch(2, 3, 0)),
				ckOp(3, B, OK, 1, 0, 22, 50, ckVersion(2), ckBase(1), ckBatch(2, 3, 1)),
				ckOp(4, B, OK, 1, 0, 24, 50, ckVersion(2), ckBase(1), ckBatch(2, 3, 2)),
			},
			want:    Result{SoldUnits: 3, InitialUnits: 2, Oversold: 1, LostUpdates: 1, Operations: 4},
			explain: "sold the same unit twice",
		},
		{
			name: "the same buys without their batch are lost updates, as before",
			ops: []inventory.Operation{stock,
				ckOp(2, B, OK, 1, 4, 20, 50, ckVersion(2), ckBase(1)),
				ckOp(3, B, OK, 1, 3, 22, 50, ckVersion(2), ckBase(1)),
			},
			want: Result{Linearizable: true, SoldUnits: 2, InitialUnits: 5, LostUpdates: 1, Operations: 3},
		},
		{
			name: "a stale cached read is counted, not judged",
			ops: []inventory.Operation{stock,
				ckOp(2, B, OK, 1, 4, 20, 30, ckVersion(2), ckBase(1)),
				ckOp(3, R, OK, 0, 5, 40, 41, ckVersion(1), ckConsistency(inventory.Cached), ckRegion("ap-southeast-1")),
			},
			want:    Result{Linearizable: true, SoldUnits: 1, InitialUnits: 5, StaleReads: 1, Operations: 2},
			explain: "returned an old count",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := Operations(tc.ops, inventory.Consensus, "X", 10*time.Second)
			if !strings.Contains(got.Explanation, tc.explain) {
				t.Errorf("explanation %q does not say %q", got.Explanation, tc.explain)
			}
			got.Store, got.SKU, got.Explanation, got.Unplaced = "", "", "", nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v\n%s", got, tc.want, ckDumpOps(tc.ops))
			}
		})
	}
}

// ckBatchedRun is a linearizable consensus history of n rounds in which
// each round is one group commit of 1–8 concurrent buys (some sold out)
// or a read, with restocks now and then: what the store's batcher answers.
func ckBatchedRun(rng *rand.Rand, n int) []inventory.Operation {
	var ops []inventory.Operation
	state, rev, id := 0, int64(0), 0
	next := func() int { id++; return id }
	for i := range n {
		at := int64(i * 100)
		switch k := rng.IntN(10); {
		case i == 0 || k == 0:
			rev++
			state = 1 + rng.IntN(12)
			ops = append(ops, ckOp(next(), inventory.OpStock, inventory.OK, state, state, at, at+10, ckVersion(rev)))
		case k < 8:
			size := 1 + rng.IntN(8)
			base, left, sold := rev, state, 0
			var batch []inventory.Operation
			for pos := range size {
				q := 1 + rng.IntN(2)
				call := at + int64(rng.IntN(40))
				if q > left {
					batch = append(batch, ckOp(next(), inventory.OpBuy, inventory.SoldOut, q, left, call, at+60, ckVersion(base), ckBase(base), ckBatch(0, size, pos)))
					continue
				}
				left -= q
				sold += q
				batch = append(batch, ckOp(next(), inventory.OpBuy, inventory.OK, q, left, call, at+60, ckBase(base), ckBatch(0, size, pos)))
			}
			commit := base
			if sold > 0 {
				rev++
				commit = rev
			}
			for j := range batch {
				batch[j].Batch.Commit = commit
				if batch[j].Outcome == inventory.OK {
					batch[j].Version = ckVer(commit)
				}
			}
			state = left
			ops = append(ops, batch...)
		default:
			ops = append(ops, ckOp(next(), inventory.OpRead, inventory.OK, 0, state, at+20, at+30, ckVersion(rev)))
		}
	}
	return ops
}

// TestGroupCommitRandom: random histories of correct group commits are
// linearizable with no lost update; giving one batch's buys a second
// commit on the same base (another region's Txn overwrote it) is caught.
func TestGroupCommitRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for i := range 100 {
		ops := ckBatchedRun(rng, 10+rng.IntN(40))
		got, _ := Operations(ops, inventory.Consensus, "X", 30*time.Second)
		if !got.Linearizable || got.LostUpdates != 0 || got.Oversold != 0 {
			t.Fatalf("history %d (%d ops): %+v\n%s", i, len(ops), got, ckDumpOps(ops))
		}
		// Break it: a copy of an ok batched buy committed again on the
		// same base by another commit, overlapping the original.
		var oks []int // in the last restock's window, where counts are kept
		for j, o := range ops {
			switch {
			case o.Op == inventory.OpStock:
				oks = nil
			case o.Op == inventory.OpBuy && o.Outcome == inventory.OK:
				oks = append(oks, j)
			}
		}
		if len(oks) == 0 {
			continue
		}
		dup := ops[oks[rng.IntN(len(oks))]]
		dup.ID, dup.Region = 10_000, "eu-west-1"
		dup.Batch = inventory.Batch{Commit: 1_000_000, Size: 1}
		dup.Version = ckVer(1_000_000)
		broken := append(append([]inventory.Operation(nil), ops...), dup)
		if got, _ := Operations(broken, inventory.Consensus, "X", 30*time.Second); got.Linearizable || got.LostUpdates == 0 {
			t.Fatalf("history %d: a second commit on one base accepted: %+v\n%s", i, got, ckDumpOps(broken))
		}
	}
}
