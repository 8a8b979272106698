package lessons

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// ---- actions: each recorded action as the lesson lines that replay it ----

// action renders actions[i]; it returns how many further actions it used.
func (r *renderer) action(actions []lab.RecordedAction, i int) int {
	a := actions[i]
	gap := a.At.Sub(r.last)
	r.last = a.Done
	if a.Kind == lab.ActReserve && a.Op != nil {
		r.reserve(a)
		return 0
	}
	if a.Op != nil {
		if gap > StepPause && len(r.cur.lines) > 0 {
			r.newStep("")
		}
		return r.operation(actions, i)
	}
	reg := func(k int) string {
		if k < len(a.Regions) {
			return a.Regions[k]
		}
		return ""
	}
	switch a.Kind {
	case lab.ActPartition, lab.ActIsolate:
		groups := a.Groups
		if a.Kind == lab.ActIsolate {
			rest := slices.DeleteFunc(slices.Clone(r.rec.Regions), func(x string) bool { return x == reg(0) })
			groups = [][]string{{reg(0)}, rest}
		}
		r.newStep(r.partitionTitle(groups))
		r.beforeFault()
		parts := make([]string, len(groups))
		for k, g := range groups {
			parts[k] = strings.Join(g, ",")
		}
		r.emit("partition %s", strings.Join(parts, " | "))
		clear(r.cut)
		for _, g := range groups {
			for _, h := range groups {
				if slices.Equal(g, h) {
					continue
				}
				for _, x := range g {
					for _, y := range h {
						r.cut[[2]string{x, y}] = true
					}
				}
			}
		}
		r.counts["partition"]++
	case lab.ActBridge:
		r.newStep(fmt.Sprintf("Only %s links the others", r.city(reg(0))))
		r.beforeFault()
		r.emit("heal")
		clear(r.cut)
		for _, c := range a.Cuts {
			r.cut[c] = true
		}
		for _, c := range a.Cuts {
			back := r.cut[[2]string{c[1], c[0]}]
			switch {
			case back && c[0] < c[1]:
				r.emit("cut %s %s", c[0], c[1])
			case !back:
				r.emit("cut %s -> %s", c[0], c[1])
			}
		}
		r.counts["partition"]++
	case lab.ActCut:
		from, to := reg(0), reg(1)
		if a.OneWay {
			r.newStep(fmt.Sprintf("%s can no longer reach %s", r.city(from), r.city(to)))
		} else {
			r.newStep(fmt.Sprintf("The link between %s and %s is cut", r.city(from), r.city(to)))
		}
		r.beforeFault()
		r.emit("cut %s%s%s", from, arrowWord(a.OneWay), to)
		r.cut[[2]string{from, to}] = true
		if !a.OneWay {
			r.cut[[2]string{to, from}] = true
		}
		r.counts["cut"]++
	case lab.ActHealLink:
		from, to := reg(0), reg(1)
		if a.OneWay {
			r.newStep(fmt.Sprintf("%s reaches %s again", r.city(from), r.city(to)))
		} else {
			r.newStep(fmt.Sprintf("The link between %s and %s is back", r.city(from), r.city(to)))
		}
		r.emit("heal %s%s%s", from, arrowWord(a.OneWay), to)
		delete(r.cut, [2]string{from, to})
		if !a.OneWay {
			delete(r.cut, [2]string{to, from})
		}
		r.counts["heal"]++
	case lab.ActHeal:
		r.newStep("The network heals")
		r.emit("heal")
		clear(r.cut)
		r.counts["heal"]++
	case lab.ActLatency:
		from, to := reg(0), reg(1)
		r.newStep(fmt.Sprintf("%s–%s takes %s ms", r.city(from), r.city(to), trimFloat(a.RTTMs)))
		r.emit("latency %s%s%s %s", from, arrowWord(a.OneWay), to, trimFloat(a.RTTMs))
		r.counts["latency change"]++
	case lab.ActCrash:
		r.newStep(fmt.Sprintf("%s crashes", r.city(reg(0))))
		r.beforeFault()
		r.emit("crash %s", reg(0))
		r.down[reg(0)] = true
		r.counts["crash"]++
	case lab.ActRestart:
		r.newStep(fmt.Sprintf("%s comes back", r.city(reg(0))))
		r.emit("restart %s", reg(0))
		delete(r.down, reg(0))
		r.split = true // the restarted region has to catch up
		r.counts["restart"]++
	case lab.ActLead:
		r.configStep(fmt.Sprintf("%s takes the lead", r.city(reg(0))))
		r.emit("lead %s", reg(0))
		r.leaderUnsure = false
		return 0
	case lab.ActQuorum:
		r.configStep(fmt.Sprintf("The replicated store asks W=%d, R=%d", a.W, a.R))
		r.emit("quorum %d %d", a.W, a.R)
		return 0
	case lab.ActGroupCommit:
		word, says := "off", "The consensus store sends every buy as its own Txn"
		if a.On {
			word, says = "on", "The consensus store batches a region's concurrent buys of one SKU into one Txn"
		}
		r.configStep(says)
		r.emit("groupcommit %s", word)
		return 0
	case lab.ActPause:
		r.newStep(fmt.Sprintf("%s's shop freezes for %s", r.city(reg(0)), trimFloat(a.Seconds)+"s"))
		r.emit("pause shop %s %ss", reg(0), trimFloat(a.Seconds))
		return 0
	case lab.ActClock:
		c := Clock{Reset: len(a.Regions) == 0}
		if !c.Reset {
			c.Region, c.Offset, c.DriftPpm = reg(0), time.Duration(a.OffsetMs*float64(time.Millisecond)), a.DriftPpm
			r.configStep(fmt.Sprintf("%s's clock is off by %s", r.city(reg(0)), strings.TrimPrefix(c.String(), "clock "+reg(0)+" ")))
		} else {
			r.configStep("Every clock back to true time")
		}
		r.emit("%s", c.String())
		return 0
	default:
		r.emit("# %s (not a lesson command; left out)", a.Kind)
		return 0
	}
	r.topologyChanged()
	return 0
}

