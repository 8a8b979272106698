package load

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNormalizeDefaults(t *testing.T) {
	regions, stores := []string{"us-east-1", "eu-west-1"}, []string{"consensus", "replicated", "geo"}
	c, err := Config{RatePerRegion: map[string]float64{"eu-west-1": 7}}.Normalize(regions, stores)
	if err != nil {
		t.Fatal(err)
	}
	if c.RatePerRegion["us-east-1"] != DefaultRate || c.RatePerRegion["eu-west-1"] != 7 {
		t.Errorf("rates %v", c.RatePerRegion)
	}
	if *c.ReadsPerBuy != DefaultReadsPerBuy || c.SKUs != DefaultSKUs || *c.Stock != DefaultStock || *c.DoorbusterStock != DefaultStock ||
		c.Doorbuster != DefaultDoorbuster || time.Duration(c.Duration) != DefaultDuration || c.SLOP99Ms != DefaultSLOMs || c.Consistency != "serializable" {
		t.Errorf("defaults %+v", c)
	}
	if strings.Join(c.Stores, ",") != "consensus,replicated,geo" {
		t.Errorf("stores %v, want every store of the lab", c.Stores)
	}
	if got := c.OpsPerSecond(); got != (DefaultRate+7)*(1+DefaultReadsPerBuy) {
		t.Errorf("ops/s %v", got)
	}
	if *c.SampleSKUs != DefaultSampleSKUs {
		t.Errorf("sampleSKUs %d, want %d", *c.SampleSKUs, DefaultSampleSKUs)
	}
	// Defaults follow the user's values: a catalogue smaller than the
	// default sample is sampled whole, never refused for a field the user
	// did not set.
	for _, skus := range []int{1, 3, DefaultSampleSKUs} {
		c, err := Config{SKUs: skus}.Normalize(regions, stores)
		if err != nil || *c.SampleSKUs != skus {
			t.Errorf("skus %d: sampleSKUs %v, %v; want %d", skus, c.SampleSKUs, err, skus)
		}
	}
	// A sample the user did set is still checked against the catalogue.
	if _, err := (Config{SKUs: 3, SampleSKUs: ptr(4)}).Normalize(regions, stores); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), `"sampleSKUs"`) {
		t.Errorf("skus 3, sampleSKUs 4: %v, want ErrBadConfig naming sampleSKUs", err)
	}
}

func TestNormalizeRefuses(t *testing.T) {
	regions, stores := []string{"us-east-1"}, []string{"consensus", "replicated"}
	neg, big := -1.0, 2.0
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Rate: -3}, `"rate"`},
		{Config{Rate: 1e6}, `"rate"`},
		{Config{RatePerRegion: map[string]float64{"xx": 1}}, `region 'xx'`},
		{Config{RatePerRegion: map[string]float64{"us-east-1": 0}}, `"ratePerRegion".us-east-1`},
		{Config{ReadsPerBuy: &neg}, `"readsPerBuy"`},
		{Config{DoorbusterShare: &big}, `"doorbusterShare"`},
		{Config{Zipf: 1}, `"zipf"`},
		{Config{SKUs: -1}, `"skus"`},
		{Config{Stores: []string{"consensus", "consensus"}}, "named twice"},
		{Config{Stores: []string{"dynamo"}}, "store 'dynamo'"},
		{Config{Duration: Duration(time.Millisecond)}, `"duration"`},
		{Config{Doorbuster: "BF-000001"}, `"doorbuster"`},
		{Config{RestockEvery: Duration(time.Millisecond)}, `"restockEvery"`},
		{Config{Rate: 100_000, ReadsPerBuy: ptr(100.0)}, "operations a second"},
	} {
		_, err := tc.cfg.Normalize(regions, stores)
		if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: %v, want ErrBadConfig naming %s", tc.cfg, err, tc.field)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	var d Duration
	for in, want := range map[string]time.Duration{`"90s"`: 90 * time.Second, `30`: 30 * time.Second, `"1m"`: time.Minute} {
		if err := d.UnmarshalJSON([]byte(in)); err != nil || time.Duration(d) != want {
			t.Errorf("%s: %v %v", in, time.Duration(d), err)
		}
	}
	for _, in := range []string{`"soon"`, `true`, `1e300`} {
		if err := d.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

func TestScheduleAndConditions(t *testing.T) {
	var s schedule
	for k, v := range map[string]string{"cut": "ap-southeast-1@20s", "heal": "@40s", "latency": "a/b=300@5s", "quorum": "2/2@1m"} {
		if err := s.add(k, v); err != nil {
			t.Errorf("%s %s: %v", k, v, err)
		}
	}
	var at []time.Duration
	for _, f := range s {
		at = append(at, f.at)
	}
	if len(s) != 4 || at[0] != 5*time.Second || at[3] != time.Minute {
		t.Errorf("schedule not in time order: %v", s)
	}
	for k, v := range map[string]string{"cut": "ap-southeast-1", "crash": "@3s", "latency": "a/b@3s", "quorum": "two@3s", "heal": "@soon"} {
		if err := s.add(k, v); err == nil {
			t.Errorf("--%s %s: accepted", k, v)
		}
	}
	st := StoreStatus{Store: "replicated", Oversold: 3, SLOMet: false, Regions: []Figures{
		{Region: "a", P99Ms: 120, Availability: 99.5, StaleReads: 0},
		{Region: "b", P99Ms: 180, Availability: 97, StaleReads: 4},
	}}
	for text, want := range map[string]bool{
		"oversold>0": true, "oversold>3": false, "p99>150ms": true, "p99>200ms": false,
		"availability<99": true, "availability<90": false, "stale>0": true, "refused>5": false, "refused>2": true, "slo": true,
	} {
		c, err := parseCondition(text)
		if err != nil {
			t.Errorf("%s: %v", text, err)
			continue
		}
		if _, got := c.holds(st, 150); got != want {
			t.Errorf("%s holds = %v, want %v", text, got, want)
		}
	}
	for _, bad := range []string{"oversold", "joy>1", "p99>>3", ""} {
		if _, err := parseCondition(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// TestSKUTable: sold ≤ stocked bookkeeping, stale reads, restocks.
func TestSKUTable(t *testing.T) {
	tab := newSKUTable([]int64{3})
	tab.stocked[0].Store(3)
	g := tab.genSold[0].Load()
	tab.sell(0, g)
	tab.sell(0, g)
	if tab.stale(0, g, 3) { // sent before the two buys answered: 3 may be right
		t.Error("a read sent before the buys is not stale")
	}
	g2 := tab.genSold[0].Load()
	if !tab.stale(0, g2, 2) || tab.stale(0, g2, 1) {
		t.Error("after two buys answered, 2 left is stale and 1 is not")
	}
	tab.sell(0, g2)
	tab.sell(0, g2)
	if over, sold, stocked := tab.oversold(); over != 1 || sold != 4 || stocked != 3 {
		t.Errorf("oversold %d sold %d stocked %d, want 1 4 3", over, sold, stocked)
	}
	tab.restocking(0)
	mid := tab.genSold[0].Load()
	tab.sell(0, mid) // answered during the restock: not counted against the new level
	tab.restocked(0)
	if tab.stale(0, mid, 3) {
		t.Error("a read across a restock is never judged")
	}
	g3 := tab.genSold[0].Load()
	if tab.stale(0, g3, 3) || !tab.stale(0, g3, 4) {
		t.Error("after the restock, 3 is the most that can be left")
	}
	if over, _, stocked := tab.oversold(); over != 0 || stocked != 6 {
		t.Errorf("after the restock oversold %d stocked %d, want 0 6", over, stocked)
	}
}
