// Package store is the contract between the lab and its three stores,
// which live in the packages below it: consensus (CP: one etcd Raft group
// spanning every region), replicated (AP: a quorum coordinator over one
// replica per region) and geo (one allocation per region in the region's
// own Raft group). A Store runs one operation as a region's gateway,
// empties itself for a reset, closes, and keeps its keys under a reset
// epoch that the lab saves beside the data. Env carries what an operation
// needs from the lab; a store gets everything else at construction — the
// cluster, its regions, breakers, the log its calls go to — and never sees
// the lab. The sentences every store shares (City, SoldOut) are here.
package store
