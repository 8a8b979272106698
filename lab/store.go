package lab

import "context"

// storeAPI is the contract between the lab and each of its stores: run one
// operation as op.Region's gateway, empty itself for a reset, close, and
// keep its keys under a reset epoch that the lab saves beside the data.
type storeAPI interface {
	// Run executes op as op.Region's gateway, within ctx.
	Run(ctx context.Context, op Operation, env storeEnv) Outcome
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

// storeEnv is what an operation needs from the lab besides itself.
type storeEnv struct {
	// Quorum is the replicated store's W and R as the operation began.
	Quorum QuorumState
}

// selfGuarded marks a store that sends each of its calls through the
// breaker of its own path (Breakers.ExecutePath): the lab must not wrap
// the whole operation in the (region, store) breaker.
type selfGuarded interface{ selfGuarded() }

// storeSlot is one store as do runs it.
type storeSlot struct {
	api         storeAPI
	selfGuarded bool // the store guards its own calls (selfGuarded)
}

var (
	_ storeAPI    = (*consensusStore)(nil)
	_ storeAPI    = (*replicatedStore)(nil)
	_ storeAPI    = (*geoStore)(nil)
	_ selfGuarded = (*geoStore)(nil)
)
