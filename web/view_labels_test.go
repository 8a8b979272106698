package web

import (
	"testing"

	"caplab/lab"
)

// The default map once put the "✂ cut" label of us-east-1 ⇄ ap-southeast-1
// on eu-west-1's breaker line (seen in the README screenshot).
func TestLinkLabelsClearOfRegionLabels(t *testing.T) {
	st := lab.State{Regions: []lab.RegionState{
		{Name: "us-east-1", Lat: 38.9, Lon: -77.0},
		{Name: "eu-west-1", Lat: 53.3, Lon: -6.3},
		{Name: "ap-southeast-1", Lat: 1.35, Lon: 103.8},
	}}
	mv := buildMap(st)
	for _, l := range mv.Links {
		if onRegionLabels(l.LX, l.LY, mv.Regions) {
			t.Errorf("label of %s at (%.0f,%.0f) covers a region's labels", linkID(l.A, l.B), l.LX, l.LY)
		}
		// still beside its own link: between the two ends
		lo, hi := min(l.X1, l.X2), max(l.X1, l.X2)
		if l.LX < lo || l.LX > hi {
			t.Errorf("label of %s at x=%.0f is off its link (%.0f..%.0f)", linkID(l.A, l.B), l.LX, lo, hi)
		}
	}
}
