package consensus

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"caplab/lab/inventory"
	"caplab/lab/store"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Group commit. A region's concurrent buys of one SKU share one Txn: k
// buys, one Raft round, instead of k compare-and-swaps on one key that
// serialise (one round per unit sold, the losers retrying).
//
// Leader/follower, per (region, SKU): a buy that finds no Txn of its SKU
// in flight from its region goes at once (a goroutine of its own sends it:
// no added latency without contention). Buys that arrive while that Txn is
// in flight queue; when it returns, the next Txn carries up to MaxBatch of
// them in arrival order. So a buy waits for at most the Txn ahead of it
// (and its own deadline), never for a timer.
//
// One Txn: read the count from the region's own copy, decide every buy in
// batch order (each ok buy gets its own "left", the count after the buys
// before it; a buy past the stock is sold out), compare the count key's
// ModRevision with the base that was read, and put count − units sold.
// If the compare fails (another region won), the Else branch's read is the
// next base, as in the single-buy path — but a batch retries while a
// quarter of its deadline is left (at least maxRetries times); then every
// buy is a conflict. A Txn whose fate is unknown (timeout, lost
// leader) answers unavailable to every buy it carried. A batch that sells
// nothing confirms its sold-out answers with a read-only Txn.
//
// Each buy's Outcome carries its Batch (the commit's revision, the batch's
// size, its position) and the History keeps it, so the checker's
// lost-update rule can tell buys that share a base because they share a
// commit from buys that overwrote each other.

// MaxBatch bounds how many buys one Txn carries.
const MaxBatch = 64

// batchKey names one queue: a region's buys of one SKU.
type batchKey struct{ region, sku string }

// pendingBuy is one buy waiting for its batch's answer.
type pendingBuy struct {
	op       inventory.Operation
	deadline time.Time
	done     chan inventory.Outcome // buffered: the runner never blocks on a buyer who left
}

// groupCommit is the store's batching state: whether it is on, and the
// queues that have a Txn in flight (a key is present exactly while its
// runner goroutine runs).
type groupCommit struct {
	on      atomic.Bool
	mu      sync.Mutex
	queues  map[batchKey][]*pendingBuy
	running sync.WaitGroup

	// What the panel shows: Txns sent for buys (each one Raft round: a
	// log entry, or a ReadIndex round for one that sold nothing), and
	// units those Txns sold.
	rounds, units atomic.Int64
}

// SetGroupCommit turns group commit on or off. Buys already queued still
// go in batches.
func (s *Store) SetGroupCommit(on bool) { s.gc.on.Store(on) }

// GroupCommit reports whether group commit is on.
func (s *Store) GroupCommit() bool { return s.gc.on.Load() }

// Rounds is how many Txns the store's buys sent (each one Raft round) and
// how many units they sold, since the store started: rounds per unit sold
// is what group commit lowers.
func (s *Store) Rounds() (rounds, units int64) { return s.gc.rounds.Load(), s.gc.units.Load() }

// buyGrouped queues op behind its SKU's Txn in flight, or sends it at once
// when none is, and waits for its answer or its deadline.
func (s *Store) buyGrouped(ctx context.Context, op inventory.Operation) inventory.Outcome {
	p := &pendingBuy{op: op, done: make(chan inventory.Outcome, 1)}
	if dl, ok := ctx.Deadline(); ok {
		p.deadline = dl
	} else {
		p.deadline = time.Now().Add(s.timeout)
	}
	k := batchKey{op.Region, op.SKU}
	s.gc.mu.Lock()
	if s.gc.queues == nil {
		s.gc.queues = map[batchKey][]*pendingBuy{}
	}
	if q, busy := s.gc.queues[k]; busy {
		s.gc.queues[k] = append(q, p)
	} else {
		s.gc.queues[k] = nil
		s.gc.running.Add(1)
		go s.runBatches(k, []*pendingBuy{p})
	}
	s.gc.mu.Unlock()

	select {
	case out := <-p.done:
		return out
	case <-ctx.Done():
	}
	// The deadline passed. Still queued: nothing was sent, take it out.
	s.gc.mu.Lock()
	q := s.gc.queues[k]
	i := slices.Index(q, p)
	if i >= 0 {
		s.gc.queues[k] = slices.Delete(q, i, i+1)
	}
	s.gc.mu.Unlock()
	select {
	case out := <-p.done: // answered meanwhile
		return out
	default:
	}
	o := unavailable(op, ctx.Err())
	if i >= 0 {
		o.Message = fmt.Sprintf("Unavailable: %s's buys of %s were waiting for their previous commit and this one's deadline passed first. Nothing was sent.", store.City(op.Region), op.SKU)
	}
	return o
}

