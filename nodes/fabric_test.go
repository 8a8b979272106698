package nodes

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// upLinks lists the up links of a fabric as "a>b", sorted.
func upLinks(f *Fabric) []string {
	var out []string
	for _, l := range f.Links() {
		if l.Up {
			out = append(out, l.From+">"+l.To)
		}
	}
	sort.Strings(out)
	return out
}

func both(pairs ...string) []string {
	var out []string
	for _, p := range pairs {
		a, b, _ := strings.Cut(p, "-")
		out = append(out, a+">"+b, b+">"+a)
	}
	sort.Strings(out)
	return out
}

func TestFabricShapes(t *testing.T) {
	five := []string{"A", "B", "C", "D", "E"}
	cases := []struct {
		name    string
		regions []string
		op      func(f *Fabric) error
		up      []string
	}{
		{"partition {A,B}|{C,D,E} — not reachable by isolating single nodes", five,
			func(f *Fabric) error { return f.Partition([][]string{{"A", "B"}, {"C", "D", "E"}}) },
			both("A-B", "C-D", "C-E", "D-E")},
		{"isolate C", five, func(f *Fabric) error { return f.Isolate("C") },
			both("A-B", "A-D", "A-E", "B-D", "B-E", "D-E")},
		{"bridge via C on 3", []string{"A", "B", "C"}, func(f *Fabric) error { return f.Bridge("C") },
			both("A-C", "B-C")},
		{"bridge via C on 5", five, func(f *Fabric) error { return f.Bridge("C") },
			both("A-B", "D-E", "A-C", "B-C", "C-D", "C-E")},
		{"majorities ring on 5", five, func(f *Fabric) error { return f.MajoritiesRing() },
			both("A-B", "B-C", "C-D", "D-E", "E-A")},
		{"one-way cut", []string{"A", "B", "C"}, func(f *Fabric) error { return f.Cut("A", "B", true) },
			[]string{"A>C", "B>A", "B>C", "C>A", "C>B"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFabric(tc.regions, 0, nil)
			if err := tc.op(f); err != nil {
				t.Fatal(err)
			}
			if got := upLinks(f); !slices.Equal(got, tc.up) {
				t.Fatalf("up links\n got %v\nwant %v", got, tc.up)
			}
			// In a majorities ring every region sees a majority, and no two
			// see the same one.
			if strings.HasPrefix(tc.name, "majorities") {
				seen := map[string]bool{}
				for _, r := range tc.regions {
					view := []string{r}
					for _, o := range tc.regions {
						if o != r && f.Up(r, o) {
							view = append(view, o)
						}
					}
					sort.Strings(view)
					if len(view) <= len(tc.regions)/2 {
						t.Errorf("%s sees %v, not a majority", r, view)
					}
					if seen[fmt.Sprint(view)] {
						t.Errorf("%s sees the same majority %v as another region", r, view)
					}
					seen[fmt.Sprint(view)] = true
				}
			}
			f.HealAll()
			if n := len(upLinks(f)); n != len(tc.regions)*(len(tc.regions)-1) {
				t.Fatalf("after HealAll %d links up", n)
			}
		})
	}
}

func TestFabricLatency(t *testing.T) {
	f := newFabric([]string{"us-east-1", "eu-west-1", "ap-southeast-1"}, 0.5, nil)
	if err := f.SetRTT("us-east-1", "eu-west-1", 200, false); err != nil {
		t.Fatal(err)
	}
	if err := f.SetRTT("us-east-1", "ap-southeast-1", 300, true); err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{
		"us-east-1>eu-west-1":      50 * time.Millisecond, // 200/2 × 0.5
		"eu-west-1>us-east-1":      50 * time.Millisecond,
		"us-east-1>ap-southeast-1": 75 * time.Millisecond, // one way: 300/2 × 0.5
		"ap-southeast-1>us-east-1": time.Duration(227.0 / 2 * 0.5 * float64(time.Millisecond)),
	}
	for k, d := range want {
		a, b, _ := strings.Cut(k, ">")
		if got := f.link(a, b).oneWay(); got != d {
			t.Errorf("%s one-way delay %v, want %v", k, got, d)
		}
	}
}

