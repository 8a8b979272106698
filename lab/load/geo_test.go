package load

import (
	"testing"
	"time"

	"caplab/lab"
)

// TestGeoUnderCut drives the geo store alone and cuts ap-southeast-1 off
// while the doorbuster (10 units per region) sells out: local allocations
// keep selling, then buys whose only units left are across the cut are
// refused as stranded — counted per region in the load's figures, the
// same number as the lab's own geo counter — and nothing is oversold.
func TestGeoUnderCut(t *testing.T) {
	l := newLab(t, lab.Config{})
	c := newController(t, l)
	_, err := c.Start(Config{Stores: []string{"geo"}, Rate: 20, ReadsPerBuy: f64(1), SKUs: 5, Stock: intp(1000),
		DoorbusterStock: intp(30), DoorbusterShare: f64(0.5), Duration: Duration(4 * time.Second), Seed: 12})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, c, StateRunning)
	time.Sleep(300 * time.Millisecond)
	if err := l.Isolate("ap-southeast-1"); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, c, StateFinished, StateStopped, StateFailed)
	if st.State != StateFinished {
		t.Fatalf("state %s: %s", st.State, st.Reason)
	}
	geo := storeOf(t, st, "geo")
	if len(st.Stores) != 1 {
		t.Errorf("stores driven: %d, want geo alone", len(st.Stores))
	}
	if geo.Oversold != 0 {
		t.Errorf("geo oversold %d, want 0", geo.Oversold)
	}
	if geo.Check != nil && geo.Check.Oversold != 0 {
		t.Errorf("geo check: %+v", geo.Check)
	}
	var stranded, sold int64
	for _, f := range geo.Regions {
		if f.Stranded > f.Refused {
			t.Errorf("%s: %d stranded of %d refused buys", f.Region, f.Stranded, f.Refused)
		}
		if f.OK == 0 {
			t.Errorf("%s: no geo buy succeeded (outcomes %v): local allocations must keep selling", f.Region, f.Outcomes)
		}
		stranded += f.Stranded
		sold += f.Sold
	}
	if ap := figuresOf(t, st, "geo", "ap-southeast-1"); ap.Stranded == 0 {
		t.Errorf("ap-southeast-1: no stranded buy after its doorbuster allocation ran out behind the cut (outcomes %v)", ap.Outcomes)
	}
	var labStranded int
	for _, sc := range l.State().Counters {
		if sc.Store == lab.Geo {
			labStranded = sc.Stranded
		}
	}
	if stranded == 0 || int(stranded) != labStranded {
		t.Errorf("load counted %d stranded buys, the lab %d: want the same, more than 0", stranded, labStranded)
	}
	if sold > geo.Stocked {
		t.Errorf("geo sold %d of %d stocked", sold, geo.Stocked)
	}
	t.Logf("geo: %s; stranded %d, sold %d of %d", geo.Verdict, stranded, sold, geo.Stocked)
}
