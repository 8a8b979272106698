package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"caplab/nodes"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// replicatedStore is the design brief's quorum coordinator over regional
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
type replicatedStore struct {
	cluster *nodes.Cluster
	regions []string
	clocks  map[string]*Clock

	ctx      context.Context // cancelled by close: ends background writes
	cancel   context.CancelFunc
	inflight sync.WaitGroup // writes and repairs that outlive their request

	pushedMu sync.Mutex
	pushed   map[[2]string]map[string]Version // (from, to) → sku → newest version pushed

	// What the background replication has read (it runs in one goroutine;
	// the mutex is for clear).
	scanMu  sync.Mutex
	scanned map[string]int64           // region → its replica's revision when last read
	pending map[string]map[string]Item // region → sku → newest item not yet pushed to every other replica
	rounds  int                        // anti-entropy rounds so far
	// fullScanEvery is defaultFullScanEvery; BenchmarkIdleReplication
	// compares with 1 (every round reads all, as before).
	fullScanEvery atomic.Int64
	// keys the rounds that read only changes have read (for tests)
	changedKeysRead atomic.Int64

	epoch atomic.Int64 // bumped by every reset: keys live under it (see consensusStore.key)

	quorum atomic.Pointer[QuorumState] // W and R, N the regions
}

func newReplicatedStore(cl *nodes.Cluster, regions []string, clocks *nodes.Clocks) *replicatedStore {
	s := &replicatedStore{cluster: cl, regions: regions, clocks: map[string]*Clock{}, pushed: map[[2]string]map[string]Version{},
		scanned: map[string]int64{}, pending: map[string]map[string]Item{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.fullScanEvery.Store(defaultFullScanEvery)
	s.quorum.Store(new(GlobalTables(len(regions))))
	for _, r := range regions {
		s.clocks[r] = NewClock(r, clocks.Reader(r)) // the region's own wall clock: skew moves its versions
	}
	return s
}

// Quorum is the store's W and R.
func (s *replicatedStore) Quorum() QuorumState { return *s.quorum.Load() }

// SetQuorum sets W and R (checked by the caller: ValidateQuorum).
func (s *replicatedStore) SetQuorum(q QuorumState) { s.quorum.Store(&q) }

// Epoch is the reset epoch the store's keys live under.
func (s *replicatedStore) Epoch() int64 { return s.epoch.Load() }

// SetEpoch resumes an earlier run's epoch.
func (s *replicatedStore) SetEpoch(e int64) { s.epoch.Store(e) }

// Close cancels background writes and waits for them. Safe twice.
func (s *replicatedStore) Close() {
	s.cancel()
	s.inflight.Wait()
}

const replicaPrefix = "/inv/"

// epochPrefix holds every SKU of the current epoch.
func (s *replicatedStore) epochPrefix() string {
	return fmt.Sprintf("%s%d/", replicaPrefix, s.epoch.Load())
}

func (s *replicatedStore) skuPrefix(sku string) string { return s.epochPrefix() + sku + "/" }

// itemKey sorts in Version.Less order: fixed-width hex wall and logical,
// then the region name. Versions are never negative (a clock reading).
func (s *replicatedStore) itemKey(sku string, v Version) string {
	return fmt.Sprintf("%s%016x-%016x-%s", s.skuPrefix(sku), uint64(v.Wall), uint64(v.Logical), v.Region)
}

type storedItem struct {
	Quantity int     `json:"q"`
	Version  Version `json:"v"`
}

func decodeItem(raw []byte) (Item, error) {
	var si storedItem
	if err := json.Unmarshal(raw, &si); err != nil {
		return Item{}, err
	}
	return Item(si), nil
}

// writeItem stores item on region to's replica, as a client in region
// from: put its key, delete every older key of the SKU.
func (s *replicatedStore) writeItem(ctx context.Context, from, to, sku string, it Item) error {
	cli, err := s.cluster.ReplicaClient(from, to)
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(storedItem(it))
	k := s.itemKey(sku, it.Version)
	_, err = cli.Txn(ctx).Then(
		clientv3.OpPut(k, string(raw)),
		clientv3.OpDelete(s.skuPrefix(sku), clientv3.WithRange(k)),
	).Commit()
	return err
}

// readItem reads the newest item of a SKU from region to's replica.
func (s *replicatedStore) readItem(ctx context.Context, from, to, sku string) (Item, error) {
	cli, err := s.cluster.ReplicaClient(from, to)
	if err != nil {
		return Item{}, err
	}
	resp, err := cli.Get(ctx, s.skuPrefix(sku), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil {
		return Item{}, err
	}
	if len(resp.Kvs) == 0 {
		return Item{}, nil
	}
	return decodeItem(resp.Kvs[0].Value)
}

type reply struct {
	region string
	item   Item
	err    error
}

// readQuorum asks every replica and returns once r have answered (the
// replies so far) or once r can no longer be reached.
func (s *replicatedStore) readQuorum(ctx context.Context, from, sku string, r int) ([]reply, bool) {
	ch := make(chan reply, len(s.regions))
	for _, to := range s.regions {
		go func() {
			it, err := s.readItem(ctx, from, to, sku)
			ch <- reply{to, it, err}
		}()
	}
	return gather(ctx, ch, len(s.regions), r)
}

// gather collects the replies of n replicas and returns the successful
// ones once need have come in (true), or once need can no longer be
// reached or ctx ends (false).
func gather(ctx context.Context, ch <-chan reply, n, need int) ([]reply, bool) {
	var ok []reply
	failed := 0
	for range n {
		select {
		case rp := <-ch:
			if rp.err != nil {
				failed++
			} else {
				ok = append(ok, rp)
			}
		case <-ctx.Done():
			return ok, false
		}
		if len(ok) >= need {
			return ok, true
		}
		if failed > n-need {
			return ok, false
		}
	}
	return ok, len(ok) >= need
}

// writeQuorum sends it to every replica and returns the regions that
// acknowledged once w have (true), or when w can no longer be reached or
// ctx ends (false). Writes still on their way carry on in the background
// (bounded by the request deadline): that is the asynchronous replication
// W < N allows.
func (s *replicatedStore) writeQuorum(ctx context.Context, from, sku string, it Item, w int) ([]string, bool) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second) // callers set one; never write without
	}
	ch := make(chan reply, len(s.regions))
	for _, to := range s.regions {
		s.inflight.Add(1)
		go func() {
			defer s.inflight.Done()
			wctx, cancel := context.WithDeadline(s.ctx, deadline)
			defer cancel()
			ch <- reply{region: to, err: s.writeItem(wctx, from, to, sku, it)}
		}()
	}
	replies, ok := gather(ctx, ch, len(s.regions), w)
	return regionsOf(replies), ok
}

