package inventory

import "fmt"

// ValidateQuorum checks a replicated-store configuration: n replicas, a
// write succeeding at w acknowledgements and a read at r replies, each
// between 1 and n. The error wraps ErrBadInput with a sentence naming the
// bad value.
func ValidateQuorum(n, w, r int) error {
	if n < 1 {
		return fmt.Errorf("%w: the replicated store needs at least 1 replica (got %d)", ErrBadInput, n)
	}
	if w < 1 || w > n {
		return fmt.Errorf("%w: w must be between 1 and %d (got %d)", ErrBadInput, n, w)
	}
	if r < 1 || r > n {
		return fmt.Errorf("%w: r must be between 1 and %d (got %d)", ErrBadInput, n, r)
	}
	return nil
}

// Majority is the smallest number of n replicas that is more than half:
// ⌊n/2⌋+1. Any two majorities of the same n replicas share a replica.
func Majority(n int) int { return n/2 + 1 }

// Overlaps reports whether every read quorum of r replicas shares at least
// one replica with every write quorum of w (W+R>N), so a read sees the
// latest acknowledged write. It does not prevent lost updates under
// concurrent read-modify-write.
func Overlaps(n, w, r int) bool { return w+r > n }

// GlobalTables is the "Global tables" preset: W=1, R=1 over n replicas —
// always available for every region that can reach its own replica, and
// able to oversell.
func GlobalTables(n int) QuorumState { return QuorumState{N: n, W: 1, R: 1} }

// StrictQuorum is the "Strict quorum" preset: W and R are majorities of n,
// so they overlap, and a region cut off from a majority is unavailable.
func StrictQuorum(n int) QuorumState {
	return QuorumState{N: n, W: Majority(n), R: Majority(n)}
}

// Newest picks the newest of the R replies to a read, by Merge, and lists
// the indexes of the replies that differ from it — the replicas read repair
// should write the newest item back to. A reply with the zero Version (the
// replica never saw the SKU) is stale as soon as any reply is written.
// With no replies it returns the zero Item and no indexes.
func Newest(items []Item) (Item, []int) {
	var newest Item
	for _, it := range items {
		newest = Merge(newest, it)
	}
	var stale []int
	for i, it := range items {
		if it != newest {
			stale = append(stale, i)
		}
	}
	return newest, stale
}
