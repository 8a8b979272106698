package lessons

import (
	"slices"
	"strings"

	"caplab/lab/inventory"
)

// --- expect lines and ask blocks, and the "did you mean" suggestions.

func outcomeKinds() []inventory.Kind {
	return inventory.Kinds
}

// kindList spells the outcomes for an error: "ok, sold_out, …".
func kindList() string {
	names := make([]string, len(inventory.Kinds))
	for i, k := range inventory.Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

func (lp *lineParser) expect() Action {
	t := lp.next("what to expect (leader, read, check or load)")
	switch {
	case t.is("load"):
		return lp.expectLoad() // load.go
	case t.is("leader"):
		lp.cmd = "expect leader"
		lp.keyword("in", `"leader"`)
		regions := lp.regionList("")
		if len(regions) == 0 {
			lp.fail("expect leader: missing regions (usage: %s)", usage(lp.cmd))
		}
		return ExpectLeader{Regions: regions}
	case t.is("read"):
		lp.cmd = "expect read"
		e := ExpectRead{Store: lp.store(), SKU: lp.sku()}
		lp.keyword("from", "the SKU")
		e.Region = lp.region()
		e.Consistency = lp.consistency()
		eq, ok := lp.peek()
		if !ok || !eq.is("=") {
			what := "the end of the line"
			if ok {
				what = eq.show()
			}
			lp.fail("expect read: expected \"= N\", got %s (usage: %s)", what, usage(lp.cmd))
		}
		lp.i++
		e.Quantity = lp.integer("N", 0, MaxStock)
		return e
	case t.is("check"):
		lp.cmd = "expect check"
		store, sku := lp.store(), lp.sku()
		v := lp.next("linearizable, not linearizable or oversold")
		switch {
		case v.is("linearizable"):
			return ExpectLinearizable{Store: store, SKU: sku, Want: true}
		case v.is("not"):
			lp.keyword("linearizable", `"not"`)
			return ExpectLinearizable{Store: store, SKU: sku, Want: false}
		case v.is("oversold"):
			op, ok := lp.peek()
			if !ok || !(op.is("=") || op.is(">=")) {
				lp.fail("expect check: expected = or >= after \"oversold\" (usage: %s)", usage(lp.cmd))
			}
			lp.i++
			return ExpectOversold{Store: store, SKU: sku, AtLeast: op.is(">="), N: lp.integer("N", 0, MaxStock)}
		}
		lp.fail("expect check: unknown verdict %s (expected linearizable, not linearizable, oversold = N or oversold >= N)", v.show())
	}
	lp.fail("unknown expectation %s (expected leader, read, check or load; usage: %s)", t.show(), usage("expect"))
	return nil
}

// phrase joins the words up to the next "|" or the stop word.
func (lp *lineParser) phrase(stop string) string {
	var words []string
	for lp.more() {
		t, _ := lp.peek()
		if t.is("|") || t.is(stop) {
			break
		}
		if t.punct() {
			lp.fail("ask: unexpected %s (put options with punctuation in quotes; usage: %s)", t.show(), usage("ask"))
		}
		words = append(words, t.text)
		lp.i++
	}
	return strings.Join(words, " ")
}

func (lp *lineParser) ask(line int) Ask {
	q, ok := lp.peek()
	if !ok || !q.quoted {
		lp.fail("ask: the question must be in double quotes (usage: %s)", usage("ask"))
	}
	lp.i++
	if strings.TrimSpace(q.text) == "" {
		lp.fail("ask: empty question (usage: %s)", usage("ask"))
	}
	poll := Poll{Line: line, Question: q.text, Options: []string{"yes", "no"}}
	if t, ok := lp.peek(); ok && t.is("options") {
		lp.i++
		poll.Options = nil
		for {
			o := lp.phrase("answer")
			if o == "" {
				lp.fail("ask: empty option (expected options separated by |, like options yes|no|maybe)")
			}
			if slices.Contains(poll.Options, o) {
				lp.fail("ask: option %s is listed twice", inventory.Echo(o))
			}
			poll.Options = append(poll.Options, o)
			if t, ok := lp.peek(); !ok || !t.is("|") {
				break
			}
			lp.i++
		}
		if len(poll.Options) < 2 {
			lp.fail("ask: needs at least two options separated by | (got %s)", inventory.Echo(poll.Options[0]))
		}
	}
	lp.keyword("answer", "the question and options")
	poll.Answer = lp.phrase("")
	if poll.Answer == "" {
		lp.fail("ask: missing answer (usage: %s)", usage("ask"))
	}
	if !slices.Contains(poll.Options, poll.Answer) {
		lp.fail("ask: answer %s is not one of the options (options: %s)", inventory.Echo(poll.Answer), strings.Join(poll.Options, " | "))
	}
	return Ask{Poll: poll}
}

// closest is the candidate within edit distance 2 of s, or "".
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
