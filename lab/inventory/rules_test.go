package inventory_test

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"caplab/lab/inventory"
)

// TestValidSKUIsSKUPattern: the hand-written check says what the published
// pattern says, on the edges and on random strings over every byte.
func TestValidSKUIsSKUPattern(t *testing.T) {
	re := regexp.MustCompile(inventory.SKUPattern)
	cases := []string{"", "A", "IPHONE-15-PRO", "a.b_c-d", strings.Repeat("x", 64), strings.Repeat("x", 65),
		"with space", "ü", "SKU\n", "\x00", "-", ".", "_", "a/b", "a\\b", "[", "^", "$"}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := "azAZ09._-/ \x00\xff[]^$\\é"
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(70) {
			if rng.IntN(4) == 0 {
				b.WriteByte(byte(rng.IntN(256)))
			} else {
				b.WriteByte(alphabet[rng.IntN(len(alphabet))])
			}
		}
		cases = append(cases, b.String())
	}
	valid := 0
	for _, c := range cases {
		want := re.MatchString(c)
		if got := inventory.ValidSKU(c); got != want {
			t.Fatalf("ValidSKU(%q) = %v, the pattern says %v", c, got, want)
		}
		if want {
			valid++
		}
	}
	if valid < 100 || valid > len(cases)-100 {
		t.Fatalf("%d of %d cases valid: the test does not try both sides", valid, len(cases))
	}
}
