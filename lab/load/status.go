package load

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Status is a run as GET /api/load and the "load" frame show it.
type Status struct {
	State     string    `json:"state"` // idle, stocking, running, draining, checking, finished, stopped, failed
	Reason    string    `json:"reason,omitempty"`
	Config    *Config   `json:"config,omitempty"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	ElapsedS  float64   `json:"elapsedS"`
	DurationS float64   `json:"durationS"`
	// Stocking counts the (store, SKU) stock writes done before arrivals
	// begin, of StockingTotal.
	Stocking      int64         `json:"stocking"`
	StockingTotal int64         `json:"stockingTotal"`
	Regions       []string      `json:"regions"`
	Stores        []StoreStatus `json:"stores"`
	// Checked says which SKUs were checked and how, for a person.
	Checked     string   `json:"checked"`
	CheckedSKUs []string `json:"checkedSkus"`
	// Latest: the newest sample per (store, region). Samples (GET only):
	// the last samples per (store, region), oldest first.
	Latest  []Sample    `json:"latest"`
	Samples []Sample    `json:"samples,omitempty"`
	Faults  []FaultMark `json:"faults"`
}

// StoreStatus is one store's run so far.
type StoreStatus struct {
	Store    string `json:"store"`
	Verdict  string `json:"verdict"`
	SLOMet   bool   `json:"sloMet"`
	Stocked  int64  `json:"stocked"`  // units stocked over every SKU (restocks included)
	Sold     int64  `json:"sold"`     // units sold
	Oversold int64  `json:"oversold"` // sum over SKUs of sold beyond stocked
	// Regions: figures per region since the run started.
	Regions []Figures `json:"regions"`
	// Check: the porcupine checker's verdict on the recorded SKUs, once
	// the run has ended.
	Check *CheckSummary `json:"check,omitempty"`
}

// Status returns the run's status; withSamples adds the sample history.
func (r *Run) Status(withSamples bool) Status { return r.status(withSamples) }

func (r *Run) status(withSamples bool) Status {
	cfg := r.cfg
	r.mu.Lock()
	state, reason, start, ended := r.state, r.reason, r.start, r.ended
	faults := append([]FaultMark{}, r.faults...)
	var samples []Sample
	if withSamples {
		for si := range r.samples {
			for ri := range r.samples[si] {
				samples = append(samples, r.samples[si][ri]...)
			}
		}
	}
	var latest []Sample
	if r.lastFrame != nil {
		latest = r.lastFrame.Latest
	}
	checks := map[string]*CheckSummary{}
	for k, v := range r.checks {
		c := *v
		checks[k] = &c
	}
	r.mu.Unlock()
	if latest == nil {
		latest = []Sample{}
	}
	st := Status{State: state, Reason: reason, Config: &cfg, StartedAt: start, DurationS: time.Duration(cfg.Duration).Seconds(),
		Stocking: r.stockDone.Load(), StockingTotal: int64(len(r.stores) * len(r.names)), Regions: r.regions,
		Latest: latest, Samples: samples, Faults: faults, CheckedSKUs: r.CheckedSKUs()}
	elapsed := 0.0
	if !start.IsZero() {
		end := time.Now()
		if !ended.IsZero() {
			end = ended
		}
		elapsed = math.Round(end.Sub(start).Seconds()*10) / 10
	}
	st.ElapsedS = elapsed
	st.Checked = r.checkedText()
	for si, s := range r.stores {
		over, sold, stocked := r.skus[si].oversold()
		ss := StoreStatus{Store: s, Stocked: stocked, Sold: sold, Oversold: over, SLOMet: true, Check: checks[s]}
		for ri := range r.regions {
			f := r.cells[si][ri].totals(elapsed, cfg.SLOP99Ms, over)
			ss.SLOMet = ss.SLOMet && f.SLOMet
			ss.Regions = append(ss.Regions, f)
		}
		ss.Verdict = verdict(ss.Regions, over, cfg.SLOP99Ms)
		st.Stores = append(st.Stores, ss)
	}
	return st
}

func (r *Run) checkedText() string {
	sample := r.CheckedSKUs()[1:]
	s := fmt.Sprintf("Every one of the %d SKUs: units sold ≤ units stocked, from counters of every buy. "+
		"Linearizability (porcupine) on %s", len(r.names), r.names[0])
	if len(sample) > 0 {
		s += " and a fixed sample (" + strings.Join(sample, ", ") + ")"
	}
	s += fmt.Sprintf(": every stock and buy of them, and up to %d of their reads a second per store, go to the lab's history (at most %d operations a run); "+
		"the other SKUs' operations are counted, not recorded.", readRecordPS, recordBudget)
	if at := r.spentAt.Load(); at > 0 {
		s += fmt.Sprintf(" The %d were recorded by %.0f s into the run: what came after is counted and audited, not checked for linearizability.",
			recordBudget, time.Duration(at).Seconds())
	}
	return s
}

// IdleStatus is the status before any load ran.
func IdleStatus() Status {
	return Status{State: StateIdle, Regions: []string{}, Stores: []StoreStatus{}, Latest: []Sample{}, Faults: []FaultMark{}, CheckedSKUs: []string{}}
}
