// Package lab is caplab's orchestrator: one global inventory kept in three
// stores over the regions of package nodes, and everything around them.
// The scenario is a limited drop on Black Friday: per SKU one stock count
// that buyers in every region contend for.
//
// The lab wires rooms with one job each, in packages of their own — the
// dependencies point one way (inventory ← history ← check; guard, stores ←
// lab ← lessons, web, load):
//
//   - lab/inventory: the names and rules every part shares (stores,
//     outcomes, versions, the SKU pattern, quorum/LWW/HLC arithmetic, Echo,
//     the errors callers branch on). No I/O.
//   - lab/history: the History of operations and faults, the geo store's
//     call log and the ledger of recording gaps, with their caps.
//   - lab/check: the checker — pure, no etcd, no nodes: every verdict is
//     computed from recorded data (Judge over a Recorded), so an export
//     reproduces it.
//   - lab/guard: the request path's layers — gate, admission, breakers,
//     deadline.
//   - lab/store and lab/store/{consensus,replicated,geo}: the three stores
//     behind one Store interface (CP: one Raft group across every region;
//     AP: a W/R quorum coordinator over per-region replicas; geo: one
//     allocation per region in that region's own Raft group).
//   - lab/audit: the durable audit log and the exports (JSON Lines,
//     porcupine, Jepsen EDN), and reading them back.
//
// Lab itself is a facade (at most 30 methods: TestLabIsAFacade). It gives
// every caller — the web API, lessons, the load generator, scripts — one
// command path: Stock, Buy, Read, StockSplit and Reserve all run through
// do, in one order — the gate (a reset holds operations out), the decision
// to record (the History, or a recording gap noted before the write can
// reach a store), the shop's pause, admission, the (region, store) breaker
// (the geo store guards each of its calls itself), the up-check, the
// deadline, the store; then the History or the ledger of the lab's own
// unrecorded writes, the lesson recording, the counters and the event
// stream. The geo store's allocation bars, its conservation audit and
// transfer recovery (Geo()) are reads and repairs, not operations: they
// are the documented exceptions, neither recorded nor judged.
//
// Faults and configuration changes (links, partitions, zones, crashes,
// leadership, the replicated store's W and R) belong to Faults(); clocks
// and shop pauses to Time(); the lesson recording to Recorder(). Every
// change is recorded through one helper (faultHappened): the History, the
// event stream, the audit log and the recording alike.
//
// Every operation returns an Outcome (ok, sold_out, unavailable,
// fail_fast, conflict, overloaded) with its latency, who answered, and a
// sentence for a learner. Check judges what the lab recorded of one store's
// SKU with lab/check, remembering the verdicts of segments that no longer
// change; for the geo store it adds the live conservation audit, which
// reads the stores and is no part of the verdict. A counting goroutine
// keeps the oversold and stale-read counters up to date from what is new
// in the History (check.Tally); viewers get the State at most every 50 ms
// (Subscribe). OpenAudit attaches a durable audit log (lab/audit) through
// Record, a hook that, unlike a Subscribe channel, misses nothing; Export
// writes the history for checkers outside the lab.
//
// Outside etcd clients (etcdctl through the client URLs State lists)
// bypass all of this: their writes are not operations. The lab watches the
// consensus store's keys and records a revision of a SKU that none of its
// operations wrote — from the revision after the group's newest at start
// — as an outside_write fault (outside.go).
//
// Every recorded fault carries the network it left (inventory.FaultNet),
// and the History the network it started with: MomentAt rebuilds the
// State at any moment since the last reset from recorded data alone, and
// ReplayOf a stretch of it, step by step (replay.go) — pure functions,
// run on request, no method of Lab.
//
// A lab started again on an earlier run's data directory resumes the
// stores' reset epochs (resume.go) and judges each SKU again from its
// first restock (a resumed recording gap).
package lab
