package load

import (
	"fmt"
	"maps"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Outcome kinds the figures name on their own (API.md); any other kind a
// store answers is counted in Outcomes under its own name.
const (
	KindOK          = "ok"
	KindSoldOut     = "sold_out"
	KindUnavailable = "unavailable"
	KindFailFast    = "fail_fast"
	KindConflict    = "conflict"
	KindOverloaded  = "overloaded"
)

// Histogram range: 1 µs to 10 minutes, two significant figures (1 %).
const (
	histMinUs = 1
	histMaxUs = 600_000_000
	histSigFi = 2
)

// Figures are one (store, region)'s numbers: for one second (a Sample) or
// for the whole run so far (a store's Regions in Status).
//
// Buys and reads are counted apart. Offered is what arrived; Outcomes is
// what was answered, by kind (shed: found MaxInFlight in flight, never
// sent). Offered = sum of Outcomes + InFlight at every moment of a run's
// totals, and sum of Outcomes once it has drained. In a one-second sample
// Offered counts arrivals of that second and Outcomes answers of that
// second. Latencies are of answers, from the arrival's intended time.
type Figures struct {
	T        float64          `json:"t"` // seconds since the run started (end of the second)
	Store    string           `json:"store"`
	Region   string           `json:"region"`
	Offered  int64            `json:"offered"`
	Outcomes map[string]int64 `json:"outcomes"`

	OK          int64 `json:"ok"`
	SoldOut     int64 `json:"soldOut"`
	Unavailable int64 `json:"unavailable"`
	FailFast    int64 `json:"failFast"`
	Conflict    int64 `json:"conflict"`
	Overloaded  int64 `json:"overloaded"`
	Shed        int64 `json:"shed"`
	Refused     int64 `json:"refused"`  // buys answered anything but ok or sold_out
	Stranded    int64 `json:"stranded"` // geo: refused buys (among Refused) whose only units left were out of reach

	ReadsOffered int64            `json:"readsOffered"`
	ReadOutcomes map[string]int64 `json:"readOutcomes"`
	Reads        int64            `json:"reads"` // reads answered ok
	StaleReads   int64            `json:"staleReads"`

	P50Ms     float64 `json:"p50Ms"` // buys
	P90Ms     float64 `json:"p90Ms"`
	P99Ms     float64 `json:"p99Ms"`
	MaxMs     float64 `json:"maxMs"`
	ReadP50Ms float64 `json:"readP50Ms"`
	ReadP99Ms float64 `json:"readP99Ms"`
	ReadMaxMs float64 `json:"readMaxMs"`

	// Availability is the % of buys answered ok or sold_out (the store
	// gave a definite answer): in a one-second sample of max(answered,
	// offered), so that a second in which a stalled store answers nothing
	// shows 0; in totals of the buys answered so far (those in flight are
	// judged when they answer). ReadAvailability the same for reads. 100
	// when nothing was judged.
	Availability     float64 `json:"availability"`
	ReadAvailability float64 `json:"readAvailability"`
	// AdmittedAvailability is Availability over the buys the lab took in:
	// those answered overloaded (a region gateway's admission control
	// shed them) and shed (the generator's own in-flight cap) left out,
	// in a sample's denominator and in the totals'. Shedding says the
	// machine running the lab had no room — not that the store chose
	// consistency over availability — so a store's CAP behaviour is read
	// from this figure, and how much was shed from Overloaded and Shed.
	AdmittedAvailability float64 `json:"admittedAvailability"`
	Sold                 int64   `json:"sold"`     // units sold (buys answered ok)
	Oversold             int64   `json:"oversold"` // the store's, over every SKU, so far (not per region)
	InFlight             int64   `json:"inFlight"`
	SLOMet               bool    `json:"sloMet"` // buy and read p99 below the SLO
}

// Sample is one (store, region)'s figures for one second.
type Sample = Figures

// tally accumulates figures; the cell's mutex guards it.
type tally struct {
	offered, readsOffered int64
	buys, reads           map[string]int64
	stale, sold, stranded int64
	buyH, readH           *hdrhistogram.Histogram
}

func newTally() tally {
	return tally{buys: map[string]int64{}, reads: map[string]int64{},
		buyH: hdrhistogram.New(histMinUs, histMaxUs, histSigFi), readH: hdrhistogram.New(histMinUs, histMaxUs, histSigFi)}
}

func (t *tally) reset() {
	t.offered, t.readsOffered, t.stale, t.sold, t.stranded = 0, 0, 0, 0, 0
	clear(t.buys)
	clear(t.reads)
	t.buyH.Reset()
	t.readH.Reset()
}

// cell is one (store, region).
type cell struct {
	store, region string
	inflight      atomic.Int64
	mu            sync.Mutex
	win, tot      tally
}

func newCell(store, region string) *cell {
	return &cell{store: store, region: region, win: newTally(), tot: newTally()}
}

func (c *cell) arrive(read bool) {
	c.mu.Lock()
	if read {
		c.win.readsOffered++
		c.tot.readsOffered++
	} else {
		c.win.offered++
		c.tot.offered++
	}
	c.mu.Unlock()
}

// answer counts one answered (or shed) operation; latency < 0 means none
// (shed).
func (c *cell) answer(read bool, kind string, latency time.Duration, stale bool) {
	us := min(max(latency.Microseconds(), histMinUs), histMaxUs)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range [2]*tally{&c.win, &c.tot} {
		if read {
			t.reads[kind]++
			if stale {
				t.stale++
			}
			if latency >= 0 {
				_ = t.readH.RecordValue(us)
			}
			continue
		}
		t.buys[kind]++
		if kind == KindOK {
			t.sold++
		}
		if latency >= 0 {
			_ = t.buyH.RecordValue(us)
		}
	}
}

// strand counts one buy (already answered) as stranded.
func (c *cell) strand() {
	c.mu.Lock()
	c.win.stranded++
	c.tot.stranded++
	c.mu.Unlock()
}

// figures computes Figures from t; the caller holds the cell's mutex.
func (t *tally) figures(store, region string, window bool, inflight int64, slo float64) Figures {
	f := Figures{Store: store, Region: region, Offered: t.offered, ReadsOffered: t.readsOffered,
		Outcomes: maps.Clone(t.buys), ReadOutcomes: maps.Clone(t.reads), StaleReads: t.stale, Sold: t.sold, InFlight: inflight, Stranded: t.stranded}
	f.OK, f.SoldOut, f.Unavailable = t.buys[KindOK], t.buys[KindSoldOut], t.buys[KindUnavailable]
	f.FailFast, f.Conflict, f.Overloaded, f.Shed = t.buys[KindFailFast], t.buys[KindConflict], t.buys[KindOverloaded], t.buys[KindShed]
	f.Reads = t.reads[KindOK]
	answered, readsAnswered := int64(0), int64(0)
	for _, n := range t.buys {
		answered += n
	}
	for _, n := range t.reads {
		readsAnswered += n
	}
	f.Refused = answered - f.OK - f.SoldOut
	shed := f.Overloaded + f.Shed
	if window {
		f.Availability = percent(f.OK+f.SoldOut, max(answered, t.offered))
		f.AdmittedAvailability = percent(f.OK+f.SoldOut, max(answered, t.offered)-shed)
		f.ReadAvailability = percent(f.Reads, max(readsAnswered, t.readsOffered))
	} else {
		f.Availability = percent(f.OK+f.SoldOut, answered)
		f.AdmittedAvailability = percent(f.OK+f.SoldOut, answered-shed)
		f.ReadAvailability = percent(f.Reads, readsAnswered)
	}
	f.P50Ms, f.P90Ms, f.P99Ms, f.MaxMs = ms(t.buyH.ValueAtQuantile(50)), ms(t.buyH.ValueAtQuantile(90)), ms(t.buyH.ValueAtQuantile(99)), ms(t.buyH.Max())
	f.ReadP50Ms, f.ReadP99Ms, f.ReadMaxMs = ms(t.readH.ValueAtQuantile(50)), ms(t.readH.ValueAtQuantile(99)), ms(t.readH.Max())
	f.SLOMet = f.P99Ms < slo && f.ReadP99Ms < slo
	return f
}

func ms(us int64) float64 {
	if us <= histMinUs {
		return 0
	}
	return math.Round(float64(us)/10) / 100
}

func percent(part, whole int64) float64 {
	if whole <= 0 {
		return 100
	}
	return math.Round(10000*float64(part)/float64(whole)) / 100
}

// cut returns the cell's figures for the second that ends now and starts
// the next one.
func (c *cell) cut(t float64, slo float64, oversold int64) Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.win.figures(c.store, c.region, true, c.inflight.Load(), slo)
	s.T, s.Oversold = t, oversold
	c.win.reset()
	return s
}

