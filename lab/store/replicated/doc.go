// Package replicated is the lab's AP store, tunable: the design brief's
// quorum coordinator over regional replicas (DynamoDB-global-tables-like).
// Every region has its own replica (a single-member etcd); the coordinator
// in the buyer's region sends each read and write to all N replicas across
// the fabric and answers at R replies or W acks. Versions are hybrid
// logical clock stamps read from the region's own wall clock, with the
// writing region as tie-breaker; replicas keep the newest
// (last-writer-wins). Stale replicas are repaired on read, and a
// background replicator (AntiEntropy) pushes every replica's newest values
// to the others, so replicas converge after a heal. W and R are the
// store's own configuration (Quorum, SetQuorum); an operation runs with
// the W and R it began with (store.Env).
package replicated
