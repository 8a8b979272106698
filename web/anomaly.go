package web

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"caplab/lab"
	"caplab/lab/check"
	"caplab/lab/inventory"
)

// Anomaly cards (a-class issue): for every failed check, the smallest
// counterexample the checker found (check.Counterexample) — two or three
// answers on a mini-timeline with one plain sentence, linked to that
// moment of the timeline. Rendered with the verdict (anomaly.templ).

// anomalyCard is what a card shows for one store.
type anomalyCard struct {
	Store    inventory.Store
	Sentence string
	// Proof: whether Bars are a proof on their own (the smallest
	// counterexample), or only the answer the checker could not place.
	Proof bool
	Bars  []anomalyBar
	At    time.Time // the moment that shows it (zero: none)
	Width int       // of the mini-timeline, px
}

// anomalyBar is one answer on the mini-timeline.
type anomalyBar struct {
	Op      inventory.Operation
	Context bool // the restock they follow: not part of the proof
	X, W, Y int
	Label   string // on the bar: the city and the answer in a few words
	Words   string // in the list: region, times, what it read and did
}

// Mini-timeline geometry.
const (
	anomalyWidth = 420
	anomalyRow   = 22
	anomalyLeft  = 4
)

// cardOf is the card for row, or nil when the check did not fail (or
// failed without naming an answer: a timeout). unplaced is the operation
// the checker could not place, when the result names one and has no
// counterexample.
func cardOf(row verdictRow) *anomalyCard {
	res := row.Result
	if row.Err != "" || res.Linearizable || res.TimedOut || res.Operations == 0 {
		return nil
	}
	c := &anomalyCard{Store: row.Store, Width: anomalyWidth}
	var ops []inventory.Operation
	context := -1
	switch ce := res.Counterexample; {
	case ce != nil:
		c.Proof, c.Sentence, c.At = true, cityWords(ce.Sentence), ce.At
		if ce.Restock != nil {
			ops, context = append(ops, *ce.Restock), 0
		}
		ops = append(ops, ce.Operations...)
	case res.Unplaced != nil:
		c.Sentence = cityWords(res.Unplaced.Sentence) + " No two or three answers prove it on their own: it takes the answers before it."
		if row.Unplaced != nil {
			ops = append(ops, *row.Unplaced)
			c.At = row.Unplaced.Return
		}
	default:
		return nil
	}
	if len(ops) == 0 {
		return c
	}
	t0, t1 := ops[0].Call, ops[0].Return
	for _, o := range ops {
		t0 = minTime(t0, o.Call)
		t1 = maxTime(t1, o.Return)
	}
	span := max(t1.Sub(t0), time.Millisecond)
	x := func(t time.Time) int {
		return anomalyLeft + int(float64(t.Sub(t0))/float64(span)*float64(anomalyWidth-2*anomalyLeft))
	}
	for i, o := range ops {
		b := anomalyBar{Op: o, Context: i == context, X: x(o.Call), Y: 4 + i*anomalyRow}
		b.W = max(6, x(o.Return)-b.X)
		b.Label = lab.CityName(o.Region) + ": " + answerWords(o)
		b.Words = fmt.Sprintf("%s (%s), %s store: %s — called %s, answered %s.", lab.CityName(o.Region), o.Region, o.Store,
			answerWords(o), clock(o.Call), clock(o.Return))
		c.Bars = append(c.Bars, b)
	}
	return c
}

// answerWords is an answer in a few words: what a buy read and left, a
// read's count, a restock's units.
func answerWords(o inventory.Operation) string {
	switch {
	case o.Op == inventory.OpStock:
		return "stocked " + strconv.Itoa(o.Qty)
	case o.Op == inventory.OpBuy && o.Outcome == inventory.OK:
		return fmt.Sprintf("read %d left, sold %d, left %d", o.Quantity+o.Qty, o.Qty, o.Quantity)
	case o.Op == inventory.OpBuy:
		return "buy " + strings.ReplaceAll(string(o.Outcome), "_", " ")
	}
	return "read " + strconv.Itoa(o.Quantity)
}

// clock is a time of day to the millisecond, as the mini-timeline says it.
func clock(t time.Time) string { return t.Local().Format("15:04:05.000") }

// rfc3339 is t as GET /api/state?at= takes it.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// cityWords puts each catalogue region named in s as its city
// ("us-east-1 and ap-southeast-1 both read…" → "N. Virginia and
// Singapore both read…").
func cityWords(s string) string {
	var names []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool {
		return !(r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) {
		if c := lab.CityName(f); c != f && !slices.Contains(names, f) {
			names = append(names, f)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) }) // longest first
	for _, n := range names {
		s = strings.ReplaceAll(s, n, lab.CityName(n))
	}
	return s
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// unplacedOp is the recorded operation a failed check could not place,
// when the result names one but holds no counterexample (the card then
// shows it alone).
func unplacedOp(l Lab, res check.Result) *inventory.Operation {
	if res.Linearizable || res.Counterexample != nil || res.Unplaced == nil || res.Unplaced.ID == 0 {
		return nil
	}
	for _, o := range l.History(res.Unplaced.SKU).Operations {
		if o.ID == res.Unplaced.ID {
			return &o
		}
	}
	return nil
}

// atAttr is the card's moment for data-at, "" when none.
func atAttr(c *anomalyCard) string {
	if c.At.IsZero() {
		return ""
	}
	return rfc3339(c.At)
}
