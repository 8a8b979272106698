package inventory

import (
	"math/rand/v2"
	"slices"
	"testing"
	"testing/quick"
)

// lwwGenItem draws items from a small space so that equal walls, equal
// versions and zero versions are all common.
func lwwGenItem(rng *rand.Rand) Item {
	if rng.IntN(6) == 0 {
		return Item{Quantity: rng.IntN(3)}
	}
	return Item{
		Quantity: rng.IntN(5),
		Version: Version{
			Wall:    int64(rng.IntN(4)),
			Logical: int64(rng.IntN(3)),
			Region:  []string{"", "a", "b"}[rng.IntN(3)],
		},
	}
}

// lwwRefNewest is the reference: sort by the documented order and take the last.
func lwwRefNewest(items []Item) Item {
	s := slices.Clone(items)
	slices.SortFunc(s, func(a, b Item) int {
		aw, bw := !a.Version.IsZero(), !b.Version.IsZero()
		switch {
		case aw != bw && aw:
			return 1
		case aw != bw:
			return -1
		case a.Version.Less(b.Version):
			return -1
		case b.Version.Less(a.Version):
			return 1
		}
		return a.Quantity - b.Quantity
	})
	return s[len(s)-1]
}

func TestMergeExamples(t *testing.T) {
	old := Item{Quantity: 5, Version: Version{Wall: 10, Region: "us-east-1"}}
	newer := Item{Quantity: 4, Version: Version{Wall: 10, Logical: 1, Region: "eu-west-1"}}
	tieRegion := Item{Quantity: 3, Version: Version{Wall: 10, Logical: 1, Region: "us-east-1"}}
	never := Item{}
	negative := Item{Quantity: 1, Version: Version{Wall: -1}}
	tests := []struct {
		name string
		a, b Item
		want Item
	}{
		{"newer logical wins", old, newer, newer},
		{"region breaks a tie", newer, tieRegion, tieRegion},
		{"never written loses", never, old, old},
		{"never written loses even to a negative wall", negative, never, negative},
		{"same item", old, old, old},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Merge(tt.a, tt.b); got != tt.want {
				t.Errorf("Merge(a, b) = %+v, want %+v", got, tt.want)
			}
			if got := Merge(tt.b, tt.a); got != tt.want {
				t.Errorf("Merge(b, a) = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMergeProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 20000 {
		a, b, c := lwwGenItem(rng), lwwGenItem(rng), lwwGenItem(rng)
		if Merge(a, b) != Merge(b, a) {
			t.Fatalf("#%d not commutative: %+v, %+v", i, a, b)
		}
		if Merge(Merge(a, b), c) != Merge(a, Merge(b, c)) {
			t.Fatalf("#%d not associative: %+v, %+v, %+v", i, a, b, c)
		}
		if Merge(a, a) != a {
			t.Fatalf("#%d not idempotent: %+v", i, a)
		}
		if m := Merge(a, b); m != a && m != b {
			t.Fatalf("#%d Merge invented %+v from %+v, %+v", i, m, a, b)
		}
	}
}

// TestMergeAnyOrder merges sets in random orders, with duplicates, and
// compares with the reference maximum.
func TestMergeAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		items := make([]Item, 1+rng.IntN(8))
		for j := range items {
			items[j] = lwwGenItem(rng)
		}
		want := lwwRefNewest(items)
		for range 5 {
			order := slices.Clone(items)
			rng.Shuffle(len(order), func(x, y int) { order[x], order[y] = order[y], order[x] })
			order = append(order, order[:rng.IntN(len(order))]...) // redeliveries
			got := order[0]
			for _, it := range order[1:] {
				got = Merge(got, it)
			}
			if got != want {
				t.Fatalf("#%d: merge of %+v in order %+v = %+v, want %+v", i, items, order, got, want)
			}
		}
	}
}

// TestMergeQuick checks commutativity and idempotence over arbitrary items
// (testing/quick draws any int64 walls, including negative ones).
func TestMergeQuick(t *testing.T) {
	commutative := func(a, b Item) bool { return Merge(a, b) == Merge(b, a) }
	idempotent := func(a Item) bool { return Merge(a, a) == a }
	associative := func(a, b, c Item) bool { return Merge(Merge(a, b), c) == Merge(a, Merge(b, c)) }
	for name, f := range map[string]any{"commutative": commutative, "idempotent": idempotent, "associative": associative} {
		if err := quick.Check(f, nil); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
