package check

import "caplab/lab/inventory"

// Group commit and the lost-update rule. Buys that read the same count
// (the same BaseVersion) and were each committed on their own overwrote
// one another: all but one are lost updates. Buys that the consensus
// store's group commit carried in one Txn (the same Batch.Commit) read
// the same count legitimately: the Txn applied them one after another,
// each leaving its own count. So the rule counts commits, not buys: per
// base version, the buys beyond the largest commit on it are lost —
// every other commit on that base overwrote it. Within one commit, two
// buys that answered the same "left" cannot both have been applied: each
// repeated count is a lost update too (a batch that claims more than its
// Txn did).

// commitKey names one commit: a group commit's revision, or, for a buy
// that went alone, the buy itself.
type commitKey struct {
	commit int64 // Batch.Commit; 0: the buy went alone
	op     int   // the buy's ID when it went alone
}

// baseGroups gathers ok buys by the base version they read.
type baseGroups map[inventory.Version]*baseGroup

// baseGroup is the ok buys on one base version, by commit, with the
// distinct counts each commit's buys left.
type baseGroup struct {
	buys    int
	commits map[commitKey]map[int]struct{}
}

// add counts an ok buy; buys with no base version (stores that do not
// report one) are not judged.
func (g baseGroups) add(op *inventory.Operation) {
	if op.BaseVersion.IsZero() {
		return
	}
	b := g[op.BaseVersion]
	if b == nil {
		b = &baseGroup{commits: map[commitKey]map[int]struct{}{}}
		g[op.BaseVersion] = b
	}
	b.buys++
	k := commitKey{commit: op.Batch.Commit}
	if op.Batch.Size == 0 || op.Batch.Commit == 0 {
		k = commitKey{op: op.ID}
	}
	lefts := b.commits[k]
	if lefts == nil {
		lefts = map[int]struct{}{}
		b.commits[k] = lefts
	}
	lefts[op.Quantity] = struct{}{}
}

// lost is the number of lost updates: per base, the buys beyond the
// distinct counts of its largest commit.
func (g baseGroups) lost() int {
	lost := 0
	for _, b := range g {
		best := 0
		for _, lefts := range b.commits {
			best = max(best, len(lefts))
		}
		lost += b.buys - best
	}
	return lost
}
