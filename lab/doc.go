// Package lab is caplab's domain: one global inventory kept in two stores
// over the regions of package nodes, with a circuit breaker in front of
// every (region, store), a history of every operation and fault, and a
// checker that judges the history.
//
// The scenario is a limited drop on Black Friday: per SKU one stock count
// that buyers in every region contend for.
//
//   - The consensus store (CP) keeps the count in the one etcd Raft group
//     spanning every region. A buy is one etcd Txn comparing the key's
//     ModRevision with the one the region's own copy holds (optimistic
//     locking) — one quorum round trip, the physical least
//     (CommitBoundMs); when it loses the race its Else branch returns the
//     current count, and it retries on that a bounded number of times
//     (then: conflict). A region cut off from the majority answers
//     unavailable within the request deadline — it never sells what it
//     cannot confirm.
//   - The replicated store (AP, tunable) is a quorum coordinator in the
//     buyer's region over per-region replicas: N regions, W acks to write,
//     R replies to read, versions from a hybrid logical clock with the
//     region as tie-breaker, last-writer-wins, read repair, background
//     replication. With W=1 a partitioned region keeps selling, and the
//     lab can oversell; with W+R>N the minority refuses.
//
// Each region's gateway admits a bounded number of requests per store at
// once (a limit that adapts to latency); the excess is answered at once
// with overloaded, which never reaches a store or a breaker.
//
// Every operation returns an Outcome (ok, sold_out, unavailable,
// fail_fast, conflict, overloaded) with its latency, who answered, and a
// sentence for a learner. Every operation and fault is recorded in the
// History (appends take no lock); Check runs porcupine with an inventory
// model, segment by segment between restocks, and counts sold, oversold,
// indeterminate, stale and lost-update operations. An auditor keeps the
// oversold and stale-read counters up to date from what is new in the
// history; viewers get the State at most every 50 ms.
//
// All callers — the web API, lessons, scripts — use the same *Lab
// methods, so there is one command path and one event stream (Subscribe).
//
// Pure parts (quorum arithmetic, the LWW merge, the hybrid logical clock,
// the inventory model and the checker) are plain functions over values
// and are tested exhaustively on their own.
package lab
