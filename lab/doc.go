// Package lab is caplab's domain: one global inventory kept in two stores
// over the regions of package nodes, with a circuit breaker in front of
// every (region, store), a history of every operation and fault, and a
// checker that judges the history.
//
// The scenario is a limited drop on Black Friday: per SKU one stock count
// that buyers in every region contend for.
//
//   - The consensus store (CP) keeps the count in the one etcd Raft group
//     spanning every region. A buy reads the count and writes it back with
//     an etcd Txn comparing the key's ModRevision (optimistic locking),
//     retrying a bounded number of times (then: conflict). A region cut
//     off from the majority answers unavailable within the request
//     deadline — it never sells what it cannot confirm.
//   - The replicated store (AP, tunable) is a quorum coordinator in the
//     buyer's region over per-region replicas: N regions, W acks to write,
//     R replies to read, versions from a hybrid logical clock with the
//     region as tie-breaker, last-writer-wins, read repair, background
//     replication. With W=1 a partitioned region keeps selling, and the
//     lab can oversell; with W+R>N the minority refuses.
//
// Every operation returns an Outcome (ok, sold_out, unavailable,
// fail_fast, conflict) with its latency, who answered, and a sentence for
// a learner. Every operation and fault is recorded in the History; Check
// runs porcupine with an inventory model and counts sold, oversold,
// indeterminate, stale and lost-update operations.
//
// The History keeps at most MaxHistoryOperations since the last reset (a
// verdict past it says it judged only those: CheckResult.Unjudged). For
// keeps, OpenAudit appends every operation, fault and reset to a durable
// JSON Lines log (audit.go), fed by Record — a hook that, unlike a
// Subscribe channel, misses nothing — and Export / ExportAudit write the
// history as JSON Lines, porcupine's operation log or a Jepsen EDN history
// (export.go) for checkers outside the lab. Error messages repeat a
// person's input through Echo (at most MaxEcho characters).
//
// All callers — the web API, lessons, scripts — use the same *Lab
// methods, so there is one command path and one event stream (Subscribe).
//
// Pure parts (quorum arithmetic, the LWW merge, the hybrid logical clock,
// the inventory model and the checker) are plain functions over values
// and are tested exhaustively on their own.
package lab