// Run executes one operation as the coordinator in op.Region, with the W
// and R the operation began with.
func (s *replicatedStore) Run(ctx context.Context, op Operation, env storeEnv) Outcome {
	q := env.Quorum
	clock := s.clocks[op.Region]
	switch op.Op {
	case OpStock:
		it := Item{Quantity: op.Qty, Version: clock.Now()}
		acks, ok := s.writeQuorum(ctx, op.Region, op.SKU, it, q.W)
		if !ok {
			return s.unavailable(op, q, len(acks), q.W, "acknowledged")
		}
		return Outcome{Outcome: OK, Quantity: op.Qty, Version: it.Version, AnsweredBy: acks,
			Message: fmt.Sprintf("Stocked %d. %s", op.Qty, ackPhrase(acks, q))}
	case OpRead:
		replies, ok := s.readQuorum(ctx, op.Region, op.SKU, q.R)
		if !ok {
			return s.unavailable(op, q, len(replies), q.R, "answered")
		}
		newest := s.newest(op, replies)
		msg := fmt.Sprintf("%d left, the newest of %s.", newest.Quantity, replyPhrase(replies))
		if !Overlaps(q.N, q.W, q.R) {
			msg += fmt.Sprintf(" W+R=%d is not more than N=%d, so a newer write may exist elsewhere: this read may be stale.", q.W+q.R, q.N)
		}
		return Outcome{Outcome: OK, Quantity: newest.Quantity, Version: newest.Version, AnsweredBy: regionsOf(replies), Message: msg}
	default:
		replies, ok := s.readQuorum(ctx, op.Region, op.SKU, q.R)
		if !ok {
			return s.unavailable(op, q, len(replies), q.R, "answered the read")
		}
		base := s.newest(op, replies)
		if base.Quantity < op.Qty {
			return Outcome{Outcome: SoldOut, Quantity: base.Quantity, Version: base.Version, BaseVersion: base.Version,
				AnsweredBy: regionsOf(replies), Message: soldOutMessage(base.Quantity, op.Qty)}
		}
		clock.Observe(base.Version)
		it := Item{Quantity: base.Quantity - op.Qty, Version: clock.Now()}
		acks, ok := s.writeQuorum(ctx, op.Region, op.SKU, it, q.W)
		if !ok {
			return s.unavailable(op, q, len(acks), q.W, "acknowledged the sale")
		}
		return Outcome{Outcome: OK, Quantity: it.Quantity, Version: it.Version, BaseVersion: base.Version, AnsweredBy: acks,
			Message: fmt.Sprintf("Sold — %d left. %s", it.Quantity, ackPhrase(acks, q))}
	}
}

