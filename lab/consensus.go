package lab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"caplab/nodes"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// consensusStore keeps the inventory in the one Raft group that spans every
// region (Spanner-like). A region's gateway talks to its own member; a
// member cut off from the majority cannot commit, so the store answers
// unavailable there — consistency over availability.
type consensusStore struct {
	cluster    *nodes.Cluster
	regions    []string
	maxRetries int
	timeout    time.Duration // a reservation's calls' deadline
	epoch      atomic.Int64  // bumped by every reset: keys live under it
	leader     leaderCache
}

// leaderCache remembers the consensus leader for the sentence of an
// answer ("leader us-east-1"), asked of the cluster at most every
// leaderFresh: asking reads every member's Raft status under its locks,
// which the hot path should not do once per operation.
type leaderCache struct {
	name       atomic.Pointer[string]
	at         atomic.Int64 // unix ns of the last look
	refreshing atomic.Bool
}

const leaderFresh = 20 * time.Millisecond

// get returns the leader as of at most leaderFresh ago; one caller at a
// time refreshes it, the others use the value in hand.
func (c *leaderCache) get(cl *nodes.Cluster) string {
	name := c.name.Load()
	if name == nil || time.Now().UnixNano()-c.at.Load() > int64(leaderFresh) {
		if c.refreshing.CompareAndSwap(false, true) || name == nil {
			c.refresh(cl)
			c.refreshing.Store(false)
			name = c.name.Load()
		}
	}
	return *name
}

// refresh asks the cluster now (a fault or leadership move just happened).
func (c *leaderCache) refresh(cl *nodes.Cluster) {
	l := cl.Leader()
	c.name.Store(&l)
	c.at.Store(time.Now().UnixNano())
}

const consensusPrefix = "/inventory/"

// key is a SKU's key in the current epoch. Each reset moves to a new
// epoch, so a write that answered unavailable but is still on its way
// (held in a slow link) lands where nobody reads any more, instead of
// resurrecting a value in the fresh store.
func (s *consensusStore) key(sku string) string {
	return fmt.Sprintf("%s%d/%s", consensusPrefix, s.epoch.Load(), sku)
}

// Epoch is the reset epoch the store's keys live under.
func (s *consensusStore) Epoch() int64 { return s.epoch.Load() }

// SetEpoch resumes an earlier run's epoch.
func (s *consensusStore) SetEpoch(e int64) { s.epoch.Store(e) }

// Close does nothing: the store writes nothing in the background.
func (s *consensusStore) Close() {}

// LeaderChanged makes the next answer ask the cluster for the leader (a
// fault or a leadership move just happened).
func (s *consensusStore) LeaderChanged() { s.leader.refresh(s.cluster) }

// Run executes one operation through the region's member. ctx carries the
// request deadline.
func (s *consensusStore) Run(ctx context.Context, op Operation, _ storeEnv) Outcome {
	cli, err := s.cluster.PooledMemberClient(op.Region)
	if err != nil {
		return unavailable(op, err)
	}
	// Writes and linearizable reads fail at once with "no leader" once the
	// member knows it has none, instead of waiting for the deadline. A
	// serializable read must not: answering from the local copy without a
	// leader is its whole point.
	if op.Op != OpRead || op.Consistency != Serializable {
		ctx = clientv3.WithRequireLeader(ctx)
	}
	key := s.key(op.SKU)
	leader := s.leader.get(s.cluster)
	switch op.Op {
	case OpStock:
		resp, err := cli.Put(ctx, key, strconv.Itoa(op.Qty))
		if err != nil {
			return unavailable(op, err)
		}
		v := Version{Wall: resp.Header.Revision}
		return Outcome{Outcome: OK, Quantity: op.Qty, Version: v, AnsweredBy: quorumOf(op.Region, leader),
			Message: fmt.Sprintf("Stocked %d. Committed by a majority of regions%s.", op.Qty, leaderPhrase(leader))}
	case OpRead:
		var opts []clientv3.OpOption
		if op.Consistency == Serializable {
			opts = append(opts, clientv3.WithSerializable())
		}
		resp, err := cli.Get(ctx, key, opts...)
		if err != nil {
			return unavailable(op, err)
		}
		qty, v := decodeConsensus(resp)
		if op.Consistency == Serializable {
			return Outcome{Outcome: OK, Quantity: qty, Version: v, AnsweredBy: []string{op.Region},
				Message: fmt.Sprintf("%d left, read from %s's own copy without asking the majority — fast, but it may be stale.", qty, cityOf(op.Region))}
		}
		return Outcome{Outcome: OK, Quantity: qty, Version: v, AnsweredBy: quorumOf(op.Region, leader),
			Message: fmt.Sprintf("%d left, confirmed with a majority%s: this is the latest value.", qty, leaderPhrase(leader))}
	default:
		return s.buy(ctx, cli, op, leader)
	}
}

