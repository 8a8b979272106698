package load

import (
	"context"
	"sync"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// Result is what one operation answered: an outcome kind (open-ended: a
// store may answer kinds this package does not know, and they are counted
// under their own name) and, for reads and buys, the quantity.
type Result struct {
	Kind     string
	Quantity int
	// Stranded: a geo buy refused because the only units left were in
	// regions the buyer's could not reach (cut off or down).
	Stranded bool
}

// KindError is the outcome counted when the target refused an operation
// outright (the lab was closed, a name was wrong): not a store's answer.
const KindError = "error"

// KindShed is the outcome of an arrival that found MaxInFlight operations
// already in flight for its (store, region): counted, never sent.
const KindShed = "shed"

// Target is what a run drives. record says whether the operation belongs
// in the checker's history (the doorbuster and the sample SKUs).
type Target interface {
	Regions() []string
	Stores() []string
	Stock(ctx context.Context, store, sku, region string, qty int, record bool) Result
	Buy(ctx context.Context, store, sku, region string, record bool) Result
	Read(ctx context.Context, store, sku, region, consistency string, record bool) Result
}

// Events is optionally implemented by a Target that reports faults (for
// the plots' bands) and resets (which end a run).
type Events interface {
	Events() (<-chan Event, func())
}

// Event is a fault, or a reset of the target.
type Event struct {
	At     time.Time
	Kind   string // a inventory.FaultKind, or "reset"
	Detail string
	Reset  bool
}

// Checker is optionally implemented by a Target whose history the
// porcupine checker can judge.
type Checker interface {
	Check(store, sku string) (CheckSummary, error)
}

// CheckSummary is the checker's verdict on one store and SKU.
type CheckSummary struct {
	SKU          string `json:"sku"`
	Linearizable bool   `json:"linearizable"`
	TimedOut     bool   `json:"timedOut,omitempty"`
	Operations   int    `json:"operations"`
	Oversold     int    `json:"oversold"`
	StaleReads   int    `json:"staleReads"`
	Explanation  string `json:"explanation"`
}

// LabTarget drives a *lab.Lab through its Stock, Buy and Read methods —
// the page's own path, with the same breakers, counters and outcomes. Load
// operations are never published one by one, and only those the run checks
// go to the lab's history (lab.WithOpRecording).
type LabTarget struct{ Lab *lab.Lab }

// Regions are the lab's regions.
func (t LabTarget) Regions() []string { return t.Lab.Regions() }

// Stores are every store of the lab, in display order.
func (t LabTarget) Stores() []string {
	out := make([]string, len(inventory.Stores))
	for i, s := range inventory.Stores {
		out[i] = string(s)
	}
	return out
}

func recordCtx(ctx context.Context, record bool) context.Context {
	return lab.WithOpRecording(ctx, lab.OpRecording{SkipHistory: !record, SkipPublish: true})
}

func resultOf(out inventory.Outcome, err error) Result {
	if err != nil {
		return Result{Kind: KindError}
	}
	return Result{Kind: string(out.Outcome), Quantity: out.Quantity}
}

// Stock sets a SKU's stock.
func (t LabTarget) Stock(ctx context.Context, store, sku, region string, qty int, record bool) Result {
	return resultOf(t.Lab.Stock(recordCtx(ctx, record), inventory.Store(store), sku, region, qty))
}

// Buy buys one unit.
func (t LabTarget) Buy(ctx context.Context, store, sku, region string, record bool) Result {
	out, err := t.Lab.Buy(recordCtx(ctx, record), inventory.Store(store), sku, region, 1)
	r := resultOf(out, err)
	// Only a geo buy refused for want of reachable units names unreachable
	// regions (lab/store/geo/transfer.go).
	r.Stranded = err == nil && out.Outcome != inventory.OK && len(out.Unreachable) > 0
	return r
}

// Read reads a SKU's stock.
func (t LabTarget) Read(ctx context.Context, store, sku, region, consistency string, record bool) Result {
	return resultOf(t.Lab.Read(recordCtx(ctx, record), inventory.Store(store), sku, region, inventory.Consistency(consistency)))
}

// Events reports the lab's faults and resets.
func (t LabTarget) Events() (<-chan Event, func()) {
	in, cancel := t.Lab.Subscribe()
	out := make(chan Event, 64)
	done := make(chan struct{})
	go func() {
		defer close(out)
		for ev := range in {
			var e Event
			switch {
			case ev.Type == lab.EventFault && ev.Fault != nil:
				e = Event{At: ev.Fault.At, Kind: string(ev.Fault.Kind), Detail: ev.Fault.Detail}
			case ev.Type == lab.EventReset:
				e = Event{At: time.Now(), Kind: "reset", Detail: "the lab was reset", Reset: true}
			default:
				continue
			}
			select {
			case out <- e:
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return out, func() { once.Do(func() { close(done); cancel() }) }
}

// Check runs the lab's checker on one store and SKU.
func (t LabTarget) Check(store, sku string) (CheckSummary, error) {
	r, err := t.Lab.Check(inventory.Store(store), sku)
	if err != nil {
		return CheckSummary{}, err
	}
	return CheckSummary{SKU: sku, Linearizable: r.Linearizable, TimedOut: r.TimedOut, Operations: r.Operations,
		Oversold: r.Oversold, StaleReads: r.StaleReads, Explanation: r.Explanation}, nil
}

// Settle waits (within ctx) until the replicas agree, so that the stock
// just written is everywhere before the first arrival.
func (t LabTarget) Settle(ctx context.Context) { _ = t.Lab.WaitConverged(ctx) }

// Leader is the region that leads the consensus group ("" if none): the
// run writes stock from there.
func (t LabTarget) Leader() string { return t.Lab.Leader() }
