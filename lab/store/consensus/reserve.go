package consensus

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"caplab/lab/inventory"
	"caplab/lab/store"
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
func (s *Store) lockKey(sku string) string {
	return fmt.Sprintf("/locks/%d/%s/", s.epoch.Load(), sku)
}

func (s *Store) fenceKey(sku string) string { return s.Key(sku) + "/fence" }

// ReserveTTL is the lease TTL (seconds) a reservation's lock gets: LockTTL,
// or etcd's minimum (1.5 × the election timeout) when that is larger.
func ReserveTTL(t nodes.Timing) int64 {
	return max(LockTTL, int64(math.Ceil(1.5*float64(t.ElectionMs)/1000)))
}

// Freezer is how a reservation's shop freezes in its pause, mid-flight.
type Freezer interface {
	// Paused is how long region's shop stays paused from now.
	Paused(region string) time.Duration
	// Hold freezes the calling shop of region until its pause ends (or the
	// lab stops) and reports how long it froze.
	Hold(region string) time.Duration
}

// Reserve runs the lock-and-fencing flow as op.Region's shop; freeze is called when the
// shop freezes.
func (s *Store) Reserve(ctx context.Context, op inventory.Operation, fenced bool, shop Freezer, freeze func()) inventory.Outcome {
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
		o.Message = fmt.Sprintf("Unavailable: %s could not take the lock on %s within %v (%v).", store.City(op.Region), op.SKU, ttlWait, err)
		return o
	}
	rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), s.timeout)
	kr, err := cli.Get(rctx, m.Key())
	if err != nil || len(kr.Kvs) == 0 {
		cancel()
		return unavailable(op, fmt.Errorf("reading the lock: %v", err))
	}
	token := kr.Kvs[0].CreateRevision
	resp, err := cli.Get(rctx, s.Key(op.SKU))
	cancel()
	if err != nil {
		return unavailable(op, err)
	}
	qty, base := Decode(resp)

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
		return inventory.Outcome{Outcome: inventory.SoldOut, Quantity: qty, Version: base, BaseVersion: base, AnsweredBy: []string{op.Region},
			Message: fmt.Sprintf("Sold out: %s held the lock (token %d) and read %d left.", store.City(op.Region), token, qty)}
	}
	wctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key, fence := s.Key(op.SKU), s.fenceKey(op.SKU)
	pausedNote := ""
	if paused > 0 {
		pausedNote = fmt.Sprintf(" after a %v pause (its lease, TTL %d s, had expired)", paused.Round(100*time.Millisecond), ttl)
	}
	if !fenced {
		pr, err := cli.Put(clientv3.WithRequireLeader(wctx), key, strconv.Itoa(qty-op.Qty))
		if err != nil {
			return unavailable(op, err)
		}
		return inventory.Outcome{Outcome: inventory.OK, Quantity: qty - op.Qty, Version: inventory.Version{Wall: pr.Header.Revision}, BaseVersion: base, AnsweredBy: []string{op.Region},
			Message: fmt.Sprintf("Sold — %d left. %s took the lock (token %d), read %d and wrote the sale%s; the storage trusted the lock.", qty-op.Qty, store.City(op.Region), token, qty, pausedNote)}
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
		return inventory.Outcome{Outcome: inventory.Conflict, Quantity: qty, Version: base, BaseVersion: base, AnsweredBy: []string{op.Region},
			Message: fmt.Sprintf("Refused: %s wrote with fencing token %d%s, but the storage has already seen token %s from a newer lock holder. Nothing was sold.", store.City(op.Region), token, pausedNote, seen)}
	}
	return inventory.Outcome{Outcome: inventory.OK, Quantity: qty - op.Qty, Version: inventory.Version{Wall: txn.Header.Revision}, BaseVersion: base, AnsweredBy: []string{op.Region},
		Message: fmt.Sprintf("Sold — %d left. %s took the lock (fencing token %d), read %d and wrote the sale%s; the storage checked the token.", qty-op.Qty, store.City(op.Region), token, qty, pausedNote)}
}

// padToken spells a token so that etcd's byte-wise comparison orders
// tokens numerically.
func padToken(t int64) string { return fmt.Sprintf("%020d", t) }