// totals returns the cell's figures since the run started.
func (c *cell) totals(t float64, slo float64, oversold int64) Figures {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.tot.figures(c.store, c.region, false, c.inflight.Load(), slo)
	f.T, f.Oversold = t, oversold
	return f
}

// skuTable is one store's per-SKU bookkeeping, index 0 the doorbuster.
//
// genSold packs a restock generation (high 24 bits; odd while a restock is
// under way) and the units sold by buys that were sent and answered
// within that generation (low 40 bits): what a read must account for.
type skuTable struct {
	level   []int64 // what a (re)stock sets
	stocked []atomic.Int64
	sold    []atomic.Int64
	genSold []atomic.Uint64
}

const soldBits = 40

func newSKUTable(levels []int64) *skuTable {
	n := len(levels)
	return &skuTable{level: levels, stocked: make([]atomic.Int64, n), sold: make([]atomic.Int64, n), genSold: make([]atomic.Uint64, n)}
}

// sold records one unit sold on SKU i by a buy sent when genSold was g.
func (t *skuTable) sell(i int, g uint64) {
	t.sold[i].Add(1)
	for {
		cur := t.genSold[i].Load()
		if cur>>soldBits != g>>soldBits || (g>>soldBits)%2 == 1 {
			return // a restock came between: this buy is not counted against the new level
		}
		if t.genSold[i].CompareAndSwap(cur, cur+1) {
			return
		}
	}
}

