package lessons

import (
	"slices"

	"caplab/lab/inventory"
)

// ---- the network model: what the replay's topology is at each point ----

func (r *renderer) whole() bool { return len(r.down) == 0 && len(r.cut) == 0 }

func (r *renderer) linked(a, b string) bool {
	return a == b || (!r.cut[[2]string{a, b}] && !r.cut[[2]string{b, a}])
}

// canLead reports whether l could lead: it is up and reaches a majority.
func (r *renderer) canLead(l string) bool {
	if r.down[l] {
		return false
	}
	n := 0
	for _, v := range r.rec.Regions {
		if !r.down[v] && r.linked(l, v) {
			n++
		}
	}
	return n > len(r.rec.Regions)/2
}

func (r *renderer) majority() bool {
	return slices.ContainsFunc(r.rec.Regions, r.canLead)
}

// commits says whether a consensus write from x succeeds once a leader is
// elected: "yes" whoever leads, "no" whoever leads, or "maybe" (a partial
// partition where it depends on who leads).
func (r *renderer) commits(x string) string {
	if r.down[x] {
		return "no"
	}
	yes, no := 0, 0
	for _, l := range r.rec.Regions {
		if !r.canLead(l) {
			continue
		}
		if r.linked(x, l) {
			yes++
		} else {
			no++
		}
	}
	switch {
	case yes > 0 && no == 0:
		return "yes"
	case yes == 0:
		return "no"
	}
	return "maybe"
}

func (r *renderer) topologyChanged() {
	r.leaderUnsure = true
	if !r.whole() {
		r.split = true
	}
}

// beforeFault waits for replicas to agree before the network breaks, as a
// person's pace lets them.
func (r *renderer) beforeFault() {
	if r.whole() && (r.wrote() || r.split) {
		r.converged()
	}
}

func (r *renderer) waitLeader() {
	if r.leaderUnsure && r.majority() {
		r.emit("wait leader")
		r.leaderUnsure = false
	}
}

func (r *renderer) wrote() bool {
	return len(r.writers[inventory.Consensus]) > 0 || len(r.writers[inventory.Replicated]) > 0
}

func (r *renderer) converged() {
	r.emit("wait converged")
	r.split = false
	clear(r.writers[inventory.Consensus])
	clear(r.writers[inventory.Replicated])
}

// caughtUp waits, before an operation on store from region x that reads
// local data, until writes from other regions it can reach have reached it.
func (r *renderer) caughtUp(store inventory.Store, x string) {
	other := false
	for w := range r.writers[store] {
		if w != x && r.linked(w, x) && !r.down[w] {
			other = true
		}
	}
	switch {
	case r.whole() && (other || r.split):
		r.converged()
	case other:
		r.emit("wait 1s # replication inside this side of the partition")
		clear(r.writers[store])
	}
}
