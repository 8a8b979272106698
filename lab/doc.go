// Package lab is caplab's domain: one global inventory kept in three stores
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
//   - The geo store (geo.go, geo_transfer.go) keeps one allocation per
//     (sku, region) in the region's own regional Raft group (one member per
//     zone): a buy is one Txn in the buyer's region, a local quorum. An
//     exhausted allocation borrows from another region by a recoverable
//     transfer (debit + record at the source, credit idempotent by transfer
//     id at the destination, recovery completes or refunds); a partition
//     stops borrowing and strands units, never sells one twice. Its checker
//     (geo_check.go) judges each region's allocation history on its own
//     and audits conservation: stocked = sold + left + in transit.
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
// indeterminate, stale and lost-update operations. A counting goroutine keeps the
// oversold and stale-read counters up to date from what is new in the
// history; viewers get the State at most every 50 ms.
//
// A verdict is computed from recorded data alone (Judge over a Recorded:
// operations, recording gaps, the geo call log — pure functions, no etcd,
// so an export reproduces it and "caplab history check" gives the same
// answer; ReadHistory reads one back). Whatever bounds recording (a
// caller's WithOpRecording, the History's cap, the geo log's cap), the lab
// decides it at the operation's call and notes an unrecorded write as a
// recording gap on its (store, SKU) before it is sent (gaps.go); the
// checker judges each SKU up to its first gap and again from a clean
// restock after one that ended (cut.go), and says what it covered
// (CheckResult.Cuts). A failed search names the answer it could not place
// and what the answers before it allow (evidence.go); the explanation is
// written from that evidence (explain.go).
//
// Outside etcd clients (etcdctl through the client URLs State lists for
// every region's member and replica) bypass all of this: their writes are
// not operations. The lab watches the consensus store and records a
// revision of a SKU that none of its operations wrote as an outside_write
// fault (outside.go).
//
// The History keeps at most MaxHistoryOperations since the last reset,
// decided at each operation's call (a verdict past it says it judged only
// those: CheckResult.Unjudged, and the writes past it are gaps). For
// keeps, OpenAudit appends every operation, fault and reset to a durable
// JSON Lines log (audit.go), fed by Record — a hook that, unlike a
// Subscribe channel, misses nothing — and Export / ExportAudit write the
// history as JSON Lines, porcupine's operation log or a Jepsen EDN history
// (export.go) for checkers outside the lab — with the gaps and geo calls
// its verdicts are computed from. Error messages repeat a
// person's input through Echo (at most MaxEcho characters).
//
// All callers — the web API, lessons, scripts — use the same *Lab
// methods, so there is one command path and one event stream (Subscribe).
//
// Time (time.go, reserve.go): each region has a wall clock (nodes.Clocks)
// that the replicated store's hybrid logical clock reads, so SetClock
// skews its last-writer-wins order; etcd's own timers are not skewed.
// Pause freezes a region's shop mid-flight; Reserve is the etcd-lock
// "reserve and sell" flow, with or without a fencing token.
//
// Recording (recording.go): every action since the last reset or
// StartRecording, in order, at most 1,000, for the lessons package to
// render as a lesson. The lab knows nothing of the lesson format.
//
// Pure parts (quorum arithmetic, the LWW merge, the hybrid logical clock,
// the inventory model and the checker) are plain functions over values
// and are tested exhaustively on their own.
package lab
