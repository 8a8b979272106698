package web

import (
	"math"
	"strings"
	"testing"

	"caplab/lab"
	"caplab/lab/inventory"
)

func TestBuildMapKeepsRegionsApartAndInView(t *testing.T) {
	cities := []lab.RegionState{
		{Name: "us-east-1", Lat: 38.9, Lon: -77.0},
		{Name: "eu-west-1", Lat: 53.3, Lon: -6.3},
		{Name: "eu-central-1", Lat: 50.1, Lon: 8.7},
		{Name: "ap-southeast-1", Lat: 1.35, Lon: 103.8},
		{Name: "ap-northeast-1", Lat: 35.7, Lon: 139.7},
		{Name: "us-west-2", Lat: 45.5, Lon: -122.7},
		{Name: "sa-east-1", Lat: -23.5, Lon: -46.6},
	}
	for n := 1; n <= len(cities); n++ {
		st := lab.State{Regions: cities[:n]}
		mv := buildMap(st)
		if len(mv.Regions) != n || len(mv.Links) != n*(n-1)/2 {
			t.Fatalf("%d regions: got %d regions, %d links", n, len(mv.Regions), len(mv.Links))
		}
		for i, a := range mv.Regions {
			if a.X < mv.MinX || a.X > mv.MinX+mv.W || a.Y < mv.MinY || a.Y > mv.MinY+mv.H {
				t.Errorf("%d regions: %s at (%.0f,%.0f) outside the view %s", n, a.Name, a.X, a.Y, mv.ViewBox)
			}
			for _, b := range mv.Regions[i+1:] {
				if d := math.Hypot(a.X-b.X, a.Y-b.Y); d < minRegionGap-1 {
					t.Errorf("%d regions: %s and %s only %.0f apart", n, a.Name, b.Name, d)
				}
			}
		}
	}
}

func TestLinkLabelSaysWhatIsCut(t *testing.T) {
	up := lab.LinkState{State: "up", RTTMs: 75.6}
	cut := lab.LinkState{State: "cut"}
	cases := []struct {
		fwd, rev    lab.LinkState
		label, kind string
	}{
		{up, up, "76 ms", "up"},
		{cut, cut, "✂ cut", "cut"},
		{cut, up, "✂ one way", "oneway"},
		{up, cut, "✂ one way", "oneway"},
	}
	for _, tc := range cases {
		l := mapLink{A: "a", B: "b", Fwd: tc.fwd, Rev: tc.rev}
		if got := linkLabel(l); got != tc.label {
			t.Errorf("label %q, want %q", got, tc.label)
		}
		if d := linkDetail(l); tc.kind == "oneway" && ((tc.fwd.State == "cut") != strings.Contains(d, "a → b cut") || (tc.rev.State == "cut") != strings.Contains(d, "b → a cut")) {
			t.Errorf("detail %q for fwd %s, rev %s", d, tc.fwd.State, tc.rev.State)
		}
		if got := linkState(l); got != tc.kind {
			t.Errorf("state %q, want %q", got, tc.kind)
		}
	}
}

func TestQuorumSentence(t *testing.T) {
	if s := quorumSentence(inventory.QuorumState{N: 3, W: 2, R: 2}); s == "" || s[:13] != "W + R = 4 > N" {
		t.Errorf("strict: %q", s)
	}
	if s := quorumSentence(inventory.QuorumState{N: 3, W: 1, R: 1}); s == "" || s[:13] != "W + R = 2 ≤ N"[:13] {
		t.Errorf("loose: %q", s)
	}
}
