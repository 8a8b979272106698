// Package geo is the lab's geo-partitioned store: the brief's
// regional_stock row per (sku, region), pinned to its region. Each
// region's allocation of a SKU lives in that region's own regional Raft
// group (one etcd member per zone), so a buy commits with a quorum of the
// buyer's own zones — no ocean crossed. An exhausted allocation borrows
// from another region's by a recoverable transfer (debit and record at
// the source, credit idempotent by transfer id at the destination;
// Recover completes or refunds), so a partition stops borrowing and
// strands units but never sells one twice. Conservation — stocked = sold
// + allocations + units in transit — is checkable from the rows
// (Conservation).
//
// The store guards each call into a group through the breaker of its path
// (store.SelfGuarded) and logs each call (Config.Log): the geo verdict is
// computed from that log, region by region.
package geo
