package load

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
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
	if err := l.Faults().Isolate("ap-southeast-1"); err != nil {
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
		if sc.Store == inventory.Geo {
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

	// The verdict (the panel's and the CLI's line), the final table and
	// the CSV say it too.
	if want := fmt.Sprintf(", %d stranded,", stranded); !strings.Contains(geo.Verdict, want) {
		t.Errorf("geo verdict %q does not say %q", geo.Verdict, want)
	}
	var table, csv strings.Builder
	PrintTable(&table, st)
	ap := figuresOf(t, st, "geo", "ap-southeast-1")
	row := ""
	for _, line := range strings.Split(table.String(), "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[0] == "geo" && f[1] == "ap-southeast-1" {
			row = f[4] + " " + f[5]
		}
	}
	if !strings.Contains(table.String(), "stranded") || row != fmt.Sprintf("%d %d", ap.Refused, ap.Stranded) {
		t.Errorf("the table does not show ap-southeast-1's %d stranded of %d refused:\n%s", ap.Stranded, ap.Refused, table.String())
	}
	if err := WriteCSV(&csv, c.Status(true).Samples); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(csv.String()), "\n")
	if !strings.HasSuffix(lines[0], ",in_flight,stranded") {
		t.Errorf("CSV header %q does not end with the stranded column", lines[0])
	}
	var csvStranded int64
	for _, line := range lines[1:] {
		f := strings.Split(line, ",")
		n, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
		csvStranded = max(csvStranded, n)
	}
	if csvStranded == 0 {
		t.Errorf("no sample in the CSV counts a stranded buy")
	}
}