// buy is one compare-and-swap on the key's ModRevision (optimistic
// locking: the version check of the brief's regional_stock row), costing
// one quorum round trip — the physical minimum for a consistent write.
//
// The version to compare with comes from the region's own copy (a
// serializable read: its member answers without asking anyone, so it costs
// no round trip and may be stale). The Txn then commits through Raft only
// if the key still has that revision; if it does not, its Else branch
// returns the current value and revision, and the retry compares with
// those — no extra read. The commit is what makes the buy linearizable:
// the count it decremented was the latest at the moment the majority
// agreed. A buy the copy says is sold out is confirmed the same way: the
// Txn compares and reads (read-only, so etcd answers it with one
// ReadIndex round instead of a log entry). BaseVersion is the revision the
// buy's decision was made on.
func (s *consensusStore) buy(ctx context.Context, cli *clientv3.Client, op Operation, leader string) Outcome {
	key := s.key(op.SKU)
	local, err := cli.Get(ctx, key, clientv3.WithSerializable())
	if err != nil {
		return unavailable(op, err)
	}
	qty, base := decodeKVs(local.Kvs)
	for range s.maxRetries {
		selling := qty >= op.Qty
		then := clientv3.OpGet(key)
		if selling {
			then = clientv3.OpPut(key, strconv.Itoa(qty-op.Qty))
		}
		txn, err := cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", base.Wall)).
			Then(then).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return unavailable(op, err)
		}
		if !txn.Succeeded { // the copy was stale or another buyer won: retry on what the Else read
			qty, base = decodeKVs(txn.Responses[0].GetResponseRange().GetKvs())
			continue
		}
		if !selling {
			return Outcome{Outcome: SoldOut, Quantity: qty, Version: base, BaseVersion: base, AnsweredBy: quorumOf(op.Region, leader),
				Message: soldOutMessage(qty, op.Qty)}
		}
		return Outcome{Outcome: OK, Quantity: qty - op.Qty, Version: Version{Wall: txn.Header.Revision}, BaseVersion: base,
			AnsweredBy: quorumOf(op.Region, leader),
			Message:    fmt.Sprintf("Sold — %d left. Committed by a majority of regions%s.", qty-op.Qty, leaderPhrase(leader))}
	}
	return Outcome{Outcome: Conflict, AnsweredBy: quorumOf(op.Region, leader),
		Message: fmt.Sprintf("Conflict: other buyers changed the stock %d times while this buy tried; nothing was sold — try again.", s.maxRetries)}
}

func decodeConsensus(resp *clientv3.GetResponse) (int, Version) { return decodeKVs(resp.Kvs) }

func decodeKVs(kvs []*mvccpb.KeyValue) (int, Version) {
	if len(kvs) == 0 {
		return 0, Version{}
	}
	q, _ := strconv.Atoi(string(kvs[0].Value))
	return q, Version{Wall: kvs[0].ModRevision}
}

// quorumOf names the regions that took part in a committed operation: the
// buyer's own member and the leader (a majority acknowledged; etcd does
// not say which members).
func quorumOf(region, leader string) []string {
	out := []string{region}
	if leader != "" && leader != region {
		out = append(out, leader)
	}
	return out
}

func leaderPhrase(leader string) string {
	if leader != "" {
		return " (leader " + leader + ")"
	}
	return ""
}

// unavailable explains why a store call did not complete.
func unavailable(op Operation, err error) Outcome {
	why := "the request timed out"
	switch msg := err.Error(); {
	case strings.Contains(msg, "no leader"):
		why = "it has no leader"
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "deadline exceeded"):
		why = "no answer came before the deadline"
	}
	m := fmt.Sprintf("Unavailable: %s cannot reach a majority of regions (%s). The consensus store chose consistency over availability.", cityOf(op.Region), why)
	if op.Op == OpBuy || op.Op == OpStock {
		m += " The write may still be applied later."
	}
	return Outcome{Outcome: Unavailable, Message: m}
}

func soldOutMessage(left, asked int) string {
	if left == 0 {
		return "Sold out: none left."
	}
	return fmt.Sprintf("Sold out: only %d left, you asked for %d.", left, asked)
}

// Clear moves to a new epoch and deletes every SKU of the old ones, through the leader's own member first (a
// follower's forwarded proposal can be lost while a just-healed link
// reconnects, and would then cost a whole timeout), then any other.
func (s *consensusStore) Clear(ctx context.Context) error {
	s.epoch.Add(1)
	order := s.regions
	if l := s.cluster.Leader(); l != "" {
		order = append([]string{l}, slices.DeleteFunc(slices.Clone(s.regions), func(r string) bool { return r == l })...)
	}
	var last error
	for _, r := range order {
		cli, err := s.cluster.MemberClient(r)
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = cli.Delete(clientv3.WithRequireLeader(cctx), consensusPrefix, clientv3.WithPrefix())
		cancel()
		if err == nil {
			return nil
		}
		last = err
	}
	return last
}
