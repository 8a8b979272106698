package load

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// plainEvery is how often "caplab load" writes a progress line when its
// progress does not go to a terminal.
const plainEvery = 5 * time.Second

// progress shows a run's progress on w: on a terminal, a bar redrawn in
// place; anywhere else (a file, a pipe, a CI log) a plain line at every
// change of state and every plainEvery while it runs — never carriage
// returns. The bar counts the run's seconds and stops at its duration
// (draining and checking come after).
type progress struct {
	w     io.Writer
	bar   *progressbar.ProgressBar // nil: plain lines
	total int64                    // the run's seconds
	state string                   // the state last shown
	last  time.Time                // when the last plain line was written
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress returns the progress display for a run of d on w, as bar
// when w is a terminal (tests pass a terminal's answer), or nil when quiet.
func newProgress(w io.Writer, d time.Duration, bar, quiet bool) *progress {
	if quiet {
		return nil
	}
	p := &progress{w: w, total: max(1, int64(d/time.Second))}
	if bar {
		p.bar = progressbar.NewOptions64(p.total, progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("stocking"), progressbar.OptionSetWidth(30), progressbar.OptionShowCount(),
			progressbar.OptionSetItsString("s"), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetPredictTime(false))
	}
	return p
}

// update shows st.
func (p *progress) update(st Status) {
	if p == nil {
		return
	}
	secs := min(max(0, int64(st.ElapsedS)), p.total) // never "(16/6)" while checking
	if p.bar != nil {
		p.bar.Describe(progressLine(st))
		_ = p.bar.Set64(secs)
		return
	}
	if st.State == p.state && (st.State != StateRunning || time.Since(p.last) < plainEvery) {
		return
	}
	p.state, p.last = st.State, time.Now()
	line := progressLine(st)
	if st.State == StateRunning {
		line = fmt.Sprintf("running %d/%d s: %s", secs, p.total, line)
	}
	fmt.Fprintf(p.w, "caplab load: %s\n", line)
}

// note prints a line (a fault) above the bar, or as a line of its own.
func (p *progress) note(s string) {
	switch {
	case p == nil:
	case p.bar != nil:
		_, _ = progressbar.Bprintln(p.bar, s)
	default:
		fmt.Fprintf(p.w, "caplab load: %s\n", s)
	}
}

// finish ends the bar's line.
func (p *progress) finish() {
	if p != nil && p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}

// progressLine says how the run is going: per store, the share of buys
// answered ok or sold_out so far (of those answered) and units oversold.
func progressLine(st Status) string {
	switch st.State {
	case StateStocking:
		return fmt.Sprintf("stocking %d/%d", st.Stocking, st.StockingTotal)
	case StateRunning:
		var parts []string
		for _, s := range st.Stores {
			var ok, answered int64
			for _, f := range s.Regions {
				ok += f.OK + f.SoldOut
				answered += f.OK + f.SoldOut + f.Refused
			}
			parts = append(parts, fmt.Sprintf("%s %s oversold %d", s.Store, pct(percentf(ok, answered)), s.Oversold))
		}
		return strings.Join(parts, " | ")
	}
	return st.State
}

func percentf(a, b int64) float64 {
	if b <= 0 {
		return 100
	}
	return 100 * float64(a) / float64(b)
}
