package consensus

import (
	"context"
	"fmt"
	"time"

	"caplab/lab/inventory"
	"caplab/lab/store"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// commitBatch sends one Txn for batch (its SKUs' compare-and-sets, see
// batch.go), answers every buy it settles, and returns the SKUs that lost
// their compare and go again.
func (s *Store) commitBatch(region string, q *regionQueue, batch []*skuBatch) (again []*skuBatch) {
	now := time.Now()
	live := batch[:0:0]
	for _, b := range batch {
		b.dropExpired(now)
		if len(b.buys) > 0 {
			live = append(live, b)
		}
	}
	if len(live) == 0 {
		return nil
	}
	// The Txn's deadline is the latest of its buys': a buy whose own
	// deadline passes first answers unavailable (the Txn may still apply).
	dl := live[0].buys[0].deadline
	for _, b := range live {
		b.key = s.Key(b.sku)
		for _, p := range b.buys {
			if p.deadline.After(dl) {
				dl = p.deadline
			}
		}
	}
	for _, b := range live {
		if b.giveUp.IsZero() { // its first attempt
			b.giveUp = dl.Add(-dl.Sub(now) / 4)
		}
	}
	ctx, cancel := context.WithDeadline(clientv3.WithRequireLeader(context.Background()), dl)
	defer cancel()
	op := live[0].buys[0].op
	fail := func(err error) []*skuBatch {
		for _, b := range live {
			b.answerAll(unavailable(op, err))
		}
		return nil
	}
	cli, err := s.cluster.PooledMemberClient(region)
	if err != nil {
		return fail(err)
	}
	if err := s.bases(ctx, cli, region, q, live); err != nil {
		return fail(err)
	}
	leader := s.leader.get(s.cluster)

	decided := make([]decision, len(live))
	for i, b := range live {
		decided[i] = b.decide()
	}
	var results []txnResult
	if len(live) == 1 { // one SKU: the plain compare-and-set, no nesting
		b, d := live[0], decided[0]
		txn, err := s.compareAndSet(ctx, cli, b.key, b.base, d.left, d.sold > 0)
		if err != nil {
			return fail(err)
		}
		results = []txnResult{{ok: txn.Succeeded, rev: txn.Header.Revision}}
		if !txn.Succeeded {
			results[0].qty, results[0].base = lostTo((*pb.TxnResponse)(txn))
		}
	} else {
		ops := make([]clientv3.Op, len(live))
		for i, b := range live {
			cmp, then, els := casOps(b.key, b.base, decided[i].left, decided[i].sold > 0)
			ops[i] = clientv3.OpTxn([]clientv3.Cmp{cmp}, []clientv3.Op{then}, []clientv3.Op{els})
		}
		s.gc.rounds.Add(1)
		txn, err := cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return fail(err)
		}
		results = make([]txnResult, len(live))
		for i, r := range txn.Responses {
			nested := r.GetResponseTxn()
			results[i] = txnResult{ok: nested.GetSucceeded(), rev: txn.Header.Revision}
			if !results[i].ok {
				results[i].qty, results[i].base = lostTo(nested)
			}
		}
	}

	now = time.Now()
	s.gc.mu.Lock()
	if len(q.seen) > maxSeen {
		clear(q.seen)
	}
	for i, b := range live {
		r, d := results[i], decided[i]
		if r.ok {
			if d.sold > 0 {
				q.seen[b.key] = cacheEntry{qty: d.left, mod: r.rev}
			}
			continue
		}
		q.seen[b.key] = cacheEntry{qty: r.qty, mod: r.base.Wall}
	}
	s.gc.mu.Unlock()

	skus := len(live)
	for i, b := range live {
		r, d := results[i], decided[i]
		if r.ok {
			s.gc.units.Add(int64(d.sold))
			b.answerSold(region, leader, r.rev, d, skus)
			continue
		}
		b.qty, b.base, b.known = r.qty, r.base, true
		b.attempts++
		if b.attempts <= s.maxRetries || now.Before(b.giveUp) {
			again = append(again, b)
			continue
		}
		b.answerAll(inventory.Outcome{Outcome: inventory.Conflict, AnsweredBy: quorumOf(region, leader),
			Message: fmt.Sprintf("Conflict: other regions changed the stock %d times while this batch of %d buys tried; nothing was sold — try again.", b.attempts, len(b.buys))})
	}
	return again
}

