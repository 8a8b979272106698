package replicated

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"caplab/lab/inventory"
	"caplab/lab/store"
	"caplab/nodes"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Store is the design brief's quorum coordinator over regional
// replicas (DynamoDB-global-tables-like): every region has its own replica
// (a single-member etcd); the coordinator in the buyer's region sends each
// read and write to all N replicas across the fabric and answers at R
// replies or W acks. Versions are hybrid-logical-clock stamps with the
// writing region as tie-breaker; replicas keep the newest (last writer
// wins). Stale replicas are repaired on read, and a background replicator
// pushes every replica's newest values to the others, so replicas converge
// after a heal.
//
// On a replica, each SKU's values live under /inv/<sku>/<version>, with
// the version encoded so keys sort in version order: a write is one Txn
// (put the new key, delete older ones) and a read is one Get of the last
// key — last-writer-wins without a read-modify-write on the replica.
type Store struct {
	cluster *nodes.Cluster
	regions []string
	clocks  map[string]*inventory.Clock

	ctx      context.Context // cancelled by close: ends background writes
	cancel   context.CancelFunc
	inflight sync.WaitGroup // writes and repairs that outlive their request

	pushedMu sync.Mutex
	pushed   map[[2]string]map[string]inventory.Version // (from, to) → sku → newest version pushed

	// What the background replication has read (it runs in one goroutine;
	// the mutex is for clear).
	scanMu  sync.Mutex
	scanned map[string]int64                     // region → its replica's revision when last read
	pending map[string]map[string]inventory.Item // region → sku → newest item not yet pushed to every other replica
	rounds  int                                  // anti-entropy rounds so far
	// fullScanEvery is defaultFullScanEvery; BenchmarkIdleReplication
	// compares with 1 (every round reads all, as before).
	fullScanEvery atomic.Int64
	// keys the rounds that read only changes have read (for tests)
	changedKeysRead atomic.Int64

	epoch atomic.Int64 // bumped by every reset: keys live under it (see consensusStore.key)

	quorum atomic.Pointer[inventory.QuorumState] // W and R, N the regions
}

