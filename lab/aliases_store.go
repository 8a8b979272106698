package lab

// Transitional aliases: these names moved to the store packages (issue
// 20). go fix -inline ./... rewrites callers.

import (
	"caplab/lab/store/consensus"
	"caplab/lab/store/geo"
)

//go:fix inline
type GeoRecovery = geo.Recovery

//go:fix inline
const LockTTL = consensus.LockTTL

//go:fix inline
func CommitBoundMs(regions []string, leader, from string) float64 {
	return consensus.CommitBoundMs(regions, leader, from)
}
