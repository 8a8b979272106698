package consensus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"caplab/lab/inventory"
	"caplab/lab/store"
	"caplab/nodes"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Store keeps the inventory in the one Raft group that spans every
// region (Spanner-like). A region's gateway talks to its own member; a
// member cut off from the majority cannot commit, so the store answers
// unavailable there — consistency over availability.
type Store struct {
	cluster    *nodes.Cluster
	regions    []string
	maxRetries int
	timeout    time.Duration // a reservation's calls' deadline
	epoch      atomic.Int64  // bumped by every reset: keys live under it
	leader     leaderCache
	gc         groupCommit // batch.go
	reads      readGroups  // readbatch.go

	cacheMu sync.Mutex // cache.go: the regional caches, by region
	caches  map[string]*regionCache
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

// Prefix is where the store's keys live: /inventory/<epoch>/<sku>.
const Prefix = "/inventory/"

// Key is a SKU's key in the current epoch. Each reset moves to a new
// epoch, so a write that answered unavailable but is still on its way
// (held in a slow link) lands where nobody reads any more, instead of
// resurrecting a value in the fresh store.
func (s *Store) Key(sku string) string {
	return Prefix + strconv.FormatInt(s.epoch.Load(), 10) + "/" + sku // not Sprintf: 8 % of the CPU at 100,000 cached reads a second
}

// New returns the store over cl's regions: a buy retries its
// compare-and-swap at most maxRetries times; a reservation's calls each
// have timeout.
func New(cl *nodes.Cluster, regions []string, maxRetries int, timeout time.Duration) *Store {
	return &Store{cluster: cl, regions: regions, maxRetries: maxRetries, timeout: timeout}
}

var _ store.Store = (*Store)(nil)

// Epoch is the reset epoch the store's keys live under.
func (s *Store) Epoch() int64 { return s.epoch.Load() }

// SetEpoch resumes an earlier run's epoch.
func (s *Store) SetEpoch(e int64) { s.epoch.Store(e) }

// Close waits for the group-commit Txns in flight (each has its buys'
// deadline). Safe to call twice.
func (s *Store) Close() {
	s.gc.mu.Lock()
	s.gc.closed = true
	s.gc.mu.Unlock()
	s.gc.running.Wait()
}

// LeaderChanged makes the next answer ask the cluster for the leader (a
// fault or a leadership move just happened).
func (s *Store) LeaderChanged() { s.leader.refresh(s.cluster) }

// Run executes one operation through the region's member. ctx carries the
// request deadline.
func (s *Store) Run(ctx context.Context, op inventory.Operation, _ store.Env) inventory.Outcome {
	if op.Op == inventory.OpRead && op.Consistency == inventory.Cached {
		return s.readCached(op) // cache.go: memory only
	}
	if op.Op == inventory.OpRead && op.Consistency == inventory.Serializable && s.gc.on.Load() {
		return s.readGrouped(ctx, op) // readbatch.go: its region's next call
	}
	cli, err := s.cluster.PooledMemberClient(op.Region)
	if err != nil {
		return unavailable(op, err)
	}
	// Writes and linearizable reads fail at once with "no leader" once the
	// member knows it has none, instead of waiting for the deadline. A
	// serializable read must not: answering from the local copy without a
	// leader is its whole point.
	if op.Op != inventory.OpRead || op.Consistency != inventory.Serializable {
		ctx = clientv3.WithRequireLeader(ctx)
	}
	key := s.Key(op.SKU)
	leader := s.leader.get(s.cluster)
	switch op.Op {
	case inventory.OpStock:
		resp, err := cli.Put(ctx, key, strconv.Itoa(op.Qty))
		if err != nil {
			return unavailable(op, err)
		}
		v := inventory.Version{Wall: resp.Header.Revision}
		return inventory.Outcome{Outcome: inventory.OK, Quantity: op.Qty, Version: v, AnsweredBy: quorumOf(op.Region, leader),
			Message: fmt.Sprintf("Stocked %d. Committed by a majority of regions%s.", op.Qty, leaderPhrase(leader))}
	case inventory.OpRead:
		var opts []clientv3.OpOption
		if op.Consistency == inventory.Serializable {
			opts = append(opts, clientv3.WithSerializable())
		}
		resp, err := cli.Get(ctx, key, opts...)
		if err != nil {
			return unavailable(op, err)
		}
		qty, v := Decode(resp)
		if op.Consistency == inventory.Serializable {
			return serializableRead(op, qty, v)
		}
		return inventory.Outcome{Outcome: inventory.OK, Quantity: qty, Version: v, AnsweredBy: quorumOf(op.Region, leader),
			Message: fmt.Sprintf("%d left, confirmed with a majority%s: this is the latest value.", qty, leaderPhrase(leader))}
	default:
		if s.gc.on.Load() {
			return s.buyGrouped(ctx, op)
		}
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
func (s *Store) buy(ctx context.Context, cli *clientv3.Client, op inventory.Operation, leader string) inventory.Outcome {
	key := s.Key(op.SKU)
	local, err := cli.Get(ctx, key, clientv3.WithSerializable())
	if err != nil {
		return unavailable(op, err)
	}
	qty, base := DecodeKVs(local.Kvs)
	for range s.maxRetries {
		selling := qty >= op.Qty
		txn, err := s.compareAndSet(ctx, cli, key, base, qty-op.Qty, selling)
		if err != nil {
			return unavailable(op, err)
		}
		if !txn.Succeeded { // the copy was stale or another buyer won: retry on what the Else read
			qty, base = lostTo((*pb.TxnResponse)(txn))
			continue
		}
		if !selling {
			return inventory.Outcome{Outcome: inventory.SoldOut, Quantity: qty, Version: base, BaseVersion: base, AnsweredBy: quorumOf(op.Region, leader),
				Message: store.SoldOut(qty, op.Qty)}
		}
		s.gc.units.Add(int64(op.Qty))
		return inventory.Outcome{Outcome: inventory.OK, Quantity: qty - op.Qty, Version: inventory.Version{Wall: txn.Header.Revision}, BaseVersion: base,
			AnsweredBy: quorumOf(op.Region, leader),
			Message:    fmt.Sprintf("Sold — %d left. Committed by a majority of regions%s.", qty-op.Qty, leaderPhrase(leader))}
	}
	return inventory.Outcome{Outcome: inventory.Conflict, AnsweredBy: quorumOf(op.Region, leader),
		Message: fmt.Sprintf("Conflict: other buyers changed the stock %d times while this buy tried; nothing was sold — try again.", s.maxRetries)}
}

// compareAndSet is one Raft round on a SKU's count, the buy's and the
// batch's alike: if the key still has base's revision, it puts left (when
// sell) or only reads (a sold-out answer confirmed); otherwise its Else
// branch reads the count and version that won (lostTo). Counted in Rounds.
func (s *Store) compareAndSet(ctx context.Context, cli *clientv3.Client, key string, base inventory.Version, left int, sell bool) (*clientv3.TxnResponse, error) {
	cmp, then, els := casOps(key, base, left, sell)
	s.gc.rounds.Add(1)
	return cli.Txn(ctx).If(cmp).Then(then).Else(els).Commit()
}

// casOps is a compare-and-set's parts: the compare on key's revision, the
// put of left (or, when not sell, a read), and the Else branch's read —
// sent alone (compareAndSet) or nested in a batch's Txn (batch_commit.go).
func casOps(key string, base inventory.Version, left int, sell bool) (cmp clientv3.Cmp, then, els clientv3.Op) {
	then = clientv3.OpGet(key)
	if sell {
		then = clientv3.OpPut(key, strconv.Itoa(left))
	}
	return clientv3.Compare(clientv3.ModRevision(key), "=", base.Wall), then, clientv3.OpGet(key)
}

// lostTo is the count and version a failed compare-and-set's Else branch
// read (none: 0, never written).
func lostTo(r *pb.TxnResponse) (int, inventory.Version) {
	if r == nil || len(r.Responses) == 0 {
		return 0, inventory.Version{}
	}
	return DecodeKVs(r.Responses[0].GetResponseRange().GetKvs())
}

// Decode is the stock and version a Get of a SKU's key read.
func Decode(resp *clientv3.GetResponse) (int, inventory.Version) { return DecodeKVs(resp.Kvs) }

// DecodeKVs is the stock and version of a SKU's key as kvs hold it (none:
// 0, never written).
func DecodeKVs(kvs []*mvccpb.KeyValue) (int, inventory.Version) {
	if len(kvs) == 0 {
		return 0, inventory.Version{}
	}
	q, _ := strconv.Atoi(string(kvs[0].Value))
	return q, inventory.Version{Wall: kvs[0].ModRevision}
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
func unavailable(op inventory.Operation, err error) inventory.Outcome {
	why := "the request timed out"
	switch msg := err.Error(); {
	case strings.Contains(msg, "no leader"):
		why = "it has no leader"
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "deadline exceeded"):
		why = "no answer came before the deadline"
	}
	m := fmt.Sprintf("Unavailable: %s cannot reach a majority of regions (%s). The consensus store chose consistency over availability.", store.City(op.Region), why)
	if op.Op == inventory.OpBuy || op.Op == inventory.OpStock {
		m += " The write may still be applied later."
	}
	return inventory.Outcome{Outcome: inventory.Unavailable, Message: m}
}

// Clear moves to a new epoch and deletes every SKU of the old ones, through the leader's own member first (a
// follower's forwarded proposal can be lost while a just-healed link
// reconnects, and would then cost a whole timeout), then any other.
func (s *Store) Clear(ctx context.Context) error {
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
		_, err = cli.Delete(clientv3.WithRequireLeader(cctx), Prefix, clientv3.WithPrefix())
		cancel()
		if err == nil {
			return nil
		}
		last = err
	}
	return last
}
