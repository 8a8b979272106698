package lab

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"caplab/lab/guard"
	"caplab/lab/inventory"
	"caplab/lab/store"
)

// ---- store operations ----

// Stock sets a SKU's stock in one store, as a write from region.
func (l *Lab) Stock(ctx context.Context, store inventory.Store, sku, region string, quantity int) (inventory.Outcome, error) {
	if err := checkOp(l.regions, store, sku, region); err != nil {
		return inventory.Outcome{}, err
	}
	if err := inventory.CheckStockQuantity(quantity); err != nil {
		return inventory.Outcome{}, err
	}
	return l.do(ctx, command{op: inventory.Operation{Store: store, SKU: sku, Region: region, Op: inventory.OpStock, Qty: quantity}})
}

// Buy buys qty units of a SKU from region.
func (l *Lab) Buy(ctx context.Context, store inventory.Store, sku, region string, qty int) (inventory.Outcome, error) {
	if err := checkOp(l.regions, store, sku, region); err != nil {
		return inventory.Outcome{}, err
	}
	if err := inventory.CheckQty(qty); err != nil {
		return inventory.Outcome{}, err
	}
	return l.do(ctx, command{op: inventory.Operation{Store: store, SKU: sku, Region: region, Op: inventory.OpBuy, Qty: qty}})
}

// Read reads a SKU's stock from region. Consistency applies to the
// consensus store ("" means linearizable); the replicated store reads R
// replicas.
func (l *Lab) Read(ctx context.Context, store inventory.Store, sku, region string, c inventory.Consistency) (inventory.Outcome, error) {
	if err := checkOp(l.regions, store, sku, region); err != nil {
		return inventory.Outcome{}, err
	}
	c, err := inventory.ParseConsistency(c)
	if err != nil {
		return inventory.Outcome{}, err
	}
	if c == inventory.Cached && store != inventory.Consensus {
		return inventory.Outcome{}, fmt.Errorf("%w: cached reads are the consensus store's (its regional caches are fed by its Raft group); the %s store reads its own way — leave consistency out", inventory.ErrBadInput, store)
	}
	if store == inventory.Replicated || store == inventory.Geo {
		c = ""
	}
	return l.do(ctx, command{op: inventory.Operation{Store: store, SKU: sku, Region: region, Op: inventory.OpRead, Consistency: c}})
}

// storeSlot is one store as do runs it.
type storeSlot struct {
	api         store.Store
	selfGuarded bool // the store guards its own calls (store.SelfGuarded)
}

// command is one operation on its way through the lab: what do needs
// besides the operation itself. The zero extras are a plain stock, buy or
// read.
type command struct {
	op inventory.Operation
	// run, if set, is the store call instead of the store's Run (a
	// reservation: the lock-and-fencing flow of the consensus store).
	run func(ctx context.Context, op inventory.Operation, env store.Env) inventory.Outcome
	// budget is the store call's deadline; 0: the request timeout.
	budget time.Duration
	// freezes: the call freezes in its shop's pause itself, mid-flight (a
	// reservation, between its read and its write), so do does not freeze
	// it before the call.
	freezes bool
	// entered: the caller already holds a unit of the gate (ReserveAsync,
	// which must hold it before Close can wait for it).
	entered bool
	// action is the recorded action's kind; "": from op.Op.
	action ActionKind
	fenced bool // a reservation with a fencing token
}

