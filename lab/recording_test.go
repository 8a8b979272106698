package lab

import (
	"strings"
	"testing"
)

func TestRecorderIsBounded(t *testing.T) {
	var r recorder
	r.start(true, QuorumState{N: 3, W: 1, R: 1})
	for range MaxRecordedActions + 5 {
		r.add(RecordedAction{Kind: ActHeal})
	}
	rec := r.snapshot()
	if len(rec.Actions) != MaxRecordedActions || rec.Dropped != 5 || rec.Actions[999].Seq != 1000 {
		t.Fatalf("kept %d, dropped %d; want %d and 5", len(rec.Actions), rec.Dropped, MaxRecordedActions)
	}
	l := &Lab{}
	l.recorder.rec = r.rec
	if st := l.RecordingStatus(); !strings.Contains(st.Message, "full") || !strings.Contains(st.Message, "5 actions") {
		t.Fatalf("status message %q does not say the recording is full", st.Message)
	}
	r.start(false, QuorumState{})
	if rec := r.snapshot(); len(rec.Actions) != 0 || rec.Dropped != 0 || rec.FromReset {
		t.Fatalf("start did not forget: %+v", rec)
	}
}
