package nodes

import (
	"context"
	"slices"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// The first election of a new (or resumed) group. Raft waits out a
// randomised election timeout in [E, 2E) before the first campaign (etcd
// fast-forwards all but two ticks once its peers are connected, which
// leaves the random part): at real latencies E is over a second, so a lab
// was ready after 1.1–1.3 s. Start instead asks one member to campaign at
// once, the way a leader hands over leadership: it sends that member
// raft's MsgTimeoutNow. The campaign is an ordinary raft election (a vote
// per member per term, the up-to-date log check), only without the
// pre-vote round, so it cannot break safety; it is sent only while no
// member knows a leader.

// firstCandidate is the region whose member reaches a majority of the
// others fastest at the model latencies: the smallest k-th round-trip time
// to another region, k = the votes it needs besides its own; ties go to
// the smaller sum of round-trip times, then to the earlier region.
func firstCandidate(regions []string) string {
	best, bestK, bestSum := "", 0.0, 0.0
	need := len(regions) / 2 // votes besides its own
	for _, a := range regions {
		var rtts []float64
		sum := 0.0
		for _, b := range regions {
			if a != b {
				rtt, _ := ModelRTT(a, b)
				rtts = append(rtts, rtt)
				sum += rtt
			}
		}
		slices.Sort(rtts)
		k := 0.0
		if need > 0 {
			k = rtts[need-1]
		}
		if best == "" || k < bestK || (k == bestK && sum < bestSum) {
			best, bestK, bestSum = a, k, sum
		}
	}
	return best
}

// hurryFirstElection asks the first candidate to campaign, again every
// 20 ms (a member ignores the request until it has applied the group's
// initial configuration), until some member knows a leader or ctx ends.
func (c *Cluster) hurryFirstElection(ctx context.Context) {
	if len(c.regions) < 2 {
		return
	}
	target := c.byName[firstCandidate(c.cfg.Regions)]
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		var from uint64
		for _, r := range c.regions {
			m, _ := r.servers()
			if !running(m) {
				continue
			}
			if m.Server.Leader() != 0 {
				return
			}
			if r != target && from == 0 {
				from = uint64(m.Server.MemberID())
			}
		}
		tm, _ := target.servers()
		if running(tm) && from != 0 {
			to, term := uint64(tm.Server.MemberID()), tm.Server.Term()
			_ = tm.Server.Process(ctx, &raftpb.Message{
				Type: raftpb.MessageType_MsgTimeoutNow.Enum(), To: &to, From: &from, Term: &term,
			})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