func (r *renderer) partitionTitle(groups [][]string) string {
	if len(groups) == 2 {
		for k, g := range groups {
			if len(g) == 1 && len(groups[1-k]) > 1 {
				return r.city(g[0]) + " is cut off"
			}
		}
	}
	parts := make([]string, len(groups))
	for k, g := range groups {
		parts[k] = r.cities(g)
	}
	return "The network splits: " + strings.Join(parts, " | ")
}

func arrowWord(oneWay bool) string {
	if oneWay {
		return " -> "
	}
	return " "
}

func trimFloat(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%g", f)
}

// operation renders a stock, buy or read; it returns how many further
// actions it used (a stock of both stores is one command).
func (r *renderer) operation(actions []lab.RecordedAction, i int) int {
	op := actions[i].Op
	r.cur.ops = append(r.cur.ops, op)
	switch op.Op {
	case inventory.OpStock:
		return r.stock(actions, i)
	case inventory.OpBuy:
		r.counts["buy"]++
		r.buy(actions[i])
	case inventory.OpRead:
		r.counts["read"]++
		r.read(actions[i])
	}
	return 0
}

func (r *renderer) stock(actions []lab.RecordedAction, i int) int {
	op := actions[i].Op
	r.counts["stock"]++
	if op.Outcome != inventory.OK {
		r.leave("stock %s %d on %s from %s answered %s; a replay can only go on from a stocked shelf", op.SKU, op.Qty, op.Store, op.Region, op.Outcome)
		return 0
	}
	if r.leaderUnsure {
		r.waitLeader()
	}
	r.noteWriter(op.Store, op.Region)
	// "stock SKU N" stocks the consensus and the replicated store (the
	// geo store only when named): two such stocks in a row are one line.
	if i+1 < len(actions) {
		if n := actions[i+1].Op; n != nil && n.Op == inventory.OpStock && n.Outcome == inventory.OK && n.SKU == op.SKU && n.Qty == op.Qty && bothStores(op.Store, n.Store) {
			r.cur.ops = append(r.cur.ops, n)
			r.noteWriter(n.Store, n.Region)
			r.last = actions[i+1].Done
			r.emit("stock %s %d", op.SKU, op.Qty)
			return 1
		}
	}
	// A geo stock given per region keeps its split; an even split is
	// what "on geo" does by itself.
	r.emit("%s", Stock{SKU: op.SKU, Quantity: op.Qty, Store: op.Store, Split: op.Allocations}.String())
	return 0
}

// bothStores reports whether a and b are the two stores a plain "stock"
// line writes.
func bothStores(a, b inventory.Store) bool {
	return (a == inventory.Consensus && b == inventory.Replicated) || (a == inventory.Replicated && b == inventory.Consensus)
}

