package lessons

import (
	"slices"
	"strconv"
	"strings"

	"caplab/lab/inventory"
)

// --- the arguments commands share: store, SKU, region, zone, numbers,
// links, region lists, consistency.

func (lp *lineParser) store() inventory.Store {
	t := lp.next("STORE (consensus, replicated or geo)")
	if s := inventory.Store(t.text); slices.Contains(inventory.Stores, s) {
		return s
	}
	lp.fail("unknown store %s (expected consensus, replicated or geo)", t.show())
	return ""
}

func (lp *lineParser) sku() string {
	t := lp.next("SKU")
	if !inventory.ValidSKU(t.text) {
		lp.fail("invalid SKU %s (expected 1 to 64 characters from A-Z, a-z, 0-9, '.', '_', '-')", t.show())
	}
	return t.text
}

func (lp *lineParser) region() string {
	t := lp.next("REGION")
	return lp.checkRegion(t)
}

func (lp *lineParser) checkRegion(t token) string {
	if slices.Contains(lp.p.regions, t.text) {
		return t.text
	}
	lesson := strings.Join(lp.p.regions, ", ")
	if slices.Contains(KnownRegions(), t.text) {
		lp.fail("region %s is not in this lesson (lesson regions: %s; add it to regions: in the front matter)", t.show(), lesson)
	}
	lp.fail("unknown region %s (lesson regions: %s)", t.show(), lesson)
	return ""
}

// regionOrZone parses a lesson region or one of its zones (us-east-1a:
// the region's name and a zone letter a to c).
func (lp *lineParser) regionOrZone() string {
	t := lp.next("REGION or ZONE")
	if n := len(t.text); n > 1 && t.text[n-1] >= 'a' && t.text[n-1] <= 'c' && slices.Contains(lp.p.regions, t.text[:n-1]) {
		return t.text
	}
	return lp.checkRegion(t)
}

// split parses "A=4,B=6" (commas optional): units per lesson region,
// adding up to total; regions not named get 0.
func (lp *lineParser) split(total int) map[string]int {
	out := map[string]int{}
	sum := 0
	for lp.more() {
		if t, _ := lp.peek(); t.is(",") {
			lp.i++
			continue
		}
		r := lp.region()
		if _, dup := out[r]; dup {
			lp.fail("stock: region %s is split twice", strconv.Quote(r))
		}
		lp.keyword("=", "the region")
		n := lp.integer("units", 0, MaxStock)
		out[r] = n
		sum += n
	}
	if len(out) == 0 {
		lp.fail("stock: split needs REGION=N pairs (usage: %s)", usage("stock"))
	}
	if sum != total {
		lp.fail("stock: the split adds up to %d but N is %d", sum, total)
	}
	return out
}

// integer parses a whole number in [lo, hi].
func (lp *lineParser) integer(what string, lo, hi int) int {
	t := lp.next(what)
	n, err := strconv.Atoi(t.text)
	if !digitsPattern.MatchString(t.text) || err != nil || n < lo || n > hi {
		lp.fail("%s: %s must be a whole number from %d to %d, got %s", lp.cmd, what, lo, hi, t.show())
	}
	return n
}

// link parses "A B" or "A -> B".
func (lp *lineParser) link() (from, to string, oneWay bool) {
	from = lp.region()
	if t, ok := lp.peek(); ok && t.is("->") {
		lp.i++
		oneWay = true
	}
	to = lp.region()
	if from == to {
		lp.fail("%s: a region has no link to itself (got %s twice; expected two different regions)", lp.cmd, strconv.Quote(from))
	}
	return from, to, oneWay
}

// regionList parses "A,B,C" (commas optional) up to the end or a stop word.
func (lp *lineParser) regionList(stop string) []string {
	var out []string
	for lp.more() {
		t, _ := lp.peek()
		if stop != "" && t.is(stop) {
			break
		}
		lp.i++
		if t.is(",") {
			continue
		}
		if t.punct() {
			lp.fail("%s: unexpected %s in a region list (usage: %s)", lp.cmd, t.show(), usage(lp.cmd))
		}
		r := lp.checkRegion(t)
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func (lp *lineParser) consistency() inventory.Consistency {
	if t, ok := lp.peek(); ok {
		switch c := inventory.Consistency(t.text); c {
		case inventory.Linearizable, inventory.Serializable, inventory.Cached:
			lp.i++
			return c
		}
	}
	return ""
}
