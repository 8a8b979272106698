package lessons

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
	"caplab/lab/load"
)

// LoadStart starts a Black Friday load (package lab/load) on the lab:
// Rate buys a second per region (0: the default), Mix reads per buy (nil:
// the default), For its duration (0: the default), on Stores (nil: every
// store), Stock units per SKU (nil: the default).
type LoadStart struct {
	Rate   float64
	Mix    *float64
	For    time.Duration
	Stores []inventory.Store
	Stock  *int
	SKUs   int
}

// LoadStop stops the running load and waits for its final figures.
type LoadStop struct{}

// ExpectLoad asserts one of the load's figures (totals since it started)
// for a store: in one region, or every region when Region is "".
// Metric is availability (%, buys answered ok or sold_out), oversold
// (units over every SKU; no region) or p99 (ms, buys); Op is one of
// >=, <, = and >.
//
// Last, when set, judges only the samples of the last Last (whole
// seconds): availability over them, and for p99 the worst second's p99.
type ExpectLoad struct {
	Store  inventory.Store
	Region string
	Metric string
	Op     string
	Value  float64
	Last   time.Duration
}

func (LoadStart) action()  {}
func (LoadStop) action()   {}
func (ExpectLoad) action() {}

func (a LoadStart) String() string {
	s := "load start"
	if a.Rate > 0 {
		s += " rate " + strconv.FormatFloat(a.Rate, 'f', -1, 64)
	}
	if a.Mix != nil {
		s += " mix " + strconv.FormatFloat(*a.Mix, 'f', -1, 64)
	}
	if a.For > 0 {
		s += " for " + a.For.String()
	}
	if a.SKUs > 0 {
		s += " skus " + strconv.Itoa(a.SKUs)
	}
	if a.Stock != nil {
		s += " stock " + strconv.Itoa(*a.Stock)
	}
	if len(a.Stores) > 0 {
		names := make([]string, len(a.Stores))
		for i, st := range a.Stores {
			names[i] = string(st)
		}
		s += " on " + strings.Join(names, ",")
	}
	return s
}

func (LoadStop) String() string { return "load stop" }

func (a ExpectLoad) String() string {
	s := "expect load " + string(a.Store)
	if a.Region != "" {
		s += " in " + a.Region
	}
	v := strconv.FormatFloat(a.Value, 'f', -1, 64)
	switch a.Metric {
	case "availability":
		v += "%"
	}
	s += " " + a.Metric + " " + a.Op + " " + v
	if a.Last > 0 {
		s += " last " + a.Last.String()
	}
	return s
}

// loadStore parses a store name of the lab (inventory.Stores: every store the
// lab has, not a fixed two).
func (lp *lineParser) loadStore(t token) inventory.Store {
	if s := inventory.Store(t.text); slices.Contains(inventory.Stores, s) {
		return s
	}
	names := make([]string, len(inventory.Stores))
	for i, s := range inventory.Stores {
		names[i] = string(s)
	}
	lp.fail("unknown store %s (expected %s)", t.show(), strings.Join(names, " or "))
	return ""
}