func TestModelRTT(t *testing.T) {
	if rtt, measured := ModelRTT("us-east-1", "ap-southeast-1"); rtt != 227 || !measured {
		t.Fatalf("use1–apse1 = %v (measured %v), want the measured 227", rtt, measured)
	}
	if rtt, _ := ModelRTT("ap-southeast-1", "us-east-1"); rtt != 227 {
		t.Fatalf("RTT is not symmetric: %v", rtt)
	}
	// Unmeasured pairs are estimated from distance and marked so.
	rtt, measured := ModelRTT("eu-west-1", "sa-east-1")
	if measured {
		t.Fatal("eu-west-1–sa-east-1 is not in the measured table")
	}
	// Dublin–São Paulo ≈ 9,400 km → 2 × 9400 / 200,000 km/s × 1.5 ≈ 141 ms.
	if rtt < 120 || rtt > 160 {
		t.Fatalf("estimated eu-west-1–sa-east-1 = %v ms", rtt)
	}
	for _, a := range CatalogueNames() {
		for _, b := range CatalogueNames() {
			if r, _ := ModelRTT(a, b); (a == b) != (r == 0) {
				t.Errorf("RTT %s–%s = %v", a, b, r)
			}
		}
	}
}

func TestDeriveTiming(t *testing.T) {
	if got := DeriveTiming(DefaultRegions, 1); got.TickMs != 114 || got.ElectionMs != 1140 {
		t.Fatalf("scale 1: %+v, want heartbeat ½ × 227 ms, election 10 × heartbeat", got)
	}
	if got := DeriveTiming(DefaultRegions, 0); got.TickMs != MinTickMs {
		t.Fatalf("scale 0: %+v, want the floor %d", got, MinTickMs)
	}
}

func TestSubscriberThatStopsReadingNeverBlocks(t *testing.T) {
	c := startCluster(t, fastTiming)
	slow, cancelSlow := c.Subscribe()
	defer cancelSlow()
	fast, cancelFast := c.Subscribe()
	defer cancelFast()
	a, b := c.Regions()[0], c.Regions()[1]
	// The slow subscriber never reads while the fabric changes many times.
	for i := range 50 {
		if err := c.fabric.SetLink(a, b, i%2 == 1, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.fabric.Cut(a, b, false); err != nil {
		t.Fatal(err)
	}
	// The fast one sees the final cut promptly.
	deadline := time.After(5 * time.Second)
	for seen := false; !seen; {
		select {
		case s := <-fast:
			for _, l := range s.Links {
				if l.From == a && l.To == b && !l.Up {
					seen = true
				}
			}
		case <-deadline:
			t.Fatal("subscriber did not see the cut within 5 s")
		}
	}
	// The slow one holds exactly the newest snapshot, not a backlog.
	time.Sleep(2 * observeEvery)
	s := <-slow
	select {
	case <-slow:
		// a newer one may have arrived meanwhile (counters); that is fine
	default:
	}
	if s.Seq == 0 {
		t.Fatal("slow subscriber got no snapshot")
	}
}

func TestFiveRegionsMajoritySide(t *testing.T) {
	if testing.Short() {
		t.Skip("five regions")
	}
	regions, _ := FirstRegions(5)
	cfg := fastTiming
	cfg.Regions = regions
	c := startCluster(t, cfg)
	minority, majority := regions[:2], regions[2:]
	if err := c.fabric.Partition([][]string{minority, majority}); err != nil {
		t.Fatal(err)
	}
	// If the leader was on the minority side, the first writes time out
	// until the majority elects its own; then they commit.
	eventually(t, 20*time.Second, "the majority side of {A,B}|{C,D,E} commits", func() bool {
		return put(t, c, majority[0], "k", "majority", 2*time.Second) == nil
	})
	if !slices.Contains(majority, c.Leader()) {
		t.Fatalf("leader %q is not on the majority side", c.Leader())
	}
	eventually(t, 15*time.Second, "minority loses its leader", func() bool {
		return regionStatus(c, minority[0]).Leader == "" && regionStatus(c, minority[1]).Leader == ""
	})
	if err := put(t, c, minority[0], "k", "minority", 2*time.Second); err == nil {
		t.Fatal("minority side committed a write")
	}
	c.fabric.HealAll()
	assertConverged(t, c, "k", "majority")
}
