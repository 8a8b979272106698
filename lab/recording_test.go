package lab_test

import (
	"strings"
	"testing"

	"caplab/lab"
	"caplab/lab/inventory"
)

func TestRecorderIsBounded(t *testing.T) {
	r := lab.NewRecorder(inventory.QuorumState{N: 3, W: 1, R: 1})
	for range lab.MaxRecordedActions + 5 {
		lab.RecorderAdd(r, lab.RecordedAction{Kind: lab.ActHeal})
	}
	rec := lab.RecorderSnapshot(r)
	if len(rec.Actions) != lab.MaxRecordedActions || rec.Dropped != 5 || rec.Actions[999].Seq != 1000 {
		t.Fatalf("kept %d, dropped %d; want %d and 5", len(rec.Actions), rec.Dropped, lab.MaxRecordedActions)
	}
	if st := r.Status(); !strings.Contains(st.Message, "full") || !strings.Contains(st.Message, "5 actions") {
		t.Fatalf("status message %q does not say the recording is full", st.Message)
	}
	lab.RecorderRestart(r, false, inventory.QuorumState{})
	if rec := lab.RecorderSnapshot(r); len(rec.Actions) != 0 || rec.Dropped != 0 || rec.FromReset {
		t.Fatalf("start did not forget: %+v", rec)
	}
}

// BenchmarkRecorderAdd is the recorder's cost on an operation's path (one
// lock, one append); past 1,000 actions it only counts.
func BenchmarkRecorderAdd(b *testing.B) {
	r := lab.NewRecorder(inventory.QuorumState{N: 3, W: 1, R: 1})
	op := inventory.Operation{Store: inventory.Consensus, SKU: "X", Region: "us-east-1", Op: inventory.OpBuy, Qty: 1, Outcome: inventory.OK}
	q := inventory.QuorumState{N: 3, W: 1, R: 1}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o := op
			lab.RecorderAdd(r, lab.RecordedAction{Kind: lab.ActBuy, Regions: []string{o.Region}, Op: &o, Quorum: &q})
		}
	})
}

func TestWithoutRecording(t *testing.T) {
	r := lab.NewRecorder(inventory.QuorumState{})
	lab.RecordOp(r, lab.WithoutRecording(t.Context()), inventory.Operation{Op: inventory.OpBuy}, inventory.QuorumState{}, "", false)
	lab.RecordOp(r, t.Context(), inventory.Operation{Op: inventory.OpBuy}, inventory.QuorumState{}, "", false)
	if n := len(lab.RecorderSnapshot(r).Actions); n != 1 {
		t.Fatalf("recorded %d operations, want only the one without WithoutRecording", n)
	}
}