// newest picks the newest reply and repairs the replicas that answered
// with an older value (read repair), in the background.
func (s *replicatedStore) newest(op Operation, replies []reply) Item {
	items := make([]Item, len(replies))
	for i, rp := range replies {
		items[i] = rp.item
	}
	newest, stale := Newest(items)
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

func (s *replicatedStore) unavailable(op Operation, q QuorumState, got, need int, verb string) Outcome {
	return Outcome{Outcome: Unavailable, Message: fmt.Sprintf(
		"Unavailable: only %d of %d replicas %s from %s, and this store needs %d (W=%d, R=%d). It chose consistency over availability.",
		got, q.N, verb, cityOf(op.Region), need, q.W, q.R)}
}

func ackPhrase(acks []string, q QuorumState) string {
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

// localItems reads the newest item of every SKU on a region's own replica.
func (s *replicatedStore) localItems(ctx context.Context, region string) (map[string]Item, error) {
	cli, err := s.cluster.ReplicaClient(region, region)
	if err != nil {
		return nil, err
	}
	prefix := s.epochPrefix()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	return itemsOf(prefix, resp), nil
}

// defaultFullScanEvery: every so many rounds the background replication
// reads every SKU of every replica, not only what changed — a safety net.
const defaultFullScanEvery = 50

// changedItems reads the newest item of every SKU written on a region's
// own replica since the last read (every SKU when full): first only the
// replica's revision (one key, no range); if it has not moved, nothing
// changed and nothing else is read.
func (s *replicatedStore) changedItems(ctx context.Context, region string, full bool) (map[string]Item, error) {
	cli, err := s.cluster.ReplicaClient(region, region)
	if err != nil {
		return nil, err
	}
	s.scanMu.Lock()
	since, seen := s.scanned[region]
	s.scanMu.Unlock()
	if !full && seen {
		probe, err := cli.Get(ctx, replicaPrefix, clientv3.WithCountOnly())
		if err != nil {
			return nil, err
		}
		if probe.Header.Revision == since {
			return nil, nil
		}
		if probe.Header.Revision < since { // a replica with other data: read all
			full = true
		}
	}
	prefix := s.epochPrefix()
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if !full && seen {
		opts = append(opts, clientv3.WithMinModRev(since+1))
	}
	resp, err := cli.Get(ctx, prefix, opts...)
	if err != nil {
		return nil, err
	}
	if !full {
		s.changedKeysRead.Add(int64(len(resp.Kvs)))
	}
	s.scanMu.Lock()
	s.scanned[region] = resp.Header.Revision
	s.scanMu.Unlock()
	return itemsOf(prefix, resp), nil
}

// itemsOf merges a replica's answer into the newest item per SKU; keys
// that are not prefix/SKU/… or values that do not decode are skipped.
func itemsOf(prefix string, resp *clientv3.GetResponse) map[string]Item {
	items := map[string]Item{}
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), prefix)
		sku, _, ok := strings.Cut(rest, "/")
		if !ok {
			continue
		}
		it, err := decodeItem(kv.Value)
		if err != nil {
			continue
		}
		items[sku] = Merge(items[sku], it)
	}
	return items
}

