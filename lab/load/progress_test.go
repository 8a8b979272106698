package load

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// progressStatuses is a run of 6 s as "caplab load" polls it: stocking,
// its first moment (reads in flight outnumber the buys offered), running,
// and checking long past the duration.
func progressStatuses() []Status {
	store := func(ok, soldOut, refused, offered, inFlight int64) []StoreStatus {
		return []StoreStatus{{Store: "consensus", Regions: []Figures{{OK: ok, SoldOut: soldOut, Refused: refused, Offered: offered, InFlight: inFlight}}}}
	}
	return []Status{
		{State: StateStocking, Stocking: 10, StockingTotal: 30},
		{State: StateRunning, ElapsedS: 0.1, Stores: store(0, 0, 0, 3, 40)},
		{State: StateRunning, ElapsedS: 2, Stores: store(90, 5, 5, 120, 30)},
		{State: StateChecking, ElapsedS: 16, Stores: store(200, 10, 10, 220, 0)},
		{State: StateFinished, ElapsedS: 16.2, Stores: store(200, 10, 10, 220, 0)},
	}
}

var percentPattern = regexp.MustCompile(`(-?[0-9.]+)%`)

// checkPercents fails on a share outside 0..100 %.
func checkPercents(t *testing.T, out string) {
	t.Helper()
	for _, m := range percentPattern.FindAllStringSubmatch(out, -1) {
		if v, err := strconv.ParseFloat(m[1], 64); err != nil || v < 0 || v > 100 {
			t.Errorf("progress shows %s%%:\n%s", m[1], out)
		}
	}
}

// TestProgressPlainLines: without a terminal, progress is plain lines —
// one per state, no carriage returns — with shares between 0 and 100 %
// (the first moment once showed -37.2 %: reads in flight against buys
// offered) and never more seconds than the run has.
func TestProgressPlainLines(t *testing.T) {
	var out strings.Builder
	p := newProgress(&out, 6*time.Second, false, false)
	for _, st := range progressStatuses() {
		p.update(st)
	}
	p.finish()
	got := out.String()
	if strings.Contains(got, "\r") {
		t.Errorf("carriage returns in plain progress:\n%q", got)
	}
	want := []string{"caplab load: stocking 10/30\n", "caplab load: running 0/6 s: consensus 100% oversold 0\n", "caplab load: checking\n", "caplab load: finished\n"}
	if lines := strings.Count(got, "\n"); lines != len(want) {
		t.Errorf("%d lines, want %d (one per state; the second within %v of the first adds none):\n%s", lines, len(want), plainEvery, got)
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("progress lacks %q:\n%s", w, got)
		}
	}
	checkPercents(t, got)
	if newProgress(&out, time.Second, false, true) != nil {
		t.Error("--quiet shows progress")
	}
}

// TestProgressBar: on a terminal the bar stops at the run's duration
// while the run drains and is checked ("(16/6)" before).
func TestProgressBar(t *testing.T) {
	var out strings.Builder
	p := newProgress(&out, 6*time.Second, true, false)
	for _, st := range progressStatuses() {
		p.update(st)
		if n := p.bar.State().CurrentNum; n < 0 || n > 6 || (st.State == StateChecking && n != 6) {
			t.Errorf("%s at %.1f s: the bar stands at %d of 6", st.State, st.ElapsedS, n)
		}
	}
	p.finish()
	checkPercents(t, out.String())
}
