package load

import (
	"strings"
	"testing"
	"time"
)

// TestRecordBudget: a run records at most recordBudget operations into the
// history, and once they are spent the status says from when on the
// operations were counted but not checked. (The target answers at once:
// what is tested is the generator's accounting; the lab's side of
// recording is TestWithOpRecording's and TestLoadWritesAreNotOutsideWrites'.)
func TestRecordBudget(t *testing.T) {
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-1"}
	c := NewController(noopTarget{regions})
	defer c.Close()
	// Half of 30,000 buys a second go to the doorbuster, a checked SKU:
	// the budget is spent in well under the run's 3 s.
	if _, err := c.Start(Config{Rate: 10_000, ReadsPerBuy: ptr(0.0), SKUs: 100, Duration: Duration(3 * time.Second), Seed: 3, SampleSKUs: ptr(0), DoorbusterShare: ptr(0.5)}); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, c, StateFinished, StateStopped, StateFailed)
	r := c.Run()
	if n := r.recorded.Load(); n <= recordBudget {
		t.Fatalf("%d operations asked to be recorded, want more than the budget %d (the test's load is too small)", n, recordBudget)
	}
	if !strings.Contains(st.Checked, "were recorded by") || !strings.Contains(st.Checked, "not checked for linearizability") {
		t.Errorf("the status does not say when the budget was spent: %q", st.Checked)
	}
	if at := time.Duration(r.spentAt.Load()); at <= 0 || at > 3*time.Second {
		t.Errorf("budget spent at %v, want within the 3 s run", at)
	}
}
