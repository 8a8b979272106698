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
)

// Group commit. A region's concurrent buys share one Txn: k buys, one
// Raft round, instead of k compare-and-swaps that each cost a round (and
// on one key serialise, the losers retrying).
//
// A buy that finds no Txn of buys in flight from its region goes at once
// (a goroutine of its own sends it: no added latency without contention);
// otherwise it queues, and the next Txn — sent when the one in flight
// returns, or after MaxWait, whichever is first (at most MaxInFlight in
// flight) — carries up to MaxBatch queued buys in arrival order, of any
// SKUs, up to MaxSKUs of them. A SKU is in at most one of a region's Txns
// at a time: a buy whose SKU is in flight waits for that Txn.
//
// One Txn holds one compare-and-set per SKU, nested (etcd's Txn inside a
// Txn): each compares the count key's ModRevision with the base it was
// decided on, and puts count − units sold, or its Else branch reads the
// count that won. The base comes from what this region last saw of the key
// — its own commits and lost compares, or its watch-fed cache (cache.go),
// whichever is newer — and from a serializable read of its member only
// when it knows neither. Every buy of a SKU is decided in batch order
// (each ok buy gets its own "left", the count after the buys before it; a
// buy past the stock is sold out). A SKU whose compare failed (the base
// was stale or another region won) goes again in the region's next Txn on
// what its Else read, while a quarter of its buys' time is left (at least
// maxRetries times); then its buys are conflicts, certain — nothing was
// applied. A Txn whose fate is unknown (timeout, lost leader) answers
// unavailable to every buy it carried. A SKU whose buys sell nothing
// confirms its sold-out answers with its compare (the Txn reads it).
//
// Each buy's Outcome carries its Batch (the commit's revision, how many
// buys of its SKU the Txn carried, its position among them) and the
// History keeps it, so the checker's lost-update rule can tell buys that
// share a base because they share a commit from buys that overwrote each
// other.

// MaxBatch bounds how many buys one Txn carries.
const MaxBatch = 128

// MaxSKUs bounds how many SKUs one Txn carries: each is a nested Txn, and
// etcd refuses a Txn of more than 128 operations (--max-txn-ops, counted
// with the nested ones).
const MaxSKUs = 64

// MaxInFlight bounds a region's Txns of buys in flight at once, and
// MaxWait how long a buy waits for the one in flight before another Txn
// takes it. With no Txn in flight a buy goes at once. With one in flight,
// the buys that arrive wait for it — as a database's group commit keeps
// one log flush in flight while the next batch fills — but at most
// MaxWait: then the next Txn goes with whatever queued. Where rounds take
// a few ms (latency scale 0, the CPU the limit) the Txn in flight is
// mostly back first and batches are as large as they can be; where rounds
// take a real round trip (80–250 ms at latency scale 1) a buy waits at
// most MaxWait more than without group commit, not half a round
// (docs/benchmarks.md, "Doorbuster at the limit").
const (
	MaxInFlight = 4
	MaxWait     = 5 * time.Millisecond
)

// pendingBuy is one buy waiting for its batch's answer.
type pendingBuy struct {
	op       inventory.Operation
	deadline time.Time
	done     chan inventory.Outcome // buffered: the runner never blocks on a buyer who left
}

// skuBatch is one SKU's buys in a Txn, with the base they are decided on.
type skuBatch struct {
	sku, key string
	buys     []*pendingBuy
	qty      int
	base     inventory.Version
	known    bool      // qty and base hold what the region last saw
	attempts int       // compares lost so far
	giveUp   time.Time // after this (and maxRetries), lost compares are conflicts
}

// regionQueue is one region's buys: those waiting for room, how many Txns
// are in flight, the SKUs they carry, and the last count and revision the
// region's Txns saw of each key.
type regionQueue struct {
	waiting  []*pendingBuy
	inflight int
	armed    bool // a MaxWait timer will look at the waiting buys
	busy     map[string]bool
	seen     map[string]cacheEntry
}

// maxSeen bounds a region's memory of keys it saw: past it, it forgets
// them all (the cache or a read tells it again).
const maxSeen = 1 << 14