// stale reports whether a read of SKU i sent when genSold was g that
// answered qty shows more than can be left.
func (t *skuTable) stale(i int, g uint64, qty int) bool {
	now := t.genSold[i].Load()
	if now>>soldBits != g>>soldBits || (g>>soldBits)%2 == 1 {
		return false // a restock came between: no claim
	}
	soldBefore := int64(g & (1<<soldBits - 1))
	return int64(qty) > t.level[i]-soldBefore
}

// restocking marks a restock of SKU i as under way; restocked as done.
func (t *skuTable) restocking(i int) {
	t.stocked[i].Add(t.level[i])
	g := t.genSold[i].Load() >> soldBits
	t.genSold[i].Store((g + 1) << soldBits)
}

func (t *skuTable) restocked(i int) {
	g := t.genSold[i].Load() >> soldBits
	t.genSold[i].Store((g + 1) << soldBits)
}

// oversold sums sold beyond stocked over every SKU; stocked is every unit
// any (re)stock set, counted when it was sent (so a failed restock still
// counts: oversold is never overstated).
func (t *skuTable) oversold() (oversold, sold, stocked int64) {
	for i := range t.sold {
		s, st := t.sold[i].Load(), t.stocked[i].Load()
		sold += s
		stocked += st
		oversold += max(0, s-st)
	}
	return
}

// verdict is one line about a store's run.
func verdict(regions []Figures, oversold int64, slo float64) string {
	// The store's refusals are judged on the buys the lab admitted; what
	// the lab shed for want of room (overloaded, shed) is said apart.
	worst, shedWorst := -1, -1
	var offered int64
	shedShare := func(f Figures) float64 {
		var answered int64
		for _, n := range f.Outcomes {
			answered += n
		}
		if answered == 0 {
			return 0
		}
		return 100 * float64(f.Overloaded+f.Shed) / float64(answered)
	}
	for i, f := range regions {
		offered += f.Offered
		if worst < 0 || f.AdmittedAvailability < regions[worst].AdmittedAvailability {
			worst = i
		}
		if shedWorst < 0 || shedShare(f) > shedShare(regions[shedWorst]) {
			shedWorst = i
		}
	}
	if offered == 0 {
		return "no buys yet"
	}
	var parts []string
	if regions[worst].AdmittedAvailability >= 99 {
		parts = append(parts, "kept selling in every region")
	} else {
		parts = append(parts, fmt.Sprintf("refused %s of buys in %s", pct(100-regions[worst].AdmittedAvailability), regions[worst].Region))
	}
	var stranded int64
	for _, f := range regions {
		stranded += f.Stranded
	}
	if stranded > 0 { // geo: refusals with units left, out of reach
		parts = append(parts, fmt.Sprintf("%d stranded", stranded)) // short: the panel shows it on a projector
	}
	parts = append(parts, fmt.Sprintf("oversold %d %s", oversold, plural(oversold, "unit", "units")))
	p99 := 0.0
	for _, f := range regions {
		p99 = max(p99, f.P99Ms)
	}
	if p99 < slo {
		parts = append(parts, fmt.Sprintf("p99 %s ms within the %g ms SLO", num(p99), slo))
	} else {
		parts = append(parts, fmt.Sprintf("p99 %s ms misses the %g ms SLO", num(p99), slo))
	}
	if f := regions[shedWorst]; shedShare(f) >= 1 {
		why := "overloaded: its gateway was full"
		if f.Shed > f.Overloaded {
			why = "the machine had no room: held back before they were sent"
		}
		parts = append(parts, fmt.Sprintf("the lab shed %s of buys in %s (%s)", pct(shedShare(f)), f.Region, why))
	}
	return strings.Join(parts, ", ")
}

func pct(v float64) string {
	if v >= 10 {
		return fmt.Sprintf("%.0f%%", v)
	}
	return fmt.Sprintf("%.1f%%", v)
}

func num(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