// AntiEntropy pushes every up region's newest values to every other
// replica it can reach that has not had them yet. It reads only what
// changed on each replica since the last round (and keeps what it could
// not push yet for the next round), so an idle store costs one small read
// per replica a round however many SKUs it holds.
func (s *replicatedStore) AntiEntropy(ctx context.Context) {
	s.rounds++
	full := s.rounds%int(max(1, s.fullScanEvery.Load())) == 0
	var wg sync.WaitGroup
	todo := map[string]map[string]Item{}
	for _, from := range s.regions {
		if !s.cluster.IsUp(from) {
			continue
		}
		changed, err := s.changedItems(ctx, from, full)
		if err != nil {
			continue
		}
		s.scanMu.Lock()
		items := s.pending[from]
		if items == nil {
			items = map[string]Item{}
			s.pending[from] = items
		}
		for sku, it := range changed {
			items[sku] = Merge(items[sku], it)
		}
		todo[from] = items
		s.scanMu.Unlock()
		if len(items) == 0 {
			continue
		}
		f := s.cluster.Fabric()
		for _, to := range s.regions {
			if to == from || !s.cluster.IsUp(to) || !f.Up(from, to) || !f.Up(to, from) {
				continue
			}
			for sku, it := range items {
				if !s.needsPush(from, to, sku, it.Version) {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if s.writeItem(ctx, from, to, sku, it) == nil {
						s.markPushed(from, to, sku, it.Version)
					}
				}()
			}
		}
	}
	wg.Wait()
	// Forget what every other replica has had; keep the rest for later.
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	for from, items := range todo {
		for sku, it := range items {
			everywhere := true
			for _, to := range s.regions {
				if to != from && s.needsPush(from, to, sku, it.Version) {
					everywhere = false
					break
				}
			}
			if everywhere {
				delete(items, sku)
			}
		}
	}
}

func (s *replicatedStore) needsPush(from, to, sku string, v Version) bool {
	s.pushedMu.Lock()
	defer s.pushedMu.Unlock()
	last, ok := s.pushed[[2]string{from, to}][sku]
	return !ok || last.Less(v)
}

func (s *replicatedStore) markPushed(from, to, sku string, v Version) {
	s.pushedMu.Lock()
	defer s.pushedMu.Unlock()
	m := s.pushed[[2]string{from, to}]
	if m == nil {
		m = map[string]Version{}
		s.pushed[[2]string{from, to}] = m
	}
	if last, ok := m[sku]; !ok || last.Less(v) {
		m[sku] = v
	}
}

// Converged reports whether every running replica holds the same newest
// item for every SKU.
func (s *replicatedStore) Converged(ctx context.Context) (bool, error) {
	var first map[string]Item
	for _, r := range s.regions {
		if !s.cluster.IsUp(r) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		items, err := s.localItems(cctx, r)
		cancel()
		if err != nil {
			return false, err
		}
		if first == nil {
			first = items
			continue
		}
		if len(items) != len(first) {
			return false, nil
		}
		for sku, it := range items {
			if first[sku] != it {
				return false, nil
			}
		}
	}
	return true, nil
}

// Clear waits for late background writes (they must not outlive the
// reset), moves to a new epoch, empties every replica (each through its
// own region), forgets what was pushed and goes back to W=1 R=1.
func (s *replicatedStore) Clear(ctx context.Context) error {
	s.inflight.Wait()
	s.epoch.Add(1)
	s.SetQuorum(GlobalTables(len(s.regions)))
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