// load parses "load start …" and "load stop".
func (lp *lineParser) load() Action {
	t := lp.next("start or stop")
	switch {
	case t.is("stop"):
		lp.cmd = "load stop"
		return LoadStop{}
	case t.is("start"):
	default:
		lp.fail("load: expected start or stop, got %s (usage: %s)", t.show(), usage("load"))
	}
	lp.cmd = "load start"
	var a LoadStart
	seen := map[string]bool{}
	for lp.more() {
		k := lp.next(`"rate", "mix", "for", "skus", "stock" or "on"`)
		if seen[k.text] {
			lp.fail("load start: %s given twice (usage: %s)", k.show(), usage(lp.cmd))
		}
		seen[k.text] = true
		switch {
		case k.is("rate"):
			v := lp.next("N (buys a second per region)")
			f, err := strconv.ParseFloat(v.text, 64)
			if err != nil || !(f > 0) || f > load.MaxRatePerRegion {
				lp.fail("load start: rate must be a number of buys a second per region, more than 0 and at most %d, got %s", load.MaxRatePerRegion, v.show())
			}
			a.Rate = f
		case k.is("mix"):
			v := lp.next("R (reads per buy)")
			f, err := strconv.ParseFloat(v.text, 64)
			if err != nil || !(f >= 0) || f > load.MaxReadsPerBuy {
				lp.fail("load start: mix must be a number of reads per buy from 0 to %d, got %s", load.MaxReadsPerBuy, v.show())
			}
			a.Mix = &f
		case k.is("for"):
			v := lp.next("DURATION")
			d, err := time.ParseDuration(v.text)
			if err != nil || d < time.Second || d > load.MaxDuration {
				lp.fail("load start: for must be a duration from 1s to %v, like 30s, got %s", load.MaxDuration, v.show())
			}
			a.For = d
		case k.is("stock"):
			n := lp.integer("stock", 0, load.MaxStock)
			a.Stock = &n
		case k.is("skus"):
			a.SKUs = lp.integer("skus", 1, load.MaxSKUs)
		case k.is("on"):
			for lp.more() {
				t, _ := lp.peek()
				if t.is(",") {
					lp.i++
					continue
				}
				if slices.Contains([]string{"rate", "mix", "for", "skus", "stock", "on"}, t.text) {
					break
				}
				lp.i++
				st := lp.loadStore(t)
				if slices.Contains(a.Stores, st) {
					lp.fail("load start: store %s named twice", t.show())
				}
				a.Stores = append(a.Stores, st)
			}
			if len(a.Stores) == 0 {
				lp.fail("load start: on needs stores, like on consensus,replicated (usage: %s)", usage(lp.cmd))
			}
		default:
			lp.fail("load start: unexpected %s (usage: %s)", k.show(), usage(lp.cmd))
		}
	}
	return a
}

// expectLoad parses the rest of "expect load STORE [in A] METRIC OP VALUE".
func (lp *lineParser) expectLoad() Action {
	lp.cmd = "expect load"
	a := ExpectLoad{Store: lp.loadStore(lp.next("STORE"))}
	if t, ok := lp.peek(); ok && t.is("in") {
		lp.i++
		a.Region = lp.region()
	}
	m := lp.next("availability, oversold or p99")
	op, ok := lp.peek()
	if !ok {
		lp.fail("expect load: missing a comparison after %s (usage: %s)", m.show(), usage(lp.cmd))
	}
	lp.i++
	val := func(what string, suffix string) float64 {
		v := lp.next(what)
		f, err := strconv.ParseFloat(strings.TrimSuffix(v.text, suffix), 64)
		if err != nil || f < 0 || math.IsInf(f, 0) {
			lp.fail("expect load: %s must be a number%s, got %s (usage: %s)", what, map[bool]string{true: " like 99%", false: ""}[suffix == "%"], v.show(), usage(lp.cmd))
		}
		return f
	}
	switch {
	case m.is("availability"):
		if !(op.is(">=") || op.is("<")) {
			lp.fail("expect load: availability takes >= or <, got %s (usage: %s)", op.show(), usage(lp.cmd))
		}
		a.Metric, a.Op, a.Value = "availability", op.text, val("P%", "%")
		if a.Value > 100 {
			lp.fail("expect load: availability is a percentage from 0 to 100, got %v", a.Value)
		}
	case m.is("oversold"):
		if a.Region != "" {
			lp.fail("expect load: oversold is the store's, over every region; leave out \"in %s\"", a.Region)
		}
		if !(op.is("=") || op.is(">=") || op.is(">")) {
			lp.fail("expect load: oversold takes =, >= or >, got %s (usage: %s)", op.show(), usage(lp.cmd))
		}
		a.Metric, a.Op, a.Value = "oversold", op.text, val("N", "")
	case m.is("p99"):
		if !(op.is("<") || op.is(">=")) {
			lp.fail("expect load: p99 takes < or >=, got %s (usage: %s)", op.show(), usage(lp.cmd))
		}
		a.Metric, a.Op, a.Value = "p99", op.text, val("MS", "ms")
	default:
		lp.fail("expect load: unknown figure %s (expected availability, oversold or p99; usage: %s)", m.show(), usage(lp.cmd))
	}
	if t, ok := lp.peek(); ok && t.is("last") {
		lp.i++
		if a.Metric == "oversold" {
			lp.fail("expect load: oversold counts the whole load; leave out \"last\"")
		}
		v := lp.next("DURATION")
		d, err := time.ParseDuration(v.text)
		if err != nil || d < time.Second || d > 10*time.Minute || d%time.Second != 0 {
			lp.fail("expect load: last takes whole seconds from 1s to 10m, like 5s, got %s", v.show())
		}
		a.Last = d
	}
	return a
}

