package store

import (
	"context"
	"fmt"

	"caplab/lab/inventory"
	"caplab/nodes"
)

// Store is one of the lab's stores.
type Store interface {
	// Run executes op as op.Region's gateway, within ctx.
	Run(ctx context.Context, op inventory.Operation, env Env) inventory.Outcome
	// Clear empties the store for a reset: it waits for its own background
	// writes, moves to a new epoch and deletes the old keys.
	Clear(ctx context.Context) error
	// Close ends the store's background work. Safe to call twice.
	Close()
	// Epoch is the reset epoch the store's keys live under.
	Epoch() int64
	// SetEpoch resumes an earlier run's epoch.
	SetEpoch(int64)
}

// Env is what an operation needs from the lab besides itself.
type Env struct {
	// Quorum is the replicated store's W and R as the operation began.
	Quorum inventory.QuorumState
}

// SelfGuarded marks a store that sends each of its calls through the
// breaker of its own path (guard.Breakers.ExecutePath): the lab must not
// wrap the whole operation in the (region, store) breaker.
type SelfGuarded interface{ SelfGuarded() }

// City names a region for a person: "Singapore (ap-southeast-1)".
func City(region string) string {
	if p, ok := nodes.Lookup(region); ok {
		return p.City + " (" + region + ")"
	}
	return region
}

// SoldOut is the sentence of a buy that found too few units.
func SoldOut(left, asked int) string {
	if left == 0 {
		return "Sold out: none left."
	}
	return fmt.Sprintf("Sold out: only %d left, you asked for %d.", left, asked)
}

// UnitsAre says how many units are: "1 unit is", "3 units are".
func UnitsAre(n int) string {
	if n == 1 {
		return "1 unit is"
	}
	return fmt.Sprintf("%d units are", n)
}
