package load

import (
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// TestLoadWritesAreNotOutsideWrites: a load's stocks and buys are left out
// of the History, yet they are the lab's own writes: the outside-write
// watcher must not flag them (it used to record one outside_write fault
// per stocked SKU and per buy, 2 s after each).
func TestLoadWritesAreNotOutsideWrites(t *testing.T) {
	l := newLab(t, lab.Config{})
	c := NewController(consensusOnly{LabTarget{l}})
	t.Cleanup(c.Close)
	if _, err := c.Start(Config{Rate: 20, ReadsPerBuy: f64(0), SKUs: 200, Duration: Duration(2 * time.Second), Seed: 7, SampleSKUs: intp(0), DoorbusterShare: f64(0)}); err != nil {
		t.Fatal(err)
	}
	<-c.Run().Done()
	st := c.Status(true)
	if t0 := sumUp(st, string(inventory.Consensus)); t0.ok == 0 {
		t.Fatalf("the load sold nothing (%s %s): nothing to judge", st.State, st.Reason)
	}
	// The watcher judges a write once RequestTimeout + 1 s have passed,
	// on its 500 ms tick.
	time.Sleep(l.RequestTimeout() + 2*time.Second)
	for _, f := range l.History("").Faults {
		if f.Kind == inventory.FaultOutsideWrite {
			t.Fatalf("a load write was flagged as an outside write: %s", f.Detail)
		}
	}
}
