package inventory

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// The rules of input, each written once. Every layer that takes input from
// a person (the web API, a lesson line, a load's configuration, the lab
// itself) checks it against these rules; each keeps its own sentence, since
// its messages are part of its contract (a 400's text, a lesson's
// file:line error).

// SKUPattern is the one rule for a SKU: 1 to MaxSKULen letters, digits,
// '.', '_' or '-'. The '-' is escaped so that the same text also reads
// right as an HTML pattern attribute.
const SKUPattern = `^[A-Za-z0-9._\-]{1,64}$`

// MaxSKULen is the longest SKU, in bytes (every allowed character is one).
const MaxSKULen = 64

// ValidSKU reports whether s follows SKUPattern. It is a loop over the
// bytes, not the regular expression: every operation checks its SKU, and
// the regexp was 5 % of the lab's CPU at 100,000 cached reads a second
// (TestValidSKUIsSKUPattern holds the two together).
func ValidSKU(s string) bool {
	if len(s) < 1 || len(s) > MaxSKULen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// CheckSKU checks a SKU against SKUPattern.
func CheckSKU(sku string) error {
	if ValidSKU(sku) {
		return nil
	}
	return fmt.Errorf("%w: SKU %s must be 1 to 64 letters, digits, '.', '_' or '-'", ErrBadInput, Echo(sku))
}

// A buy asks for MinQty to MaxQty units.
const (
	MinQty = 1
	MaxQty = 1000
)

// CheckQty checks a buy quantity (MinQty..MaxQty).
func CheckQty(qty int) error {
	if qty >= MinQty && qty <= MaxQty {
		return nil
	}
	return fmt.Errorf("%w: qty must be a whole number from %d to %d (got %d)", ErrBadInput, MinQty, MaxQty, qty)
}

// MaxStock bounds a stock level (and a geo allocation, and their sum).
const MaxStock = 1_000_000

// CheckStockQuantity checks a stock level (0..MaxStock).
func CheckStockQuantity(quantity int) error {
	if quantity >= 0 && quantity <= MaxStock {
		return nil
	}
	return fmt.Errorf("%w: quantity must be a whole number from 0 to %d (got %d)", ErrBadInput, MaxStock, quantity)
}

// ParseStore checks a store name.
func ParseStore(name string) (Store, error) {
	if s := Store(name); slices.Contains(Stores, s) {
		return s, nil
	}
	return "", fmt.Errorf("%w: store %s does not exist (stores: consensus, replicated, geo)", ErrUnknownStore, Echo(name))
}

// ParseConsistency checks a read's consistency; "" means Linearizable.
func ParseConsistency(c Consistency) (Consistency, error) {
	switch c {
	case "":
		return Linearizable, nil
	case Linearizable, Serializable, Cached:
		return c, nil
	}
	return "", fmt.Errorf("%w: consistency must be linearizable, serializable or cached (got %s)", ErrBadInput, Echo(string(c)))
}

// MaxPause bounds a shop pause.
const MaxPause = 60 * time.Second

// CheckPause checks a pause's length: more than 0, at most MaxPause.
func CheckPause(seconds float64) error {
	if math.IsNaN(seconds) || seconds <= 0 || seconds > MaxPause.Seconds() {
		return fmt.Errorf("%w: a pause must last more than 0 and at most %g seconds (got %g)", ErrBadInput, MaxPause.Seconds(), seconds)
	}
	return nil
}

// CheckRegion returns an error naming the valid regions unless name is one
// of regions.
func CheckRegion(regions []string, name string) error {
	if slices.Contains(regions, name) {
		return nil
	}
	return fmt.Errorf("%w: region %s is not in this lab (regions: %s)", ErrUnknownRegion, Echo(name), strings.Join(regions, ", "))
}

// CheckAllocations checks a geo stock's split over regions and returns it
// with every region listed (0 where none was given) and its total. Without
// allocations the quantity is the total (quantity < 0: not given); with
// both, they must add up.
func CheckAllocations(regions []string, quantity int, allocations map[string]int) (map[string]int, int, error) {
	if len(allocations) == 0 {
		if err := CheckStockQuantity(quantity); err != nil {
			return nil, 0, err
		}
		return nil, quantity, nil
	}
	names := make([]string, 0, len(allocations))
	for r := range allocations {
		names = append(names, r)
	}
	sort.Strings(names)
	total := 0
	out := map[string]int{}
	for _, r := range names {
		if err := CheckRegion(regions, r); err != nil {
			return nil, 0, fmt.Errorf("%w (allocations name regions)", err)
		}
		n := allocations[r]
		if n < 0 || n > MaxStock {
			return nil, 0, fmt.Errorf("%w: the allocation of %s must be a whole number from 0 to %d (got %d)", ErrBadInput, r, MaxStock, n)
		}
		total += n
		out[r] = n
	}
	for _, r := range regions {
		if _, ok := out[r]; !ok {
			out[r] = 0
		}
	}
	if total > MaxStock {
		return nil, 0, fmt.Errorf("%w: the allocations add up to %d, more than %d", ErrBadInput, total, MaxStock)
	}
	if quantity >= 0 && quantity != total {
		return nil, 0, fmt.Errorf("%w: the allocations add up to %d but quantity is %d; give matching numbers or only one of them", ErrBadInput, total, quantity)
	}
	return out, total, nil
}
