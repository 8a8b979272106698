package lessons

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"caplab/lab"
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
		where := "the consensus and replicated stores"
		if a.Store != "" {
			where = "the " + string(a.Store) + " store"
		}
		line := fmt.Sprintf("%s is stocked with %s in %s", a.SKU, units(a.Quantity), where)
		if a.Store == inventory.Geo {
			for _, o := range cr.Outcomes {
				if len(o.Allocations) > 0 {
					line += ", split " + splitStory(o.Allocations, name)
				}
			}
		}
		return line + "."
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
		if zone, region := zoneOf(a.Region); zone != "" {
			return fmt.Sprintf("Zone %s of %s crashes; %s's other zones can still form a majority of its regional group.", zone, name(region), name(region))
		}
		return name(a.Region) + " crashes: its servers stop without warning."
	case Restart:
		if zone, region := zoneOf(a.Region); zone != "" {
			return fmt.Sprintf("Zone %s of %s restarts and rejoins its regional group.", zone, name(region))
		}
		return name(a.Region) + " restarts from its disk."
	case Lead:
		return name(a.Region) + " now leads the consensus group."
	case Quorum:
		return fmt.Sprintf("The replicated store now waits for W=%d acks per write and R=%d replies per read.", a.W, a.R)
	case GroupCommit:
		if a.On {
			return "The consensus store now batches a region's concurrent buys of one product into one Raft round."
		}
		return "The consensus store now sends every buy as its own Raft round."
	case Wait:
		switch a.For {
		case WaitLeader:
			return "A majority agrees on a leader."
		case WaitConverged:
			return "Every copy has caught up."
		}
		return "The lab waits " + a.Duration.String() + "."
	case Clock:
		if a.Reset {
			return "Every clock reads true time again."
		}
		way, off := "ahead of", a.Offset
		if off < 0 {
			way, off = "behind", -off
		}
		line := fmt.Sprintf("%s's clock jumps %s %s true time: every timestamp it writes is off by that much, and nothing else notices", name(a.Region), durationWords(float64(off.Milliseconds())), way)
		if a.DriftPpm != 0 {
			line += fmt.Sprintf(" (and it drifts %g ppm)", a.DriftPpm)
		}
		return line + "."
	case PauseShop:
		return fmt.Sprintf("%s's shop freezes for %s — a long GC pause: it sends nothing, not even its lock's heartbeats.", name(a.Region), durationWords(float64(a.Duration.Milliseconds())))
	case Reserve:
		return reserveStory(cr, a, name)
	case LoadStart, LoadStop, ExpectLoad:
		return loadStory(cr, name)
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
		line := fmt.Sprintf("The checker: the %s store's history is not linearizable — no single shelf could have done this.", a.Store)
		if cr.Check.LostUpdates > 0 {
			line += fmt.Sprintf(" %s lost: a write overwrote another it never saw.", plural(cr.Check.LostUpdates, "update"))
		}
		if cr.Check.Oversold > 0 {
			line += fmt.Sprintf(" %s oversold.", capital(units(cr.Check.Oversold)))
		}
		const blame = "Why this value stands: "
		if i := strings.Index(cr.Check.Explanation, blame); i >= 0 {
			why := cr.Check.Explanation[i+len(blame):]
			for _, r := range []string{"us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1", "sa-east-1"} {
				why = strings.ReplaceAll(why, r+"'s clock", name(r)+"'s clock")
			}
			line += " " + capital(why)
		}
		return line
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

// outcomeStory is how a buy ended, in the words the shops show
// (lab.Say): "refused after 2.0 s: cannot reach a majority."
func outcomeStory(o inventory.Outcome) string {
	w := lab.SayOutcome(o)
	s := strings.ToLower(w.Tag) + " after " + durationWords(o.LatencyMs)
	if w.Why != "" {
		s += ": " + strings.TrimSuffix(w.Why, ".")
	}
	return s + "."
}

func readStory(o inventory.Outcome) string {
	if o.Outcome != inventory.OK {
		return outcomeStory(o)
	}
	w := lab.SayOutcome(o)
	return fmt.Sprintf("%s (%s).", w.Why, durationWords(o.LatencyMs))
}