// groupCommit is the store's batching state: whether it is on, and each
// region's queue (guarded by mu).
type groupCommit struct {
	on      atomic.Bool
	mu      sync.Mutex
	closed  bool // Close was called: no timer starts a Txn any more
	regions map[string]*regionQueue
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

// queue returns region's queue (s.gc.mu held).
func (g *groupCommit) queue(region string) *regionQueue {
	if g.regions == nil {
		g.regions = map[string]*regionQueue{}
	}
	q := g.regions[region]
	if q == nil {
		q = &regionQueue{busy: map[string]bool{}, seen: map[string]cacheEntry{}}
		g.regions[region] = q
	}
	return q
}

// buyGrouped queues op for its region's next Txn, or sends it at once when
// the region has room, and waits for its answer or its deadline.
func (s *Store) buyGrouped(ctx context.Context, op inventory.Operation) inventory.Outcome {
	p := &pendingBuy{op: op, done: make(chan inventory.Outcome, 1)}
	if dl, ok := ctx.Deadline(); ok {
		p.deadline = dl
	} else {
		p.deadline = time.Now().Add(s.timeout)
	}
	s.gc.mu.Lock()
	q := s.gc.queue(op.Region)
	q.waiting = append(q.waiting, p)
	s.startIfRoom(op.Region, q)
	s.gc.mu.Unlock()

	select {
	case out := <-p.done:
		return out
	case <-ctx.Done():
	}
	// The deadline passed. Still queued: nothing was sent, take it out.
	s.gc.mu.Lock()
	i := slices.Index(q.waiting, p)
	if i >= 0 {
		q.waiting = slices.Delete(q.waiting, i, i+1)
	}
	s.gc.mu.Unlock()
	select {
	case out := <-p.done: // answered meanwhile
		return out
	default:
	}
	o := unavailable(op, ctx.Err())
	if i >= 0 {
		o.Message = fmt.Sprintf("Unavailable: %s's buys were waiting for room in its next commit and this one's deadline passed first. Nothing was sent.", store.City(op.Region))
	}
	return o
}

// startIfRoom sends a Txn of q's waiting buys at once when region has no
// Txn of buys in flight, and otherwise after MaxWait if none has come back
// by then and there is room (s.gc.mu held).
func (s *Store) startIfRoom(region string, q *regionQueue) {
	switch {
	case q.inflight == 0:
		s.startNow(region, q)
	case q.inflight < MaxInFlight && !q.armed && len(q.waiting) > 0:
		q.armed = true
		time.AfterFunc(MaxWait, func() {
			s.gc.mu.Lock()
			defer s.gc.mu.Unlock()
			q.armed = false
			if !s.gc.closed && q.inflight < MaxInFlight {
				s.startNow(region, q)
			}
		})
	}
}

// startNow sends a Txn of the waiting buys it can carry (s.gc.mu held).
func (s *Store) startNow(region string, q *regionQueue) {
	if batch := q.take(nil); len(batch) > 0 {
		q.inflight++
		s.gc.running.Add(1)
		go s.runBatches(region, q, batch)
	}
}

// take adds to batch (the SKUs a runner goes on with) the waiting buys it
// can carry, in arrival order: buys of its own SKUs, and of SKUs no other
// Txn of the region carries, up to MaxBatch buys and MaxSKUs SKUs
// (s.gc.mu held).
func (q *regionQueue) take(batch []*skuBatch) []*skuBatch {
	n := 0
	bySKU := make(map[string]*skuBatch, len(batch))
	for _, b := range batch {
		n += len(b.buys)
		bySKU[b.sku] = b
	}
	kept := q.waiting[:0]
	for i, p := range q.waiting {
		if n >= MaxBatch {
			kept = append(kept, q.waiting[i:]...)
			break
		}
		b := bySKU[p.op.SKU]
		if b == nil {
			if q.busy[p.op.SKU] || len(batch) >= MaxSKUs {
				kept = append(kept, p)
				continue
			}
			b = &skuBatch{sku: p.op.SKU}
			bySKU[p.op.SKU] = b
			batch = append(batch, b)
			q.busy[p.op.SKU] = true
		}
		b.buys = append(b.buys, p)
		n++
	}
	clear(q.waiting[len(kept):])
	q.waiting = kept
	return batch
}

// runBatches sends batch's Txn, answers its buys, and goes on with the
// SKUs that lost their compare and the buys that queued meanwhile until
// none is left.
func (s *Store) runBatches(region string, q *regionQueue, batch []*skuBatch) {
	defer s.gc.running.Done()
	for {
		again := s.commitBatch(region, q, batch)
		s.gc.mu.Lock()
		for _, b := range batch {
			if !slices.Contains(again, b) {
				delete(q.busy, b.sku)
			}
		}
		batch = q.take(again)
		if len(batch) == 0 {
			q.inflight--
			s.startIfRoom(region, q) // buys that waited for a SKU this Txn carried
			s.gc.mu.Unlock()
			return
		}
		s.gc.mu.Unlock()
	}
}
