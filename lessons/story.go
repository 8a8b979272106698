package lessons

import (
	"fmt"
	"strconv"
	"strings"

	"caplab/lab/inventory"
)

// Story tells what one command visibly did, in one line for a learner
// ("Singapore tried to buy → refused after 2.0 s: it cannot reach a
// majority of regions"), instead of the runner's log line. city names a
// region for people ("Singapore"); nil or an unknown region uses the
// region's name. An ask tells nothing here (the poll shows it): "".
func Story(cr CommandResult, city func(region string) string) string {
	name := func(r string) string {
		if city != nil {
			if c := city(r); c != "" {
				return c
			}
		}
		return r
	}
	if cr.Status == StatusError {
		return fmt.Sprintf("The lab could not do %q: %s", cr.Command.Action.String(), trimDot(cr.Got))
	}
	switch a := cr.Command.Action.(type) {
	case Reset:
		return "The lab starts afresh: empty shelves, every link up, every region running."
	case Stock:
		where := "both stores"
		if a.Store != "" {
			where = "the " + string(a.Store) + " store"
		}
		return fmt.Sprintf("%s is stocked with %s in %s.", a.SKU, units(a.Quantity), where)
	case Partition:
		groups := make([]string, len(a.Groups))
		for i, g := range a.Groups {
			ns := make([]string, len(g))
			for k, r := range g {
				ns[k] = name(r)
			}
			groups[i] = joinAnd(ns)
		}
		return "The network splits: " + strings.Join(groups, " | ") + " can no longer reach each other."
	case Cut:
		if a.OneWay {
			return fmt.Sprintf("Messages from %s to %s are dropped; the other way still works.", name(a.From), name(a.To))
		}
		return fmt.Sprintf("The link between %s and %s is cut.", name(a.From), name(a.To))
	case Heal:
		if a.From == "" {
			return "Every link is back up."
		}
		return fmt.Sprintf("The link between %s and %s is back up.", name(a.From), name(a.To))
	case Latency:
		return fmt.Sprintf("A round trip between %s and %s now takes %s ms.", name(a.From), name(a.To), strconv.FormatFloat(a.RTTMs, 'f', -1, 64))
	case Crash:
		return name(a.Region) + " crashes."
	case Restart:
		return name(a.Region) + " restarts from its disk."
	case Lead:
		return name(a.Region) + " now leads the consensus group."
	case Quorum:
		return fmt.Sprintf("The replicated store now waits for W=%d acks per write and R=%d replies per read.", a.W, a.R)
	case Wait:
		switch a.For {
		case WaitLeader:
			return "A majority agrees on a leader."
		case WaitConverged:
			return "Every copy has caught up."
		}
		return "The lab waits " + a.Duration.String() + "."
	case Buy:
		line := name(a.Region) + " tried to buy on the " + string(a.Store) + " store → "
		if len(cr.Outcomes) == 0 {
			return line + trimDot(cr.Got) + "."
		}
		line += outcomeStory(cr.Outcomes[0])
		if cr.Status == StatusFailed {
			line += " (the lesson expected " + OptionLabel(string(a.Expect)) + ")"
		}
		return line
	case Read:
		if len(cr.Outcomes) == 0 {
			return name(a.Region) + " could not read: " + trimDot(cr.Got) + "."
		}
		return name(a.Region) + " reads the " + string(a.Store) + " store → " + readStory(cr.Outcomes[0])
	case ExpectRead:
		if len(cr.Outcomes) == 0 {
			return name(a.Region) + " could not read: " + trimDot(cr.Got) + "."
		}
		s := name(a.Region) + " reads the " + string(a.Store) + " store → " + readStory(cr.Outcomes[0])
		if cr.Status == StatusFailed {
			s += fmt.Sprintf(" (the lesson expected %d)", a.Quantity)
		}
		return s
	case ExpectLeader:
		if cr.Leader == "" {
			return "No region leads right now."
		}
		return name(cr.Leader) + " leads."
	case ExpectLinearizable:
		if cr.Check == nil {
			return "The checker could not run: " + trimDot(cr.Got) + "."
		}
		if cr.Check.Linearizable {
			return fmt.Sprintf("The checker: the %s store's history is linearizable — as if one shelf served everyone in order.", a.Store)
		}
		return fmt.Sprintf("The checker: the %s store's history is not linearizable — no single shelf could have done this.", a.Store)
	case ExpectOversold:
		if cr.Check == nil {
			return "The checker could not run: " + trimDot(cr.Got) + "."
		}
		return fmt.Sprintf("The checker: the %s store sold %d of %d stocked — %s oversold.", a.Store, cr.Check.SoldUnits, cr.Check.InitialUnits, units(cr.Check.Oversold))
	case Ask:
		return ""
	}
	return cr.Text
}

// outcomeStory is how a buy ended, in words.
func outcomeStory(o inventory.Outcome) string {
	took := durationWords(o.LatencyMs)
	switch o.Outcome {
	case inventory.OK:
		return fmt.Sprintf("sold after %s; %d left.", took, o.Quantity)
	case inventory.SoldOut:
		return "sold out after " + took + "; nothing changed."
	case inventory.Unavailable:
		return "refused after " + took + ": " + why(o.Message)
	case inventory.FailFast:
		return "refused at once (" + took + "): the circuit breaker is open, nothing was sent."
	case inventory.Conflict:
		return "gave up after " + took + ": other buyers kept changing the stock."
	}
	s := strings.ReplaceAll(string(o.Outcome), "_", " ") + " after " + took
	if o.Message != "" {
		s += ": " + why(o.Message)
	}
	return s
}

func readStory(o inventory.Outcome) string {
	if o.Outcome != inventory.OK {
		return strings.ReplaceAll(string(o.Outcome), "_", " ") + " after " + durationWords(o.LatencyMs) + ": " + why(o.Message)
	}
	return fmt.Sprintf("%d in stock (%s).", o.Quantity, durationWords(o.LatencyMs))
}

// why is a lab message without its leading "Unavailable: " and with the
// store's city-and-region name kept as is.
func why(msg string) string {
	msg = strings.TrimSpace(msg)
	if i := strings.Index(msg, ": "); i > 0 && i < 40 && !strings.ContainsAny(msg[:i], ".,") {
		msg = msg[i+2:]
	}
	if i := strings.Index(msg, ". "); i > 0 {
		msg = msg[:i+1] // the first sentence says it
	}
	if msg == "" {
		return "no reason given."
	}
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

func durationWords(ms float64) string {
	if ms >= 1000 {
		return strconv.FormatFloat(ms/1000, 'f', 1, 64) + " s"
	}
	return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
}

func units(n int) string {
	if n == 1 {
		return "1 unit"
	}
	return strconv.Itoa(n) + " units"
}

func trimDot(s string) string { return strings.TrimSuffix(strings.TrimSpace(s), ".") }

func joinAnd(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}