// txnResult is one SKU's part of a Txn: whether its compare held, the
// Txn's revision, and when it did not, the count and version that won.
type txnResult struct {
	ok   bool
	rev  int64
	qty  int
	base inventory.Version
}

// decision is how a SKU's buys are decided on its base: each buy's "left"
// (−1: sold out), the count after them all, and units sold.
type decision struct {
	after      []int
	left, sold int
}

func (b *skuBatch) decide() decision {
	d := decision{after: make([]int, len(b.buys)), left: b.qty}
	for i, p := range b.buys {
		d.after[i] = -1
		if d.left >= p.op.Qty {
			d.left -= p.op.Qty
			d.sold += p.op.Qty
			d.after[i] = d.left
		}
	}
	return d
}

// bases fills in the base of every SKU of live that has none: what the
// region last saw of it (its Txns, or its cache — the newer), or else one
// serializable read of its member for all those it never saw.
func (s *Store) bases(ctx context.Context, cli *clientv3.Client, region string, q *regionQueue, live []*skuBatch) error {
	var unknown []*skuBatch
	c := s.cacheOf(region)
	s.gc.mu.Lock()
	c.mu.RLock()
	for _, b := range live {
		if b.known {
			continue
		}
		seen, ok := q.seen[b.key]
		if cached, in := c.counts[b.key]; c.built && in && (!ok || cached.mod > seen.mod) {
			seen, ok = cached, true
		}
		if ok {
			b.qty, b.base, b.known = seen.qty, inventory.Version{Wall: seen.mod}, true
			continue
		}
		unknown = append(unknown, b)
	}
	c.mu.RUnlock()
	s.gc.mu.Unlock()
	if len(unknown) == 0 {
		return nil
	}
	ops := make([]clientv3.Op, len(unknown))
	for i, b := range unknown {
		ops[i] = clientv3.OpGet(b.key, clientv3.WithSerializable())
	}
	resp, err := cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return err
	}
	for i, r := range resp.Responses {
		b := unknown[i]
		b.qty, b.base = DecodeKVs(r.GetResponseRange().GetKvs())
		b.known = true
	}
	return nil
}

// dropExpired answers the buys whose deadline has passed before their Txn
// was sent (their buyers have gone): nothing of theirs was applied.
func (b *skuBatch) dropExpired(now time.Time) {
	kept := b.buys[:0]
	for _, p := range b.buys {
		if now.After(p.deadline) {
			o := unavailable(p.op, context.DeadlineExceeded)
			o.Message = fmt.Sprintf("Unavailable: this buy's deadline passed before its commit could be sent (%s's buys of %s were waiting for the one ahead). Nothing was applied.", store.City(p.op.Region), p.op.SKU)
			p.done <- o
			continue
		}
		kept = append(kept, p)
	}
	clear(b.buys[len(kept):])
	b.buys = kept
}

func (b *skuBatch) answerAll(o inventory.Outcome) {
	for _, p := range b.buys {
		p.done <- o
	}
}

// answerSold answers the buys of a SKU whose compare held at rev: each
// buy sold with its own "left", or sold out.
func (b *skuBatch) answerSold(region, leader string, rev int64, d decision, skus int) {
	others := ""
	if n := len(b.buys) - 1; n == 1 {
		others = " One other buy of this SKU from here went in the same Txn."
	} else if n > 1 {
		others = fmt.Sprintf(" %d other buys of this SKU from here went in the same Txn.", n)
	}
	if skus > 1 {
		others += fmt.Sprintf(" The Txn carried buys of %d SKUs.", skus)
	}
	before := b.qty
	for i, p := range b.buys {
		batch := inventory.Batch{Commit: rev, Size: len(b.buys), Position: i}
		if skus > 1 {
			batch.SKUs = skus
		}
		if d.after[i] < 0 {
			p.done <- inventory.Outcome{Outcome: inventory.SoldOut, Quantity: before, Version: b.base, BaseVersion: b.base, Batch: batch,
				AnsweredBy: quorumOf(region, leader), Message: store.SoldOut(before, p.op.Qty)}
			continue
		}
		before = d.after[i]
		p.done <- inventory.Outcome{Outcome: inventory.OK, Quantity: d.after[i], Version: inventory.Version{Wall: rev}, BaseVersion: b.base, Batch: batch,
			AnsweredBy: quorumOf(region, leader),
			Message:    fmt.Sprintf("Sold — %d left. Committed by a majority of regions%s.%s", d.after[i], leaderPhrase(leader), others)}
	}
}
