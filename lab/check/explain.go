package check

import (
	"fmt"
	"strings"

	"caplab/lab/inventory"
)

// The verdict in a learner's words: what was judged, and what the
// evidence shows.

// explainCheck says in one or two sentences what the verdict means, from
// its evidence: the oversold and lost-update counts where they are the
// evidence, else the answer the search could not place (evidence.go).
// "Stale read" is said only when a linearizable read is that answer.
func explainCheck(r Result) string {
	units := func(n int) string {
		if n == 1 {
			return "1 unit"
		}
		return fmt.Sprintf("%d units", n)
	}
	// "1 unit was sold", "3 units were sold".
	wereSold := func(n int) string {
		if n == 1 {
			return "1 unit was sold"
		}
		return units(n) + " were sold"
	}
	unplaced := ""
	if r.Unplaced != nil {
		unplaced = " " + r.Unplaced.Sentence
	}
	var s string
	switch {
	case r.Operations == 0 && r.NotJudged > 0 && len(r.Cuts) > 0 && r.Cuts[0].Reason == inventory.GapResumed:
		s = "Nothing judged yet."
	case r.Operations == 0 && r.NotJudged > 0:
		s = "Nothing judged: every recorded answer on it came after writes the lab did not record."
	case r.Operations == 0 && r.SoldUnits == 0 && r.StaleReads == 0:
		s = "Nothing to check yet: no stock, buy or read on this SKU has been answered."
	case r.TimedOut:
		s = fmt.Sprintf("Undecided: the checker ran out of time on %d operations, so it cannot say whether one order of events explains them.", r.Operations)
		if r.Oversold > 0 {
			s += fmt.Sprintf(" Still, %s but only %s stocked.", wereSold(r.SoldUnits), units(r.InitialUnits))
		}
	case !r.Linearizable && r.Oversold == 1:
		s = fmt.Sprintf("Not linearizable: %s but only %s stocked — the store sold the same unit twice.", wereSold(r.SoldUnits), units(r.InitialUnits)) + unplaced
	case !r.Linearizable && r.Oversold > 1:
		s = fmt.Sprintf("Not linearizable: %s but only %s stocked — the store sold %s it did not have.", wereSold(r.SoldUnits), units(r.InitialUnits), units(r.Oversold)) + unplaced
	case !r.Linearizable && r.LostUpdates > 0:
		s = fmt.Sprintf("Not linearizable: buys succeeded from the same stock count, so %d of them overwrote another's write — a lost update. Nothing was oversold, but the count is wrong.", r.LostUpdates) + unplaced
	case !r.Linearizable && r.Unplaced != nil:
		s = "Not linearizable:" + unplaced
	case !r.Linearizable:
		s = "Not linearizable: no single order of events explains every answer the store gave."
	default:
		s = "Linearizable: every answer fits one order of events; nothing was oversold."
		var notes []string
		switch {
		case r.StaleReads > 0 && r.Store == inventory.Consensus:
			notes = append(notes, fmt.Sprintf("%d serializable %s returned an old count, which their contract allows", r.StaleReads, checkPlural(r.StaleReads, "read", "reads")))
		case r.StaleReads > 0:
			notes = append(notes, fmt.Sprintf("%d %s returned an old count, which one order of events still explains", r.StaleReads, checkPlural(r.StaleReads, "read", "reads")))
		}
		if r.Indeterminate > 0 {
			notes = append(notes, fmt.Sprintf("%d unavailable %s may or may not have applied, and the check allows both", r.Indeterminate, checkPlural(r.Indeterminate, "write", "writes")))
		}
		if len(notes) > 0 {
			s += " " + strings.ToUpper(notes[0][:1]) + notes[0][1:]
			if len(notes) > 1 {
				s += "; " + notes[1]
			}
			s += "."
		}
	}
	if c := explainCuts(r); c != "" {
		s += " " + c
	}
	return s
}

// explainCuts says what a verdict with cuts covers: "Judged BF-000000's
// first 9.2 s: …".
func explainCuts(r Result) string {
	if len(r.Cuts) == 0 {
		return ""
	}
	c := r.Cuts[0]
	if c.Reason == inventory.GapResumed {
		return explainResumed(r, c)
	}
	why := "writes on it were left out of the history (a load records only the SKUs it checks, within a budget)"
	switch c.Reason {
	case inventory.GapHistoryFull:
		why = "the lab's history was full"
	case inventory.GapGeoLogFull:
		why = "the geo store's call log was full"
	case inventory.GapTooManySKUs:
		why = "the lab tracked too many unrecorded SKUs to follow this one"
	}
	s := fmt.Sprintf("Judged %s's first %.1f s: from then on %s, and a history with writes missing is not one any store could have produced", c.SKU, c.JudgedS, why)
	if !c.Resumed.IsZero() {
		s += fmt.Sprintf("; judging resumed at a restock %.1f s later", c.Resumed.Round(0).Sub(c.At.Round(0)).Seconds())
	}
	s += "."
	if r.NotJudged > 0 {
		s += fmt.Sprintf(" %s recorded %s after that %s not judged", thousands(r.NotJudged), checkPlural(r.NotJudged, "operation", "operations"), checkPlural(r.NotJudged, "was", "were"))
		if n := inFlightAtCuts(r.Cuts); n > 0 {
			s += fmt.Sprintf(", and %d %s in flight then count as may-have-applied", n, checkPlural(n, "write", "writes"))
		}
		s += "."
	}
	if skus := cutSKUs(r.Cuts); skus > 1 {
		s += fmt.Sprintf(" (%d SKUs were cut like this.)", skus)
	}
	return s
}

// explainResumed says what a verdict covers on a lab that started on an
// earlier run's data: nothing before the first restock since.
func explainResumed(r Result, c Cut) string {
	s := fmt.Sprintf("The lab started on data an earlier run left, so what %s held before is not in this history", c.SKU)
	if c.SKU == "" {
		s = "The lab started on data an earlier run left, so what its SKUs held before is not in this history"
	}
	if c.Resumed.IsZero() {
		s += fmt.Sprintf(": restock %s to judge it again.", orThisSKU(c.SKU))
	} else {
		s += ": judged from its first restock since."
	}
	if r.NotJudged > 0 {
		s += fmt.Sprintf(" %s recorded %s before that %s not judged.", thousands(r.NotJudged), checkPlural(r.NotJudged, "operation", "operations"), checkPlural(r.NotJudged, "was", "were"))
	}
	return s
}

func orThisSKU(sku string) string {
	if sku == "" {
		return "a SKU"
	}
	return sku
}

func inFlightAtCuts(cuts []Cut) int {
	n := 0
	for _, c := range cuts {
		n += c.InFlight
	}
	return n
}

func cutSKUs(cuts []Cut) int {
	seen := map[string]bool{}
	for _, c := range cuts {
		seen[c.SKU] = true
	}
	return len(seen)
}

func checkPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
