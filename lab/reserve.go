package lab

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"caplab/nodes"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// LockTTL is the lease TTL (seconds) a reservation asks for. etcd raises
// it to its minimum (1.5 × the election timeout) when that is larger; the
// outcome's message says which TTL the lease got.
const LockTTL = 2

// lockKey and fenceKey live in the consensus group, in the current epoch
// (a reset forgets them with the stock).
func (s *consensusStore) lockKey(sku string) string {
	return fmt.Sprintf("/locks/%d/%s/", s.epoch.Load(), sku)
}

func (s *consensusStore) fenceKey(sku string) string { return s.key(sku) + "/fence" }

// Reserve is the lock-based "reserve and sell" flow of one shop in region:
// take the SKU's etcd lock (a session with a lease, concurrency.Mutex),
// read the consensus store's stock, write the sale with a plain put — the
// storage trusts the lock — and unlock. Fenced, the write carries the
// lock's revision as a fencing token and the storage (an etcd Txn
// comparing it with the newest token it has seen) refuses an older one.
// The sale is recorded as a buy of 1 on the consensus store, so the
// checker judges it. A paused shop freezes between the read and the write
// and lets its lease lapse; see ReserveAsync.
func (l *Lab) Reserve(ctx context.Context, sku, region string, fenced bool) (Outcome, error) {
	ch, err := l.ReserveAsync(ctx, sku, region, fenced)
	if err != nil {
		return Outcome{}, err
	}
	select {
	case o := <-ch:
		return o, nil
	case <-l.stop:
		return Outcome{}, ErrClosed
	}
}

// ReserveAsync starts a reservation and returns once it has finished or
// frozen in a pause holding (it believes) the lock; the channel delivers
// the outcome when it is done. Close waits for it.
//
// A reservation is an operation like any other and takes the one command
// path (do): it passes admission and the (region, store) breaker of the
// consensus store — an open breaker fails it fast, a full gateway answers
// it overloaded, and its unavailable answers count toward opening the
// breaker (a half-open breaker's one trial call may be a reservation, and
// while it waits for the lock or sits frozen, that region's other
// consensus requests fail fast) — and it is recorded like a buy: in the
// History, or, left out (WithOpRecording, the History's cap), as a gap and
// in the ledger of the lab's own unrecorded writes. Its store call has a
// deadline long enough for the lock wait and the longest pause
// (reserveBudget).
func (l *Lab) ReserveAsync(ctx context.Context, sku, region string, fenced bool) (<-chan Outcome, error) {
	if err := checkOp(l.regions, Consensus, sku, region); err != nil {
		return nil, err
	}
	// The gate is entered here, before bg.Add: that orders bg.Add before
	// Close's bg.Wait. do must then not enter again (a nested enter behind
	// a reset's Lock would wait the reset out).
	if err := l.gate.EnterWithin(ctx, l.cfg.RequestTimeout); err != nil {
		return nil, err
	}
	done := make(chan Outcome, 1)
	frozen := make(chan struct{})
	var once sync.Once
	freeze := func() { once.Do(func() { close(frozen) }) }
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		defer l.gate.Leave()
		defer freeze()
		out, _ := l.do(context.WithoutCancel(ctx), command{
			op:      Operation{Store: Consensus, SKU: sku, Region: region, Op: OpBuy, Qty: 1},
			entered: true, freezes: true, action: ActReserve, fenced: fenced, budget: l.reserveBudget,
			run: func(ctx context.Context, op Operation, _ storeEnv) Outcome {
				return l.consensus.reserve(ctx, op, fenced, shopPauses{&l.time.pauses, l.stop}, freeze)
			},
		})
		done <- out
	}()
	select {
	case <-frozen:
	case <-l.stop:
	}
	return done, nil
}

// reserveTTL is the lease TTL (seconds) a reservation's lock gets: LockTTL,
// or etcd's minimum (1.5 × the election timeout) when that is larger.
func reserveTTL(t nodes.Timing) int64 {
	return max(LockTTL, int64(math.Ceil(1.5*float64(t.ElectionMs)/1000)))
}

// freezer is how a reservation's shop freezes in its pause, mid-flight.
type freezer interface {
	// Paused is how long region's shop stays paused from now.
	Paused(region string) time.Duration
	// Hold freezes the calling shop of region until its pause ends (or the
	// lab stops) and reports how long it froze.
	Hold(region string) time.Duration
}

