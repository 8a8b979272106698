package inventory

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestValidateQuorum(t *testing.T) {
	tests := []struct {
		n, w, r int
		wantErr string // "" = valid
	}{
		{3, 1, 1, ""},
		{3, 3, 3, ""},
		{3, 2, 2, ""},
		{1, 1, 1, ""},
		{3, 4, 1, "bad input: w must be between 1 and 3 (got 4)"},
		{3, 0, 1, "bad input: w must be between 1 and 3 (got 0)"},
		{3, 1, 0, "bad input: r must be between 1 and 3 (got 0)"},
		{5, 2, 6, "bad input: r must be between 1 and 5 (got 6)"},
		{0, 1, 1, "bad input: the replicated store needs at least 1 replica (got 0)"},
	}
	for _, tt := range tests {
		err := ValidateQuorum(tt.n, tt.w, tt.r)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("ValidateQuorum(%d,%d,%d) = %v, want nil", tt.n, tt.w, tt.r, err)
			}
			continue
		}
		if err == nil || err.Error() != tt.wantErr || !errors.Is(err, ErrBadInput) {
			t.Errorf("ValidateQuorum(%d,%d,%d) = %v, want %q wrapping ErrBadInput", tt.n, tt.w, tt.r, err, tt.wantErr)
		}
	}
}

func TestMajorityAndPresets(t *testing.T) {
	for _, tt := range []struct{ n, maj int }{{1, 1}, {2, 2}, {3, 2}, {4, 3}, {5, 3}, {7, 4}} {
		if got := Majority(tt.n); got != tt.maj {
			t.Errorf("Majority(%d) = %d, want %d", tt.n, got, tt.maj)
		}
		s := StrictQuorum(tt.n)
		if s != (QuorumState{N: tt.n, W: tt.maj, R: tt.maj}) || !Overlaps(s.N, s.W, s.R) || ValidateQuorum(s.N, s.W, s.R) != nil {
			t.Errorf("StrictQuorum(%d) = %+v: want valid overlapping majorities", tt.n, s)
		}
		g := GlobalTables(tt.n)
		if g != (QuorumState{N: tt.n, W: 1, R: 1}) || ValidateQuorum(g.N, g.W, g.R) != nil {
			t.Errorf("GlobalTables(%d) = %+v", tt.n, g)
		}
		if Overlaps(g.N, g.W, g.R) != (tt.n == 1) {
			t.Errorf("GlobalTables(%d) overlaps = %v", tt.n, Overlaps(g.N, g.W, g.R))
		}
	}
}

// TestOverlapsExhaustive checks W+R>N against its meaning: every write set
// of size w intersects every read set of size r among n replicas.
func TestOverlapsExhaustive(t *testing.T) {
	for n := 1; n <= 6; n++ {
		for w := 1; w <= n; w++ {
			for r := 1; r <= n; r++ {
				want := true
				for ws := 0; ws < 1<<n && want; ws++ {
					if quorumPopcount(ws) != w {
						continue
					}
					for rs := 0; rs < 1<<n; rs++ {
						if quorumPopcount(rs) == r && ws&rs == 0 {
							want = false
							break
						}
					}
				}
				if got := Overlaps(n, w, r); got != want {
					t.Errorf("Overlaps(%d,%d,%d) = %v, want %v", n, w, r, got, want)
				}
			}
		}
	}
}

func quorumPopcount(x int) int {
	c := 0
	for ; x != 0; x &= x - 1 {
		c++
	}
	return c
}

func TestNewest(t *testing.T) {
	v := func(wall, logical int64, region string) Version { return Version{wall, logical, region} }
	tests := []struct {
		name      string
		items     []Item
		want      Item
		wantStale []int
	}{
		{"none", nil, Item{}, nil},
		{"one", []Item{{3, v(1, 0, "a")}}, Item{3, v(1, 0, "a")}, nil},
		{"all agree", []Item{{3, v(1, 0, "a")}, {3, v(1, 0, "a")}}, Item{3, v(1, 0, "a")}, nil},
		{"one stale", []Item{{3, v(1, 0, "a")}, {2, v(2, 0, "b")}, {2, v(2, 0, "b")}}, Item{2, v(2, 0, "b")}, []int{0}},
		{"never written replica", []Item{{}, {5, v(9, 0, "a")}}, Item{5, v(9, 0, "a")}, []int{0}},
		{"logical and region", []Item{{1, v(5, 1, "a")}, {2, v(5, 1, "b")}, {3, v(5, 0, "c")}}, Item{2, v(5, 1, "b")}, []int{0, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, stale := Newest(tt.items)
			if got != tt.want || !slices.Equal(stale, tt.wantStale) {
				t.Errorf("Newest = %+v, %v; want %+v, %v", got, stale, tt.want, tt.wantStale)
			}
		})
	}
}

func TestNewestMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 2000 {
		items := make([]Item, 1+rng.IntN(5))
		for j := range items {
			items[j] = lwwGenItem(rng)
		}
		want := lwwRefNewest(items)
		got, stale := Newest(items)
		if got != want {
			t.Fatalf("#%d Newest(%+v) = %+v, want %+v", i, items, got, want)
		}
		for j, it := range items {
			if slices.Contains(stale, j) == (it == want) {
				t.Fatalf("#%d: reply %d (%+v) stale=%v against newest %+v", i, j, it, slices.Contains(stale, j), want)
			}
		}
	}
}
