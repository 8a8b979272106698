package nodes

import (
	"context"
	"slices"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
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
//
// Only on new data. A server started on a log it has to replay must not be
// asked: etcd 3.7 restarts raft with its applied index at the last disk
// snapshot (0 for a server that never took one — its first 5,000 entries,
// SnapshotCount) and, once it has replayed 100 entries, compacts its
// in-memory log to index 1 (compactRaftLog's floor) before raft hears that
// they were applied. A campaign in that gap makes raft scan the
// "unapplied" entries from index 1 for configuration changes, find them
// compacted and panic ("error scanning unapplied entries [1, N):
// requested index is unavailable due to compaction"), which kills the
// process. The gap is only open while raft waits for the replay of a
// batch holding a configuration change (the group's first entries), when
// raft's own timers cannot fire a campaign, so only a request from
// outside could: issue 19 saw 3 of 5 restarts after a kill -9 die so,
// every replica asked every 20 ms. A resumed group elects on its own
// timers (a replica within its first 0.55 s; etcd fast-forwards a
// member's election ticks once its peers are connected).

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

// hurryFirstElection asks the first candidate of the consensus group, and
// every replica (a group of one, which would otherwise wait up to 550 ms
// for its own timeout), to campaign, again every 20 ms (a member ignores
// the request until it has applied its group's initial configuration),
// until every group knows a leader or ctx ends. Each server is asked until
// it has campaigned once (its term moved): a member whose log turns out to
// be behind loses that election, and asking again would only keep
// interrupting the others' — raft's own timeouts take over.
func (c *Cluster) hurryFirstElection(ctx context.Context) {
	target := c.byName[firstCandidate(c.cfg.Regions)]
	asked := map[*embed.Etcd]uint64{} // server → its term when first asked
	campaign := func(e *embed.Etcd, from uint64) {
		term := e.Server.Term()
		if first, ok := asked[e]; ok && term > first {
			return // it has campaigned
		} else if !ok {
			asked[e] = term
		}
		to := uint64(e.Server.MemberID())
		_ = e.Server.Process(ctx, &raftpb.Message{
			Type: raftpb.MessageType_MsgTimeoutNow.Enum(), To: &to, From: &from, Term: &term,
		})
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		settled := true
		var from uint64 // another member of the consensus group
		groupLed := false
		for _, r := range c.regions {
			m, rep := r.servers()
			if running(rep) && rep.Server.Leader() == 0 {
				settled = false
				id := uint64(rep.Server.MemberID())
				campaign(rep, id)
			}
			if !running(m) {
				continue
			}
			if m.Server.Leader() != 0 {
				groupLed = true
			}
			if r != target && from == 0 {
				from = uint64(m.Server.MemberID())
			}
		}
		if !groupLed {
			settled = false
			if tm, _ := target.servers(); running(tm) && (from != 0 || len(c.regions) == 1) {
				if from == 0 {
					from = uint64(tm.Server.MemberID())
				}
				campaign(tm, from)
			}
		}
		if settled {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// hurried is a server an agent asks to campaign (agent_region.go), and
// the member named as the request's sender (0: the server itself).
type hurried struct {
	e    *embed.Etcd
	from uint64
}

// hurryServers is hurryFirstElection for the servers one agent runs: each
// that knows no leader is asked to campaign, again every 20 ms, until it
// has campaigned once (its term moved) or knows a leader, or ctx ends.
func hurryServers(ctx context.Context, servers func() []hurried) {
	asked := map[*embed.Etcd]uint64{}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		settled := true
		for _, h := range servers() {
			if !running(h.e) || h.e.Server.Leader() != 0 {
				continue
			}
			settled = false
			term := h.e.Server.Term()
			if first, ok := asked[h.e]; ok && term > first {
				continue // it has campaigned
			} else if !ok {
				asked[h.e] = term
			}
			to := uint64(h.e.Server.MemberID())
			from := h.from
			if from == 0 {
				from = to
			}
			_ = h.e.Server.Process(ctx, &raftpb.Message{
				Type: raftpb.MessageType_MsgTimeoutNow.Enum(), To: &to, From: &from, Term: &term,
			})
		}
		if settled {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
