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

// Link labels never overlap each other nor sit on a link's line, and no
// link runs through a region's caption, on the default map. (A dense map,
// four regions or more, shows a round trip only on hover or focus.)
func TestLinkLabelsNeverOverlap(t *testing.T) {
	all := []lab.RegionState{
		{Name: "us-east-1", Lat: 38.9, Lon: -77.0},
		{Name: "eu-west-1", Lat: 53.3, Lon: -6.3},
		{Name: "ap-southeast-1", Lat: 1.35, Lon: 103.8},
		{Name: "us-west-2", Lat: 45.8, Lon: -119.7},
		{Name: "eu-central-1", Lat: 50.1, Lon: 8.7},
	}
	for _, n := range []int{3} {
		mv := buildMap(lab.State{Regions: all[:n]})
		var boxes [][4]float64
		for i, l := range mv.Links {
			box := [4]float64{l.LX - linkLabelW/2, l.LY - linkLabelH/2, l.LX + linkLabelW/2, l.LY + linkLabelH/2}
			if boxHitsBoxes(box, boxes) {
				t.Errorf("%d regions: the label of %s overlaps another label", n, linkID(l.A, l.B))
			}
			if boxHitsLinks(box, mv.Links, i) {
				t.Errorf("%d regions: the label of %s sits on another link", n, linkID(l.A, l.B))
			}
			if segmentHitsBox(l.X1, l.Y1, l.X2, l.Y2, box) {
				t.Errorf("%d regions: the label of %s sits on its own line", n, linkID(l.A, l.B))
			}
			boxes = append(boxes, box)
			for _, r := range mv.Regions {
				if r.Name == l.A || r.Name == l.B {
					continue
				}
				caption := [4]float64{r.X - 50, r.Y + 28, r.X + 50, r.Y + 64}
				if segmentHitsBox(l.X1, l.Y1, l.X2, l.Y2, caption) {
					t.Errorf("%d regions: the link %s runs through %s's caption", n, linkID(l.A, l.B), r.Name)
				}
			}
		}
	}
}