// loader is the runner's load controller: Runner.Load, or one of its own
// for a real lab (LabOf; closed by Close).
func (r *Runner) loader() (*load.Controller, error) {
	if r.Load != nil {
		return r.Load, nil
	}
	u, ok := r.lab.(interface{ Unwrap() *lab.Lab })
	if !ok {
		return nil, errors.New("this lab has no load generator")
	}
	r.Load, r.ownLoad = load.NewController(load.LabTarget{Lab: u.Unwrap()}), true
	return r.Load, nil
}

// Close stops a load the runner started on a controller of its own. Safe
// to call more than once, and on a runner that never ran a load.
func (r *Runner) Close() {
	if r.ownLoad && r.Load != nil {
		r.Load.Close()
	}
}

// runLoad carries out the load commands. It returns the text after the
// command, or what was expected and what came (an unmet expectation), or a
// lab error.
// LoadFacts is what a load command saw, for its story line: the run's
// configuration (start), each store's verdict (stop), the figures an
// expectation judged and the SLO they are held against.
type LoadFacts struct {
	Config   *load.Config
	Verdicts []string
	Figures  []load.Figures
	SLOMs    float64
	Oversold int64
	Sold     int64
	Stocked  int64
}

func (r *Runner) runLoad(ctx context.Context, a Action, facts *LoadFacts) (suffix, expected, got string, passed bool, err error) {
	ctl, err := r.loader()
	if err != nil {
		return "", "", "", false, err
	}
	switch a := a.(type) {
	case LoadStart:
		cfg := load.Config{Rate: a.Rate, ReadsPerBuy: a.Mix, Duration: load.Duration(a.For), Stock: a.Stock, SKUs: a.SKUs}
		for _, s := range a.Stores {
			cfg.Stores = append(cfg.Stores, string(s))
		}
		st, err := ctl.Start(cfg)
		if err != nil {
			return "", "", "", false, err
		}
		// Wait until the shelves are stocked and arrivals come, so that the
		// next command (a cut) lands during the load.
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for st.State == load.StateStocking {
			select {
			case <-ctx.Done():
				return "", "", "", false, ctx.Err()
			case <-t.C:
			}
			st = ctl.Status(false)
		}
		if st.State == load.StateFailed {
			return "", "", "", false, fmt.Errorf("the load could not start: %s", st.Reason)
		}
		c := st.Config
		facts.Config, facts.SLOMs = c, c.SLOP99Ms
		return fmt.Sprintf(" → %s for %v: %g buys/s and %g reads/s per region on %s", st.State, time.Duration(c.Duration),
			c.Rate, c.Rate**c.ReadsPerBuy, strings.Join(c.Stores, ", ")), "", "", false, nil
	case LoadStop:
		done := make(chan load.Status, 1)
		go func() { done <- ctl.Stop() }()
		select {
		case <-ctx.Done():
			ctl.StopAsync()
			return "", "", "", false, ctx.Err()
		case st := <-done:
			var parts []string
			for _, s := range st.Stores {
				parts = append(parts, s.Store+": "+s.Verdict)
				facts.Verdicts = append(facts.Verdicts, s.Verdict)
			}
			facts.Config, facts.SLOMs = st.Config, st.Config.SLOP99Ms
			return " → " + strings.Join(parts, "; "), "", "", false, nil
		}
	case ExpectLoad:
		st := ctl.Status(false)
		if st.State == load.StateIdle {
			return "", "", "", false, errors.New("no load has run; start one with \"load start\" first")
		}
		var ss *load.StoreStatus
		for i := range st.Stores {
			if st.Stores[i].Store == string(a.Store) {
				ss = &st.Stores[i]
			}
		}
		if ss == nil {
			return "", "", "", false, fmt.Errorf("the load does not drive the %s store (it drives %s)", a.Store, strings.Join(st.Config.Stores, ", "))
		}
		want := strings.TrimPrefix(a.String(), "expect ")
		facts.SLOMs, facts.Oversold, facts.Sold, facts.Stocked = st.Config.SLOP99Ms, ss.Oversold, ss.Sold, ss.Stocked
		holds := func(v float64) bool {
			switch a.Op {
			case ">=":
				return v >= a.Value
			case ">":
				return v > a.Value
			case "<":
				return v < a.Value
			}
			return v == a.Value
		}
		if a.Metric == "oversold" {
			g := fmt.Sprintf("oversold %d (sold %d of %d stocked)", ss.Oversold, ss.Sold, ss.Stocked)
			return " (" + g + ")", want, g, holds(float64(ss.Oversold)), nil
		}
		var gots []string
		ok := true
		figures := ss.Regions
		if a.Last > 0 {
			figures = lastSeconds(ctl.Status(true), ss.Store, a.Last)
		}
		for _, f := range figures {
			if a.Region != "" && f.Region != a.Region {
				continue
			}
			v := f.Availability
			g := fmt.Sprintf("%s %.2f%%", f.Region, v)
			if a.Last == 0 && v < 100 {
				g += fmt.Sprintf(" (buys: %s)", outcomeList(f.Outcomes))
			}
			if a.Metric == "p99" {
				v = f.P99Ms
				g = fmt.Sprintf("%s %.1f ms", f.Region, v)
			}
			gots = append(gots, g)
			facts.Figures = append(facts.Figures, f)
			ok = ok && holds(v)
		}
		g := a.Metric + " " + strings.Join(gots, ", ")
		return " (" + g + ")", want, g, ok, nil
	}
	return "", "", "", false, fmt.Errorf("the runner does not know %T", a)
}

