// Package check judges histories. Given what the lab recorded of one store
// (Recorded: its operations, the gaps in that record, and for the geo store
// the calls into its regional Raft groups), it says whether one order of
// events explains every answer (Judge). It uses porcupine with an inventory
// model, cuts each SKU's history at its recording gaps (judging up to the
// first and again from a clean restock after one that ended), judges it
// segment by segment between restocks (Memo remembers the segments that no
// longer change), and judges the geo store's allocations region by region.
// It counts sold, oversold, indeterminate, stale-read and lost-update
// operations, names the answer no order could place (Unplaced) and
// explains the verdict in a sentence or two for a learner. Tally applies
// the same counting rules incrementally, for the lab's live counters;
// Porcupine and PorcupineGeo give the judged operations as porcupine reads
// them, for an export.
//
// It is pure: no clock but the timeout it is given, no network, no etcd,
// no nodes (TestCheckerIsPure). The lab's live verdict, its counters and
// an exported history read back on another machine ("caplab history
// check") get the same answer from the same records. The geo store's
// conservation audit (GeoConservation) is read from the stores by the lab
// and is no part of a verdict.
package check