// noteWriter remembers that region wrote to store since replicas last
// agreed; a store the renderer has no map for (one a newer lab adds) gets
// one rather than a panic.
func (r *renderer) noteWriter(store inventory.Store, region string) {
	if r.writers[store] == nil {
		r.writers[store] = map[string]bool{}
	}
	r.writers[store][region] = true
}

// leave writes an outcome the replay cannot promise as a comment.
func (r *renderer) leave(format string, args ...any) {
	r.leftOut++
	r.emit("# left out: "+format, args...)
}

// breaker follows the (region, store) circuit breaker of the replay; it
// returns false when the recorded outcome cannot be reproduced.
func (r *renderer) breaker(a lab.RecordedAction) bool {
	op := a.Op
	key := op.Region + "/" + string(op.Store)
	b := r.breakers[key]
	if b == nil {
		b = &breakerModel{}
		r.breakers[key] = b
	}
	trips := max(r.rec.BreakerTrips, 1)
	if op.Outcome == inventory.FailFast {
		return b.open
	}
	if b.open {
		// The recording got through: the cooldown had passed. The replay
		// waits it out too (the runner multiplies waits by the scale).
		d := time.Duration(float64(r.rec.BreakerCooldown)/math.Max(r.rec.LatencyScale, 1)) + 500*time.Millisecond
		r.emit("wait %s # the circuit breaker's cooldown", d.Round(100*time.Millisecond))
		b.open = false
		if op.Outcome == inventory.Unavailable {
			b.failures = trips - 1
		}
	}
	if op.Outcome == inventory.Unavailable {
		b.failures++
		b.open = b.failures >= trips
	} else {
		b.failures = 0
	}
	return true
}

func (r *renderer) storeOp(a lab.RecordedAction, command string) (emit bool) {
	op := a.Op
	local := op.Store == inventory.Replicated || op.Consistency.MayBeStale()
	if local {
		r.caughtUp(op.Store, op.Region)
	}
	if op.Store == inventory.Consensus && !op.Consistency.MayBeStale() && op.Outcome != inventory.FailFast {
		switch c := r.commits(op.Region); {
		case op.Outcome == inventory.Unavailable && c == "yes" && r.leaderUnsure:
			r.leave("%s answered unavailable while the majority was still electing a leader; a replay waits for the leader, so it would not", command)
			r.waitLeader()
			return false
		case op.Outcome != inventory.Unavailable:
			r.waitLeader()
		}
	}
	if !r.breaker(a) {
		r.leave("%s answered fail_fast, but the replay's circuit breaker for %s in %s would not be open", command, op.Store, op.Region)
		return false
	}
	return true
}

func (r *renderer) buy(a lab.RecordedAction) {
	op := a.Op
	cmd := fmt.Sprintf("buy %s %s from %s", op.Store, op.SKU, op.Region)
	if op.Qty != 1 {
		cmd += fmt.Sprintf(" qty %d", op.Qty)
	}
	if !r.storeOp(a, cmd) {
		return
	}
	if op.Outcome == inventory.OK || op.Outcome == inventory.Unavailable {
		r.noteWriter(op.Store, op.Region)
	}
	r.emit("%s expect %s", cmd, op.Outcome)
}

func (r *renderer) read(a lab.RecordedAction) {
	op := a.Op
	cmd := fmt.Sprintf("read %s %s from %s", op.Store, op.SKU, op.Region)
	if op.Store == inventory.Consensus && op.Consistency.MayBeStale() {
		cmd += " " + string(op.Consistency)
	}
	if !r.storeOp(a, cmd) {
		return
	}
	if op.Outcome == inventory.OK {
		r.emit("expect %s = %d", cmd, op.Quantity)
		return
	}
	r.emit("%s expect %s", cmd, op.Outcome)
}

// reserve renders a lock-based reservation with the outcome it got.
func (r *renderer) reserve(a lab.RecordedAction) {
	op := a.Op
	r.counts["reservation"]++
	r.cur.ops = append(r.cur.ops, op)
	r.waitLeader()
	cmd := Reserve{SKU: op.SKU, Region: op.Region, Fenced: a.Fenced, Expect: op.Outcome}
	r.noteWriter(inventory.Consensus, op.Region)
	r.emit("%s", cmd.String())
}