// lastSeconds sums each region's samples of store over the last d:
// availability of the buys answered in them, and the worst second's p99
// as P99Ms.
func lastSeconds(st load.Status, store string, d time.Duration) []load.Figures {
	end := 0.0
	for _, s := range st.Samples {
		end = max(end, s.T)
	}
	from := end - d.Seconds()
	var out []load.Figures
	for _, region := range st.Regions {
		f := load.Figures{Store: store, Region: region}
		var served, answered, offered int64
		for _, s := range st.Samples {
			if s.Store != store || s.Region != region || s.T <= from {
				continue
			}
			served += s.OK + s.SoldOut
			for _, n := range s.Outcomes {
				answered += n
			}
			offered += s.Offered
			f.P99Ms = max(f.P99Ms, s.P99Ms)
		}
		// Of the buys answered in the window (those still in flight at its
		// end are judged when they answer); a window in which buys arrived
		// and none was answered — a stalled store — is 0.
		switch {
		case answered > 0:
			f.Availability = math.Round(10000*float64(served)/float64(answered)) / 100
		case offered > 0:
			f.Availability = 0
		default:
			f.Availability = 100
		}
		out = append(out, f)
	}
	return out
}

// outcomeList is "ok 12, unavailable 3" in a fixed order.
func outcomeList(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
