package lessons

import (
	"fmt"
	"slices"
	"strings"

	"caplab/lab/inventory"
)

// Predictions without spoilers (docs/lessons.md): within a step that asks,
// the prose before the lab block holding the ask must pose the question,
// not answer it; the prose after it is shown only after the reveal or once
// the step ran. Spoilers finds prose that breaks the first half of that
// rule, and OptionLabel gives a poll's options the words a viewer sees.

// outcomeWords are phrases that give away an outcome when prose mentions
// them before the question about it.
var outcomeWords = map[string][]string{
	string(inventory.OK):          {"sells the unit", "sold the unit", "sells it", "sold it", "succeeds"},
	string(inventory.SoldOut):     {"sold out", "sold_out"},
	string(inventory.Unavailable): {"unavailable", "refuse", "try again later", "try later"},
	string(inventory.FailFast):    {"fail fast", "fails fast", "fail_fast"},
	string(inventory.Conflict):    {"conflict"},
}

// optionLabels are the words shown for the option tokens lessons use.
var optionLabels = map[string]string{
	string(inventory.OK):          "It sells the unit",
	string(inventory.SoldOut):     "Sold out",
	string(inventory.Unavailable): "It refuses — try later",
	string(inventory.FailFast):    "It fails fast — nothing is sent",
	string(inventory.Conflict):    "Conflict — retries exhausted",
	"yes":                         "Yes",
	"no":                          "No",
	"maybe":                       "Maybe",
}

// OptionLabel is how a poll option is shown to viewers: words for the
// outcome tokens ("unavailable" → "It refuses — try later") and yes/no;
// any other option as written. The token stays the value of a vote.
func OptionLabel(option string) string {
	if l, ok := optionLabels[option]; ok {
		return l
	}
	return strings.ReplaceAll(option, "_", " ")
}

// OptionLabels labels each option (OptionLabel).
func OptionLabels(options []string) []string {
	out := make([]string, len(options))
	for i, o := range options {
		out[i] = OptionLabel(o)
	}
	return out
}

// Spoilers warns about steps whose prose before an ask contains one of the
// ask's options' outcomes or the step's expected result. Each warning is an
// Error at the ask's line; a lesson with warnings is still valid.
func Spoilers(l *Lesson) ErrorList {
	var out ErrorList
	for _, st := range l.Steps {
		if len(st.Polls) == 0 {
			continue
		}
		prose := strings.ToLower(st.Pose.Markdown)
		if strings.TrimSpace(prose) == "" {
			continue
		}
		var expected []string
		for _, c := range st.Commands {
			if b, ok := c.Action.(Buy); ok && b.Expect != "" && !slices.Contains(expected, string(b.Expect)) {
				expected = append(expected, string(b.Expect))
			}
		}
		for _, p := range st.Polls {
			cands := slices.Clone(p.Options)
			for _, e := range expected {
				if !slices.Contains(cands, e) {
					cands = append(cands, e)
				}
			}
			for _, o := range cands {
				if w := giveaway(prose, o); w != "" {
					out = append(out, &Error{File: l.File, Line: p.Line, Msg: fmt.Sprintf(
						"warning: the prose before this ask says %q, which gives away %q; pose the question there and explain the answer in prose after the lab block", w, o)})
					break
				}
			}
		}
	}
	return out
}

// giveaway is the phrase of prose that names option's outcome, "" if none.
// yes/no and one-word options are too common to flag.
func giveaway(prose, option string) string {
	if ws, ok := outcomeWords[option]; ok {
		for _, w := range ws {
			if strings.Contains(prose, w) {
				return w
			}
		}
		return ""
	}
	o := strings.ToLower(option)
	if len(strings.Fields(o)) >= 2 && strings.Contains(prose, o) {
		return o
	}
	return ""
}