// do is the one command path: every operation — stock, buy, read, a geo
// split stock, a reservation — goes through it, in this order: the gate
// (a reset holds operations out), the decision to record it (History or
// recording gap, at its call), the shop's pause, admission, the
// (region, store) breaker (a self-guarded store picks its own per call),
// the up-check, the deadline, the store; then the History or the ledger of
// unrecorded writes, the lesson recording, the counters and the event
// stream.
func (l *Lab) do(ctx context.Context, c command) (inventory.Outcome, error) {
	op := c.op
	if !c.entered {
		if err := l.gate.EnterWithin(ctx, l.cfg.RequestTimeout); err != nil {
			if errors.Is(err, inventory.ErrClosed) {
				return inventory.Outcome{}, err
			}
			return inventory.Outcome{Outcome: inventory.Unavailable, Store: op.Store, Region: op.Region, SKU: op.SKU, Op: op.Op, AnsweredBy: []string{},
				Message: "Unavailable: the lab is being reset — try again in a moment. Nothing was sent to the store."}, nil
		}
		defer l.gate.Leave()
	}
	st := l.stores[op.Store]
	env := store.Env{Quorum: l.replicated.Quorum()}
	op.Client = sessionOf(l.regions, op.Region, op.Store)
	shareStrings(l.regions, &op)
	op.Call = time.Now()
	rec := opRecordingOf(ctx) // oprecording.go: a load records and publishes less
	rr := l.records.begin(rec, op)
	if !rr.keep && !rec.SkipHistory { // past the History's cap: its geo calls go unlogged too
		ctx = WithOpRecording(ctx, OpRecording{SkipHistory: true, SkipPublish: rec.SkipPublish})
	}
	if !c.freezes {
		l.time.pauses.hold(op.Region, l.stop) // a paused shop freezes mid-flight (time.go)
	}
	budget := c.budget
	if budget <= 0 {
		budget = l.cfg.RequestTimeout
	}
	var out inventory.Outcome
	// Admission before the breaker: a request the gateway has no room for
	// reaches neither the store nor the breaker, which must not take a
	// queue for a partition.
	if g := l.admission.Admit(op.Region, op.Store); g == nil {
		out = l.admission.Overloaded(op)
	} else {
		call := func() inventory.Outcome {
			if !l.cluster.IsUp(op.Region) {
				return inventory.Outcome{Outcome: inventory.Unavailable, Message: fmt.Sprintf("Unavailable: %s is down (crashed) — its shop cannot serve anyone until it restarts.", cityOf(op.Region))}
			}
			// The answer comes within the deadline plus AnswerGrace, even
			// when the call itself overruns its context (guard/deadline.go).
			return guard.WithinDeadline(ctx, op, budget, cityOf, func(ctx context.Context) inventory.Outcome {
				if c.run != nil {
					return c.run(ctx, op, env)
				}
				return st.api.Run(ctx, op, env)
			})
		}
		switch {
		case op.Op == inventory.OpRead && op.Consistency == inventory.Cached && c.run == nil:
			// From the region's memory: no call crosses a link, so there is
			// nothing for a breaker to protect and nothing that can hang (a
			// CPU profile of cached reads beside buys: the breaker was half
			// of do's CPU, the deadline's goroutine most of the rest).
			if !l.cluster.IsUp(op.Region) {
				out = call() // answers that the region is down
			} else {
				out = st.api.Run(ctx, op, env)
			}
		case st.selfGuarded: // the store picks a breaker per group it calls
			out = call()
		default:
			out = l.breakers.Execute(op.Region, op.Store, call)
		}
		l.admission.Done(g, time.Since(op.Call), out.Outcome)
	}
	op.Return = time.Now()
	out.Store, out.Region, out.SKU, out.Op = op.Store, op.Region, op.SKU, op.Op
	out.Consistency = op.Consistency
	out.Qty = op.Qty
	out.LatencyMs = math.Round(float64(op.Return.Sub(op.Call).Microseconds())/10) / 100
	if out.AnsweredBy == nil {
		out.AnsweredBy = []string{}
	}
	op.Outcome, op.Quantity, op.Version, op.BaseVersion = out.Outcome, out.Quantity, out.Version, out.BaseVersion
	op.Batch, op.CacheLag = out.Batch, out.CacheLag
	keepWords(&op, out, rec.SkipPublish) // sentence.go
	op, kept := l.records.end(rr, rec, op)
	if !kept { // left out, or past the History's cap: still the lab's own write
		l.ownWrites.note(op, l.consensus.Epoch())
	}
	if !rec.SkipPublish { // a load's operations are no actions to record
		l.recorder.op(ctx, op, env.Quorum, c.action, c.fenced)
	}
	out.OpID = op.ID
	l.counters.count(op)
	if !rec.SkipPublish {
		l.events.publish(Event{Type: EventOperation, Operation: &op, Outcome: &out, State: l.events.snap.Load()})
	} else if kept { // the audit log keeps what the History keeps
		l.hooks.call(Event{Type: EventOperation, Operation: &op})
	}
	return out, nil
}

// shareStrings points op's region, store, op and consistency at the lab's
// own strings: a request decoded from JSON carries fresh copies, which the
// history would otherwise keep, one set per operation, up to its cap.
func shareStrings(regions []string, op *inventory.Operation) {
	if i := slices.Index(regions, op.Region); i >= 0 {
		op.Region = regions[i]
	}
	if i := slices.Index(inventory.Stores, op.Store); i >= 0 {
		op.Store = inventory.Stores[i]
	}
	for _, o := range [...]inventory.Op{inventory.OpBuy, inventory.OpStock, inventory.OpRead} {
		if op.Op == o {
			op.Op = o
		}
	}
	for _, c := range [...]inventory.Consistency{inventory.Linearizable, inventory.Serializable, inventory.Cached} {
		if op.Consistency == c {
			op.Consistency = c
		}
	}
}

// sessionOf numbers the (region, store) gateway sessions from 0: the
// Operation.Client of the history. (The checker assigns its own client
// ids, since one gateway serves concurrent buyers.)
func sessionOf(regions []string, region string, store inventory.Store) int {
	return slices.Index(regions, region)*len(inventory.Stores) + slices.Index(inventory.Stores, store)
}