// reserve runs the flow as op.Region's shop; freeze is called when the
// shop freezes.
func (s *consensusStore) reserve(ctx context.Context, op Operation, fenced bool, shop freezer, freeze func()) Outcome {
	cli, err := s.cluster.PooledMemberClient(op.Region)
	if err != nil {
		return unavailable(op, err)
	}
	gctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), s.timeout)
	lease, err := cli.Grant(gctx, LockTTL)
	cancel()
	if err != nil {
		return unavailable(op, err)
	}
	ttl := lease.TTL // etcd may raise it to its minimum
	ttlWait := time.Duration(ttl)*time.Second*3 + s.timeout
	sctx, cancelSession := context.WithCancel(ctx)
	defer cancelSession()
	session, err := concurrency.NewSession(cli, concurrency.WithLease(lease.ID), concurrency.WithContext(sctx))
	if err != nil {
		return unavailable(op, err)
	}
	defer func() {
		session.Orphan()
		cctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		_, _ = cli.Revoke(cctx, lease.ID) // releases the lock if it is still ours
	}()
	m := concurrency.NewMutex(session, s.lockKey(op.SKU))
	lctx, cancel := context.WithTimeout(ctx, ttlWait)
	err = m.Lock(lctx)
	cancel()
	if err != nil {
		o := unavailable(op, err)
		o.Message = fmt.Sprintf("Unavailable: %s could not take the lock on %s within %v (%v).", cityOf(op.Region), op.SKU, ttlWait, err)
		return o
	}
	rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), s.timeout)
	kr, err := cli.Get(rctx, m.Key())
	if err != nil || len(kr.Kvs) == 0 {
		cancel()
		return unavailable(op, fmt.Errorf("reading the lock: %v", err))
	}
	token := kr.Kvs[0].CreateRevision
	resp, err := cli.Get(rctx, s.key(op.SKU))
	cancel()
	if err != nil {
		return unavailable(op, err)
	}
	qty, base := decodeConsensus(resp)

	// A paused shop freezes here, believing it holds the lock. Frozen, it
	// sends no keep-alives: its lease runs out after the TTL and etcd
	// deletes the lock key, so another shop can take the lock.
	paused := time.Duration(0)
	if shop.Paused(op.Region) > 0 {
		session.Orphan()
		freeze()
		paused = shop.Hold(op.Region)
	}
	if qty < op.Qty {
		return Outcome{Outcome: SoldOut, Quantity: qty, Version: base, BaseVersion: base, AnsweredBy: []string{op.Region},
			Message: fmt.Sprintf("Sold out: %s held the lock (token %d) and read %d left.", cityOf(op.Region), token, qty)}
	}
	wctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key, fence := s.key(op.SKU), s.fenceKey(op.SKU)
	pausedNote := ""
	if paused > 0 {
		pausedNote = fmt.Sprintf(" after a %v pause (its lease, TTL %d s, had expired)", paused.Round(100*time.Millisecond), ttl)
	}
	if !fenced {
		pr, err := cli.Put(clientv3.WithRequireLeader(wctx), key, strconv.Itoa(qty-op.Qty))
		if err != nil {
			return unavailable(op, err)
		}
		return Outcome{Outcome: OK, Quantity: qty - op.Qty, Version: Version{Wall: pr.Header.Revision}, BaseVersion: base, AnsweredBy: []string{op.Region},
			Message: fmt.Sprintf("Sold — %d left. %s took the lock (token %d), read %d and wrote the sale%s; the storage trusted the lock.", qty-op.Qty, cityOf(op.Region), token, qty, pausedNote)}
	}
	// The storage keeps the newest token it has seen and refuses older ones.
	if _, err := cli.Txn(clientv3.WithRequireLeader(wctx)).If(clientv3.Compare(clientv3.CreateRevision(fence), "=", 0)).
		Then(clientv3.OpPut(fence, padToken(0))).Commit(); err != nil {
		return unavailable(op, err)
	}
	txn, err := cli.Txn(clientv3.WithRequireLeader(wctx)).
		If(clientv3.Compare(clientv3.Value(fence), "<", padToken(token+1))).
		Then(clientv3.OpPut(key, strconv.Itoa(qty-op.Qty)), clientv3.OpPut(fence, padToken(token))).
		Else(clientv3.OpGet(fence)).Commit()
	if err != nil {
		return unavailable(op, err)
	}
	if !txn.Succeeded {
		seen := ""
		if kvs := txn.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			n, _ := strconv.ParseInt(string(kvs[0].Value), 10, 64)
			seen = strconv.FormatInt(n, 10)
		}
		return Outcome{Outcome: Conflict, Quantity: qty, Version: base, BaseVersion: base, AnsweredBy: []string{op.Region},
			Message: fmt.Sprintf("Refused: %s wrote with fencing token %d%s, but the storage has already seen token %s from a newer lock holder. Nothing was sold.", cityOf(op.Region), token, pausedNote, seen)}
	}
	return Outcome{Outcome: OK, Quantity: qty - op.Qty, Version: Version{Wall: txn.Header.Revision}, BaseVersion: base, AnsweredBy: []string{op.Region},
		Message: fmt.Sprintf("Sold — %d left. %s took the lock (fencing token %d), read %d and wrote the sale%s; the storage checked the token.", qty-op.Qty, cityOf(op.Region), token, qty, pausedNote)}
}

// padToken spells a token so that etcd's byte-wise comparison orders
// tokens numerically.
func padToken(t int64) string { return fmt.Sprintf("%020d", t) }
