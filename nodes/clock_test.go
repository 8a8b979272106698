package nodes

import (
	"errors"
	"testing"
	"time"
)

func TestClocks(t *testing.T) {
	c := NewClocks([]string{"us-east-1", "eu-west-1"})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	c.now = func() time.Time { return now }
	if got := c.Now("eu-west-1"); !got.Equal(t0) {
		t.Fatalf("a fresh clock reads %v, want true time %v", got, t0)
	}
	if err := c.Set("eu-west-1", ClockSetting{OffsetMs: 5000, DriftPpm: 1000}); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(10 * time.Second) // 1000 ppm of 10 s is 10 ms
	if got, want := c.Now("eu-west-1"), now.Add(5010*time.Millisecond); !got.Equal(want) {
		t.Fatalf("skewed clock reads %v, want %v", got, want)
	}
	if got := c.Now("us-east-1"); !got.Equal(now) {
		t.Fatalf("another region's clock moved: %v", got)
	}
	if st := c.State("eu-west-1"); st.OffsetMs != 5000 || st.SkewMs != 5010 {
		t.Fatalf("state %+v", st)
	}
	for _, bad := range []struct {
		region string
		s      ClockSetting
	}{
		{"eu-west-1", ClockSetting{OffsetMs: 3_600_001}},
		{"eu-west-1", ClockSetting{OffsetMs: -3_600_001}},
		{"eu-west-1", ClockSetting{DriftPpm: 200_000}},
		{"mars-1", ClockSetting{OffsetMs: 1}},
	} {
		if err := c.Set(bad.region, bad.s); !errors.Is(err, ErrBadOperation) {
			t.Errorf("Set(%s, %+v) = %v, want ErrBadOperation", bad.region, bad.s, err)
		}
	}
	if st := c.State("eu-west-1"); st.OffsetMs != 5000 {
		t.Fatalf("a refused setting changed the clock: %+v", st)
	}
	c.Reset()
	if got := c.Now("eu-west-1"); !got.Equal(now) {
		t.Fatalf("after reset the clock reads %v, want true time", got)
	}
}