// runBatches sends batch, answers its buys, and goes on with the buys that
// queued meanwhile until none is left.
func (s *Store) runBatches(k batchKey, batch []*pendingBuy) {
	defer s.gc.running.Done()
	for {
		outs := s.commitBatch(k, batch)
		for i, p := range batch {
			p.done <- outs[i]
		}
		s.gc.mu.Lock()
		q := s.gc.queues[k]
		if len(q) == 0 {
			delete(s.gc.queues, k)
			s.gc.mu.Unlock()
			return
		}
		n := min(len(q), MaxBatch)
		batch = slices.Clone(q[:n])
		s.gc.queues[k] = slices.Clone(q[n:])
		s.gc.mu.Unlock()
	}
}

// commitBatch sends one batch's Txn (retrying on a lost compare) and
// returns each buy's answer, in batch order.
func (s *Store) commitBatch(k batchKey, batch []*pendingBuy) []inventory.Outcome {
	outs := make([]inventory.Outcome, len(batch))
	all := func(o inventory.Outcome) []inventory.Outcome {
		for i := range outs {
			outs[i] = o
		}
		return outs
	}
	// The Txn's deadline is the latest of its buys': a buy whose own
	// deadline passes first answers unavailable (the Txn may still apply).
	dl := batch[0].deadline
	for _, p := range batch[1:] {
		if p.deadline.After(dl) {
			dl = p.deadline
		}
	}
	ctx, cancel := context.WithDeadline(clientv3.WithRequireLeader(context.Background()), dl)
	defer cancel()
	op := batch[0].op
	cli, err := s.cluster.PooledMemberClient(k.region)
	if err != nil {
		return all(unavailable(op, err))
	}
	leader := s.leader.get(s.cluster)
	key := s.Key(k.sku)
	local, err := cli.Get(ctx, key, clientv3.WithSerializable())
	if err != nil {
		return all(unavailable(op, err))
	}
	qty, base := DecodeKVs(local.Kvs)
	after := make([]int, len(batch)) // each buy's "left" if it sells, else -1
	// Retry on a lost compare while a quarter of the batch's time is left:
	// one retry serves every buy of the batch, and a region far from the
	// leader loses many compares in a row while the leader's region keeps
	// committing (each loss reads the count it lost to, and the batch
	// grows meanwhile). Then: conflict, certain — nothing was applied.
	began := time.Now()
	giveUp := dl.Add(-dl.Sub(began) / 4)
	attempts := 0
	for attempts = 1; attempts <= s.maxRetries || time.Now().Before(giveUp); attempts++ {
		left, sold := qty, 0
		for i, p := range batch {
			after[i] = -1
			if left >= p.op.Qty {
				left -= p.op.Qty
				sold += p.op.Qty
				after[i] = left
			}
		}
		txn, err := s.compareAndSet(ctx, cli, key, base, left, sold > 0)
		if err != nil {
			return all(unavailable(op, err))
		}
		if !txn.Succeeded { // the copy was stale or another region won: retry on what the Else read
			qty, base = lostTo(txn)
			continue
		}
		s.gc.units.Add(int64(sold))
		rev := txn.Header.Revision
		others := ""
		if n := len(batch) - 1; n == 1 {
			others = " One other buy of this SKU from here went in the same Txn."
		} else if n > 1 {
			others = fmt.Sprintf(" %d other buys of this SKU from here went in the same Txn.", n)
		}
		before := qty
		for i, p := range batch {
			b := inventory.Batch{Commit: rev, Size: len(batch), Position: i}
			if after[i] < 0 {
				outs[i] = inventory.Outcome{Outcome: inventory.SoldOut, Quantity: before, Version: base, BaseVersion: base, Batch: b,
					AnsweredBy: quorumOf(k.region, leader), Message: store.SoldOut(before, p.op.Qty)}
				continue
			}
			before = after[i]
			outs[i] = inventory.Outcome{Outcome: inventory.OK, Quantity: after[i], Version: inventory.Version{Wall: rev}, BaseVersion: base, Batch: b,
				AnsweredBy: quorumOf(k.region, leader),
				Message:    fmt.Sprintf("Sold — %d left. Committed by a majority of regions%s.%s", after[i], leaderPhrase(leader), others)}
		}
		return outs
	}
	return all(inventory.Outcome{Outcome: inventory.Conflict, AnsweredBy: quorumOf(k.region, leader),
		Message: fmt.Sprintf("Conflict: other regions changed the stock %d times while this batch of %d buys tried; nothing was sold — try again.", attempts-1, len(batch))})
}
