package consensus

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"caplab/lab/inventory"
	"caplab/lab/store"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Grouped serializable reads: with group commit on, a region's concurrent
// serializable reads share one call to its member — a read-only Txn of
// serializable Gets, which the member answers from its own copy at one
// revision, as it would each Get — instead of one gRPC call each. A read
// that finds no call of its region in flight goes at once; reads that
// arrive meanwhile go together in the next call (up to MaxReads keys).
// What a read answers and when it may be stale are unchanged: the member's
// copy, with or without a leader.

// MaxReads bounds the keys of one grouped read (etcd's --max-txn-ops).
const MaxReads = 100

// pendingRead is one serializable read waiting for its call's answer.
type pendingRead struct {
	op       inventory.Operation
	key      string
	deadline time.Time
	done     chan inventory.Outcome // buffered
}

// readGroups is each region's reads waiting for the call in flight.
type readGroups struct {
	mu      sync.Mutex
	waiting map[string][]*pendingRead // by region; present while a call is in flight
}

// readGrouped answers a serializable read through its region's next call.
func (s *Store) readGrouped(ctx context.Context, op inventory.Operation) inventory.Outcome {
	p := &pendingRead{op: op, key: s.Key(op.SKU), done: make(chan inventory.Outcome, 1)}
	if dl, ok := ctx.Deadline(); ok {
		p.deadline = dl
	} else {
		p.deadline = time.Now().Add(s.timeout)
	}
	g := &s.reads
	g.mu.Lock()
	if g.waiting == nil {
		g.waiting = map[string][]*pendingRead{}
	}
	if q, busy := g.waiting[op.Region]; busy {
		g.waiting[op.Region] = append(q, p)
	} else {
		g.waiting[op.Region] = nil
		s.gc.running.Add(1)
		go s.runReads(op.Region, []*pendingRead{p})
	}
	g.mu.Unlock()

	select {
	case out := <-p.done:
		return out
	case <-ctx.Done():
	}
	g.mu.Lock()
	q := g.waiting[op.Region]
	if i := slices.Index(q, p); i >= 0 {
		g.waiting[op.Region] = slices.Delete(q, i, i+1)
	}
	g.mu.Unlock()
	select {
	case out := <-p.done:
		return out
	default:
	}
	return unavailable(op, ctx.Err())
}

// runReads sends batch's call and the calls of the reads that queued
// meanwhile until none is left.
func (s *Store) runReads(region string, batch []*pendingRead) {
	defer s.gc.running.Done()
	g := &s.reads
	for {
		s.readBatch(region, batch)
		g.mu.Lock()
		q := g.waiting[region]
		if len(q) == 0 {
			delete(g.waiting, region)
			g.mu.Unlock()
			return
		}
		// Up to MaxReads distinct keys, in arrival order.
		keys := map[string]bool{}
		n := 0
		for n < len(q) && (keys[q[n].key] || len(keys) < MaxReads) {
			keys[q[n].key] = true
			n++
		}
		batch = slices.Clone(q[:n])
		g.waiting[region] = slices.Clone(q[n:])
		g.mu.Unlock()
	}
}

// readBatch reads batch's keys in one serializable Txn and answers each.
func (s *Store) readBatch(region string, batch []*pendingRead) {
	dl := batch[0].deadline
	var keys []string
	at := map[string]int{}
	for _, p := range batch {
		if p.deadline.After(dl) {
			dl = p.deadline
		}
		if _, ok := at[p.key]; !ok {
			at[p.key] = len(keys)
			keys = append(keys, p.key)
		}
	}
	answer := func(o func(p *pendingRead) inventory.Outcome) {
		for _, p := range batch {
			p.done <- o(p)
		}
	}
	cli, err := s.cluster.PooledMemberClient(region)
	if err != nil {
		answer(func(p *pendingRead) inventory.Outcome { return unavailable(p.op, err) })
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), dl)
	defer cancel()
	var resp *clientv3.TxnResponse
	if len(keys) == 1 {
		var get *clientv3.GetResponse
		get, err = cli.Get(ctx, keys[0], clientv3.WithSerializable())
		if err == nil {
			qty, v := Decode(get)
			answer(func(p *pendingRead) inventory.Outcome { return serializableRead(p.op, qty, v) })
			return
		}
	} else {
		ops := make([]clientv3.Op, len(keys))
		for i, k := range keys {
			ops[i] = clientv3.OpGet(k, clientv3.WithSerializable())
		}
		resp, err = cli.Txn(ctx).Then(ops...).Commit()
	}
	if err != nil {
		answer(func(p *pendingRead) inventory.Outcome { return unavailable(p.op, err) })
		return
	}
	answer(func(p *pendingRead) inventory.Outcome {
		qty, v := DecodeKVs(resp.Responses[at[p.key]].GetResponseRange().GetKvs())
		return serializableRead(p.op, qty, v)
	})
}

// serializableRead is the answer of a read from region's own copy.
func serializableRead(op inventory.Operation, qty int, v inventory.Version) inventory.Outcome {
	return inventory.Outcome{Outcome: inventory.OK, Quantity: qty, Version: v, AnsweredBy: []string{op.Region},
		Message: fmt.Sprintf("%d left, read from %s's own copy without asking the majority — fast, but it may be stale.", qty, store.City(op.Region))}
}
