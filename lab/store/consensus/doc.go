// Package consensus is the lab's CP store: the inventory in the one etcd
// Raft group that spans every region (Spanner-like). A region's gateway
// talks to its own member. A buy is one compare-and-swap Txn on the key's
// ModRevision, with the version read from the region's own copy — one
// quorum round trip, the physical least (CommitBoundMs) — and it retries
// on what the Txn's Else branch read, a bounded number of times (then:
// conflict). A member cut off from the majority cannot commit, so the
// store answers unavailable there: consistency over availability.
//
// Group commit (batch.go; SetGroupCommit) combines a region's concurrent
// buys of one SKU into one such Txn — k buys, one Raft round — answering
// each for itself and recording its place in the batch (Outcome.Batch),
// so the checker's lost-update rule can count commits instead of buys.
// Rounds says how many Txns the buys cost per unit sold.
//
// The regional caches (cache.go; RunCache) keep every count in each
// region's memory, fed by a watch through the region's own member, and
// answer reads of consistency cached without the network or Raft, with
// their lag (Outcome.CacheLag, CacheLag).
//
// Reserve is the lock-and-fencing flow of the time lessons: take the SKU's
// etcd lock (a lease, concurrency.Mutex), read, write the sale — trusting
// the lock, or with the lock's revision as a fencing token the storage
// checks. A paused shop freezes in it through a Freezer.
package consensus
