package lessons

import (
	"strings"
	"time"
)

// What a lesson is about, read from its steps: the product each step works
// on (a page follows it: story mode) and how long a class spends on it.

// SKUOf is the product a command works on, "" for one that names none.
func SKUOf(c Command) string {
	switch a := c.Action.(type) {
	case Stock:
		return a.SKU
	case Buy:
		return a.SKU
	case Read:
		return a.SKU
	case ExpectRead:
		return a.SKU
	case ExpectLinearizable:
		return a.SKU
	case ExpectOversold:
		return a.SKU
	case Reserve:
		return a.SKU
	}
	return ""
}

// Product is the product step (from 0) works on when it opens: the first
// one its commands name, else the last one an earlier step named ("" when
// none has). A page switches to it as the step opens, and then follows
// each command's SKU as the step runs.
func (l *Lesson) Product(step int) string {
	if step < 0 || step >= len(l.Steps) {
		return ""
	}
	for _, c := range l.Steps[step].Commands {
		if s := SKUOf(c); s != "" {
			return s
		}
	}
	for i := step - 1; i >= 0; i-- {
		cs := l.Steps[i].Commands
		for k := len(cs) - 1; k >= 0; k-- {
			if s := SKUOf(cs[k]); s != "" {
				return s
			}
		}
	}
	return ""
}

// Timing of a class, for Duration: how fast a class reads, how long a
// question takes (the vote, the reveal, a word about it), and a command's
// own time when it does not say (a buy, a cut: a second or two with the
// presenter's words).
const (
	readingWordsPerMinute = 150
	questionTime          = 90 * time.Second
	commandTime           = 2 * time.Second
)

// Duration is how long a class spends on the lesson, measured from its
// steps: its prose read aloud at 150 words a minute, 90 s per question
// (vote, reveal, a word on it), the lab's own time — every "wait" and
// "pause" as written, "wait leader" and "wait
// converged" 3 s, starting a load 5 s (its run counts where the lesson
// waits for it) — and 2 s for every other command.
func (l *Lesson) Duration() time.Duration {
	words := len(strings.Fields(l.Intro.Markdown))
	var d time.Duration
	for _, st := range l.Steps {
		words += len(strings.Fields(st.Title)) + len(strings.Fields(st.Prose.Markdown))
		d += time.Duration(len(st.Polls)) * questionTime
		for _, c := range st.Commands {
			switch a := c.Action.(type) {
			case Wait:
				if a.For == WaitDuration {
					d += a.Duration
				} else {
					d += 3 * time.Second
				}
			case PauseShop:
				d += a.Duration
			case LoadStart:
				// its run counts where the lesson waits for it; the start
				// (stocking the catalogue) takes a few seconds
				d += 5 * time.Second
			case Ask:
			default:
				d += commandTime
			}
		}
	}
	d += time.Duration(float64(words) / readingWordsPerMinute * float64(time.Minute))
	return d
}

// Minutes is Duration rounded up to whole minutes (at least 1).
func (l *Lesson) Minutes() int {
	m := int((l.Duration() + time.Minute - 1) / time.Minute)
	return max(1, m)
}