func New(cl *nodes.Cluster, regions []string, clocks *nodes.Clocks) *Store {
	s := &Store{cluster: cl, regions: regions, clocks: map[string]*inventory.Clock{}, pushed: map[[2]string]map[string]inventory.Version{},
		scanned: map[string]int64{}, pending: map[string]map[string]inventory.Item{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.fullScanEvery.Store(defaultFullScanEvery)
	s.quorum.Store(new(inventory.GlobalTables(len(regions))))
	for _, r := range regions {
		s.clocks[r] = inventory.NewClock(r, clocks.Reader(r)) // the region's own wall clock: skew moves its versions
	}
	return s
}

// Quorum is the store's W and R.
func (s *Store) Quorum() inventory.QuorumState { return *s.quorum.Load() }

// SetQuorum sets W and R (checked by the caller: ValidateQuorum).
func (s *Store) SetQuorum(q inventory.QuorumState) { s.quorum.Store(&q) }

// Epoch is the reset epoch the store's keys live under.
func (s *Store) Epoch() int64 { return s.epoch.Load() }

// SetEpoch resumes an earlier run's epoch.
func (s *Store) SetEpoch(e int64) { s.epoch.Store(e) }

// Close cancels background writes and waits for them. Safe twice.
func (s *Store) Close() {
	s.cancel()
	s.inflight.Wait()
}

// Run executes one operation as the coordinator in op.Region, with the W
// and R the operation began with.
func (s *Store) Run(ctx context.Context, op inventory.Operation, env store.Env) inventory.Outcome {
	q := env.Quorum
	clock := s.clocks[op.Region]
	switch op.Op {
	case inventory.OpStock:
		it := inventory.Item{Quantity: op.Qty, Version: clock.Now()}
		acks, ok := s.writeQuorum(ctx, op.Region, op.SKU, it, q.W)
		if !ok {
			return s.unavailable(op, q, len(acks), q.W, "acknowledged")
		}
		return inventory.Outcome{Outcome: inventory.OK, Quantity: op.Qty, Version: it.Version, AnsweredBy: acks,
			Message: fmt.Sprintf("Stocked %d. %s", op.Qty, ackPhrase(acks, q))}
	case inventory.OpRead:
		replies, ok := s.readQuorum(ctx, op.Region, op.SKU, q.R)
		if !ok {
			return s.unavailable(op, q, len(replies), q.R, "answered")
		}
		newest := s.newest(op, replies)
		msg := fmt.Sprintf("%d left, the newest of %s.", newest.Quantity, replyPhrase(replies))
		if !inventory.Overlaps(q.N, q.W, q.R) {
			msg += fmt.Sprintf(" W+R=%d is not more than N=%d, so a newer write may exist elsewhere: this read may be stale.", q.W+q.R, q.N)
		}
		return inventory.Outcome{Outcome: inventory.OK, Quantity: newest.Quantity, Version: newest.Version, AnsweredBy: regionsOf(replies), Message: msg}
	default:
		replies, ok := s.readQuorum(ctx, op.Region, op.SKU, q.R)
		if !ok {
			return s.unavailable(op, q, len(replies), q.R, "answered the read")
		}
		base := s.newest(op, replies)
		if base.Quantity < op.Qty {
			return inventory.Outcome{Outcome: inventory.SoldOut, Quantity: base.Quantity, Version: base.Version, BaseVersion: base.Version,
				AnsweredBy: regionsOf(replies), Message: store.SoldOut(base.Quantity, op.Qty)}
		}
		clock.Observe(base.Version)
		it := inventory.Item{Quantity: base.Quantity - op.Qty, Version: clock.Now()}
		acks, ok := s.writeQuorum(ctx, op.Region, op.SKU, it, q.W)
		if !ok {
			return s.unavailable(op, q, len(acks), q.W, "acknowledged the sale")
		}
		return inventory.Outcome{Outcome: inventory.OK, Quantity: it.Quantity, Version: it.Version, BaseVersion: base.Version, AnsweredBy: acks,
			Message: fmt.Sprintf("Sold — %d left. %s", it.Quantity, ackPhrase(acks, q))}
	}
}

// newest picks the newest reply and repairs the replicas that answered
// with an older value (read repair), in the background.
func (s *Store) newest(op inventory.Operation, replies []reply) inventory.Item {
	items := make([]inventory.Item, len(replies))
	for i, rp := range replies {
		items[i] = rp.item
	}
	newest, stale := inventory.Newest(items)
	for _, i := range stale {
		to := replies[i].region
		s.inflight.Add(1)
		go func() {
			defer s.inflight.Done()
			ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
			defer cancel()
			_ = s.writeItem(ctx, op.Region, to, op.SKU, newest)
		}()
	}
	return newest
}

func (s *Store) unavailable(op inventory.Operation, q inventory.QuorumState, got, need int, verb string) inventory.Outcome {
	return inventory.Outcome{Outcome: inventory.Unavailable, Message: fmt.Sprintf(
		"Unavailable: only %d of %d replicas %s from %s, and this store needs %d (W=%d, R=%d). It chose consistency over availability.",
		got, q.N, verb, store.City(op.Region), need, q.W, q.R)}
}

func ackPhrase(acks []string, q inventory.QuorumState) string {
	if len(acks) < q.N {
		return fmt.Sprintf("W=%d: %s enough; the other replicas catch up in the background.", q.W, countOf(len(acks), "acknowledgement was", "acknowledgements were"))
	}
	return "Every replica acknowledged it."
}

func countOf(n int, one, many string) string {
	if n == 1 {
		return "one " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func replyPhrase(replies []reply) string {
	if len(replies) == 1 {
		return "1 replica (" + replies[0].region + ")"
	}
	return fmt.Sprintf("%d replicas (%s)", len(replies), strings.Join(regionsOf(replies), ", "))
}

func regionsOf(replies []reply) []string {
	out := make([]string, len(replies))
	for i, rp := range replies {
		out[i] = rp.region
	}
	return out
}

// Clear waits for late background writes (they must not outlive the
// reset), moves to a new epoch, empties every replica (each through its
// own region), forgets what was pushed and goes back to W=1 R=1.
func (s *Store) Clear(ctx context.Context) error {
	s.inflight.Wait()
	s.epoch.Add(1)
	s.SetQuorum(inventory.GlobalTables(len(s.regions)))
	for _, r := range s.regions {
		cli, err := s.cluster.ReplicaClient(r, r)
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = cli.Delete(cctx, replicaPrefix, clientv3.WithPrefix())
		cancel()
		if err != nil {
			return fmt.Errorf("clear %s replica: %w", r, err)
		}
	}
	s.pushedMu.Lock()
	clear(s.pushed)
	s.pushedMu.Unlock()
	s.scanMu.Lock()
	clear(s.scanned)
	clear(s.pending)
	s.scanMu.Unlock()
	return nil
}