// reserveStory tells a lock-based reservation: taken and frozen (a paused
// shop), woken and written (Woke), or run through.
func reserveStory(cr CommandResult, a Reserve, name func(string) string) string {
	who := name(a.Region)
	if len(cr.Outcomes) == 0 {
		if cr.Status == StatusDone || cr.Status == StatusPassed {
			return fmt.Sprintf("%s takes the lock on %s, reads the stock — and freezes mid-sale, still believing it holds the lock.", who, a.SKU)
		}
		return who + " could not reserve: " + trimDot(cr.Got) + "."
	}
	o := cr.Outcomes[0]
	token := ""
	if a.Fenced {
		token = " with its fencing token"
	}
	var line string
	if cr.Woke {
		line = fmt.Sprintf("%s wakes up and writes its sale of %s%s → ", who, a.SKU, token)
		switch {
		case o.Outcome == inventory.Conflict && a.Fenced:
			line += "refused: the storage has already seen a newer token, so nothing is sold twice."
		case o.Outcome == inventory.OK && !a.Fenced:
			line += "sold: the storage trusted a lock that had expired — the same unit is sold twice."
		default:
			line += outcomeStory(o)
		}
	} else {
		line = fmt.Sprintf("%s takes the lock on %s and sells%s → %s", who, a.SKU, token, outcomeStory(o))
	}
	if cr.Status == StatusFailed {
		line += " (the lesson expected " + OptionLabel(string(a.Expect)) + ")"
	}
	return line
}

// loadStory tells a load command: the doors open, the shoppers stop, or
// what a figure of the load showed — with the SLO it is held to.
func loadStory(cr CommandResult, name func(string) string) string {
	f := cr.Load
	if cr.Status == StatusError || f == nil {
		return "The load could not run: " + trimDot(cr.Got) + "."
	}
	switch a := cr.Command.Action.(type) {
	case LoadStart:
		if f.Config == nil {
			return "Black Friday opens."
		}
		c := f.Config
		reads := 0.0
		if c.ReadsPerBuy != nil {
			reads = c.Rate * *c.ReadsPerBuy
		}
		return fmt.Sprintf("Black Friday opens: %g buys and %g reads a second arrive in every region, the same shoppers on the %s stores at once.",
			c.Rate, reads, joinAnd(c.Stores))
	case LoadStop:
		return "The shoppers stop. " + strings.Join(f.Verdicts, " ")
	case ExpectLoad:
		var line string
		switch a.Metric {
		case "oversold":
			line = fmt.Sprintf("The %s store sold %d units of %d stocked: %s oversold.", a.Store, f.Sold, f.Stocked, units(int(f.Oversold)))
		case "p99":
			var parts []string
			missed := false
			for _, fg := range f.Figures {
				parts = append(parts, fmt.Sprintf("%s %s", name(fg.Region), durationWords(fg.P99Ms)))
				missed = missed || fg.P99Ms > f.SLOMs
			}
			line = fmt.Sprintf("The %s store's slowest buys (p99%s): %s", a.Store, window(a.Last), strings.Join(parts, ", "))
			if f.SLOMs > 0 {
				if missed {
					line += fmt.Sprintf(" — it misses the %s SLO.", durationWords(f.SLOMs))
				} else {
					line += fmt.Sprintf(" — within the %s SLO.", durationWords(f.SLOMs))
				}
			}
		default:
			var parts []string
			for _, fg := range f.Figures {
				parts = append(parts, fmt.Sprintf("%s %s", name(fg.Region), strconv.FormatFloat(fg.Availability, 'f', -1, 64)+"%"))
			}
			line = fmt.Sprintf("The %s store answered these shares of buys%s: %s.", a.Store, window(a.Last), strings.Join(parts, ", "))
		}
		if cr.Status == StatusFailed {
			line += " (the lesson expected " + strings.TrimPrefix(a.String(), "expect load ") + ")"
		}
		return line
	}
	return cr.Text
}

func window(d time.Duration) string {
	if d <= 0 {
		return " since the doors opened"
	}
	return " in the last " + durationWords(float64(d.Milliseconds()))
}

// zoneOf splits a zone name ("us-east-1a") into the zone's letter and its
// region; "" when name is a region.
func zoneOf(name string) (zone, region string) {
	if n := len(name); n > 1 && name[n-1] >= 'a' && name[n-1] <= 'z' && name[n-2] >= '0' && name[n-2] <= '9' {
		return name, name[:n-1]
	}
	return "", name
}

func splitStory(a map[string]inventory.Allocation, name func(string) string) string {
	regions := make([]string, 0, len(a))
	for r := range a {
		regions = append(regions, r)
	}
	slices.Sort(regions)
	parts := make([]string, len(regions))
	for i, r := range regions {
		parts[i] = fmt.Sprintf("%s %d", name(r), a[r].Quantity)
	}
	return strings.Join(parts, ", ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
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
