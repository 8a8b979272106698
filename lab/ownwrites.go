package lab

import (
	"sync"

	"caplab/lab/inventory"
)

// maxUnrecordedWrites bounds the ledger of unrecorded writes: at 5,000
// load writes a second the watcher drains it every outsideSettle (a few
// seconds), so it holds some 15,000; the cap only matters if the watcher
// stops for long (no member to watch through), and then the overflow is
// flagged as outside writes rather than kept without bound.
const maxUnrecordedWrites = 1 << 20

// unrecordedWrites is the outside-write watcher's record of the consensus
// writes the lab made without putting them into the History (a load's
// operations, lab.WithOpRecording): the revisions its confirmed stocks and
// buys wrote, with their SKU (one Txn of group commit writes several SKUs
// at one revision), and per SKU how many answered unavailable (each may still
// have landed and so explains at most one unknown revision of its SKU).
// Without it every load write would be judged an outside write: the
// watcher would record one fault per buy (and per stocked SKU), each
// with a leader refresh and a published event, and scan the whole
// History for them every half second.
type unrecordedWrites struct {
	mu          sync.Mutex
	epoch       int64
	revs        map[revSKU]struct{}
	unconfirmed map[string]int
}

// revSKU is one write: its revision and its SKU.
type revSKU struct {
	rev int64
	sku string
}

// note records an unrecorded operation's write, if it made one.
func (u *unrecordedWrites) note(op inventory.Operation, epoch int64) {
	if op.Store != inventory.Consensus || (op.Op != inventory.OpStock && op.Op != inventory.OpBuy) {
		return
	}
	if op.Outcome != inventory.OK && op.Outcome != inventory.Unavailable {
		return // sold out, conflict, fail-fast, overloaded: nothing written
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.sync(epoch)
	switch {
	case op.Outcome == inventory.Unavailable:
		if u.unconfirmed == nil {
			u.unconfirmed = map[string]int{}
		}
		if len(u.unconfirmed) < maxUnrecordedWrites {
			u.unconfirmed[op.SKU]++
		}
	case op.Version.Wall > 0:
		if u.revs == nil {
			u.revs = map[revSKU]struct{}{}
		}
		if len(u.revs) < maxUnrecordedWrites {
			u.revs[revSKU{op.Version.Wall, op.SKU}] = struct{}{}
		}
	}
}

// sync forgets everything of an older epoch (a reset: new keys). Under mu.
func (u *unrecordedWrites) sync(epoch int64) {
	if epoch != u.epoch {
		u.epoch = epoch
		clear(u.revs)
		clear(u.unconfirmed)
	}
}

// explain reports whether w is one of the lab's unrecorded writes, and
// takes it off the ledger (each explains one revision).
func (u *unrecordedWrites) explain(w seenWrite) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.sync(w.epoch)
	if _, ok := u.revs[revSKU{w.rev, w.sku}]; ok {
		delete(u.revs, revSKU{w.rev, w.sku})
		return true
	}
	if n := u.unconfirmed[w.sku]; n > 0 {
		if n == 1 {
			delete(u.unconfirmed, w.sku)
		} else {
			u.unconfirmed[w.sku] = n - 1
		}
		return true
	}
	return false
}
