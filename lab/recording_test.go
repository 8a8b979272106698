package lab

import (
	"strings"
	"testing"
)

func TestRecorderIsBounded(t *testing.T) {
	var r Recorder
	r.start(true, QuorumState{N: 3, W: 1, R: 1})
	for range MaxRecordedActions + 5 {
		r.add(RecordedAction{Kind: ActHeal})
	}
	rec := r.snapshot()
	if len(rec.Actions) != MaxRecordedActions || rec.Dropped != 5 || rec.Actions[999].Seq != 1000 {
		t.Fatalf("kept %d, dropped %d; want %d and 5", len(rec.Actions), rec.Dropped, MaxRecordedActions)
	}
	if st := r.Status(); !strings.Contains(st.Message, "full") || !strings.Contains(st.Message, "5 actions") {
		t.Fatalf("status message %q does not say the recording is full", st.Message)
	}
	r.start(false, QuorumState{})
	if rec := r.snapshot(); len(rec.Actions) != 0 || rec.Dropped != 0 || rec.FromReset {
		t.Fatalf("start did not forget: %+v", rec)
	}
}

// BenchmarkRecorderAdd is the recorder's cost on an operation's path (one
// lock, one append); past 1,000 actions it only counts.
func BenchmarkRecorderAdd(b *testing.B) {
	var r Recorder
	r.start(true, QuorumState{N: 3, W: 1, R: 1})
	op := Operation{Store: Consensus, SKU: "X", Region: "us-east-1", Op: OpBuy, Qty: 1, Outcome: OK}
	q := QuorumState{N: 3, W: 1, R: 1}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o := op
			r.add(RecordedAction{Kind: ActBuy, Regions: []string{o.Region}, Op: &o, Quorum: &q})
		}
	})
}

func TestWithoutRecording(t *testing.T) {
	var r Recorder
	r.start(true, QuorumState{})
	r.op(WithoutRecording(t.Context()), Operation{Op: OpBuy}, QuorumState{}, "", false)
	r.op(t.Context(), Operation{Op: OpBuy}, QuorumState{}, "", false)
	if n := len(r.snapshot().Actions); n != 1 {
		t.Fatalf("recorded %d operations, want only the one without WithoutRecording", n)
	}
}
