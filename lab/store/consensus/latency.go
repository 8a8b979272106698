package consensus

import (
	"slices"

	"caplab/nodes"
)

// CommitBoundMs is the physical least a consensus buy (or stock, or
// linearizable read) from region from costs, in ms at latency scale 1, with
// the group led by leader: the round trip from from to the leader (0 when
// from leads), plus the leader's round trip to the nearest followers that
// make a majority with it — the one quorum round every committed write
// needs. A consensus buy is one compare-and-swap Txn, so this is its whole
// cost on an idle lab; the model RTTs are the nodes package's.
func CommitBoundMs(regions []string, leader, from string) float64 {
	var peers []float64
	for _, r := range regions {
		if r != leader {
			rtt, _ := nodes.ModelRTT(leader, r)
			peers = append(peers, rtt)
		}
	}
	slices.Sort(peers)
	quorum := 0.0
	if need := len(regions)/2 - 1; need >= 0 && need < len(peers) { // followers a majority needs besides the leader
		quorum = peers[need]
	}
	toLeader := 0.0
	if from != leader {
		toLeader, _ = nodes.ModelRTT(from, leader)
	}
	return toLeader + quorum
}
