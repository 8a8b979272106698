package lessons

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"caplab/lab"
	"caplab/lab/inventory"
)

// ---- the lesson file: the checker's last step, step titles, the summary
// and the Markdown around the steps ----

// checks adds the checker's verdicts as a last step, when the replay
// carries every recorded outcome (else its history would differ).
func (r *renderer) checks() {
	if r.leftOut > 0 || len(r.rec.Checks) == 0 {
		return
	}
	var lines []string
	for _, c := range r.rec.Checks {
		if c.TimedOut || c.SKU == "" {
			continue
		}
		verdict := "linearizable"
		if !c.Linearizable {
			verdict = "not linearizable"
		}
		lines = append(lines, fmt.Sprintf("expect check %s %s %s", c.Store, c.SKU, verdict),
			fmt.Sprintf("expect check %s %s oversold = %d", c.Store, c.SKU, c.Oversold))
	}
	if len(lines) == 0 {
		return
	}
	r.newStep("What the checker says")
	r.cur.lines = append(r.cur.lines, lines...)
}

// stepTitle names a step by its operations when no fault named it.
func (r *renderer) stepTitle(s *recStep, i int) string {
	if s.title != "" {
		return s.title
	}
	var stock bool
	var buyers, readers []string
	for _, op := range s.ops {
		switch op.Op {
		case inventory.OpStock:
			stock = true
		case inventory.OpBuy:
			if !slices.Contains(buyers, op.Region) {
				buyers = append(buyers, op.Region)
			}
		case inventory.OpRead:
			if !slices.Contains(readers, op.Region) {
				readers = append(readers, op.Region)
			}
		}
	}
	switch {
	case stock:
		return "Stock the shelf"
	case len(buyers) > 0:
		return "Shoppers in " + r.cities(buyers) + " buy"
	case len(readers) > 0:
		return "Reading the stock in " + r.cities(readers)
	case i == 0:
		return "A fresh lab"
	}
	return fmt.Sprintf("Step %d", i+1)
}

func (r *renderer) summary() string {
	order := []string{"stock", "partition", "cut", "heal", "latency change", "crash", "restart", "buy", "reservation", "read"}
	var parts []string
	for _, k := range order {
		if n := r.counts[k]; n > 0 {
			if n == 1 {
				parts = append(parts, "1 "+k)
			} else {
				parts = append(parts, fmt.Sprintf("%d %ss", n, k))
			}
		}
	}
	if len(parts) == 0 {
		return "Recorded in the lab."
	}
	return "Recorded in the lab: " + strings.Join(parts, ", ") + "."
}

func (r *renderer) markdown() []byte {
	var b bytes.Buffer
	started := r.rec.Started.UTC().Format("2006-01-02 15:04 UTC")
	fmt.Fprintf(&b, "---\ntitle: Recorded session, %s\nsummary: %s\nregions: [%s]\n---\n\n", started, r.summary(), strings.Join(r.rec.Regions, ", "))
	scale := trimFloat(r.rec.LatencyScale)
	fmt.Fprintf(&b, "<!-- Recorded from a running caplab at latency scale %s. Replay it on a fresh lab with the same flags:\n", scale)
	fmt.Fprintf(&b, "     caplab lessons run THIS-FILE.md --latency-scale %s\n", scale)
	b.WriteString("     Fill in the prose, rename the steps, add ask lines for predictions. -->\n")
	if r.rec.Dropped > 0 {
		fmt.Fprintf(&b, "\n<!-- The recording was full: it kept the first %d actions; %d later ones are not in this lesson. -->\n", lab.MaxRecordedActions, r.rec.Dropped)
	}
	for i, s := range r.steps {
		if len(s.lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n## %s\n\n", r.stepTitle(s, i))
		b.WriteString("<!-- say what happened -->\n")
		for _, n := range s.notes {
			fmt.Fprintf(&b, "<!-- note: %s -->\n", n)
		}
		b.WriteString("\n```lab\n")
		for _, l := range s.lines {
			b.WriteString(l + "\n")
		}
		b.WriteString("```\n")
	}
	return b.Bytes()
}
