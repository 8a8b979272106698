package lab

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// LockTTL is the lease TTL (seconds) a reservation asks for. etcd raises
// it to its minimum (1.5 × the election timeout) when that is larger; the
// outcome's message says which TTL the lease got.
const LockTTL = 2

// MaxPause bounds a shop pause.
const MaxPause = 60 * time.Second

// pauses holds, per region, until when the region's shop is paused. A
// paused shop freezes at its next step — mid-flight — until then: a
// reservation between reading the stock and writing the sale, any other
// request before it reaches the store. Like a long GC pause or a VM
// migration, a frozen shop ignores deadlines and keeps no lease alive.
type pauses struct {
	mu    sync.Mutex
	until map[string]time.Time
	wake  chan struct{} // closed (and replaced) by clear: every frozen shop wakes
}

func (p *pauses) set(region string, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.until == nil {
		p.until = map[string]time.Time{}
	}
	p.until[region] = until
}

// clear ends every pause at once (a reset, Close).
func (p *pauses) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.until)
	if p.wake != nil {
		close(p.wake)
		p.wake = nil
	}
}

func (p *pauses) wakeup() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wake == nil {
		p.wake = make(chan struct{})
	}
	return p.wake
}

// remaining is how long region's shop stays frozen from now (0: it runs).
func (p *pauses) remaining(region string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(0, time.Until(p.until[region]))
}

// hold freezes the calling shop of region until its pause ends, the
// pauses are cleared or the lab closes. It reports how long it froze.
func (p *pauses) hold(region string, stop <-chan struct{}) time.Duration {
	d := p.remaining(region)
	if d <= 0 {
		return 0
	}
	wake := p.wakeup()
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-wake:
	case <-stop:
	}
	return time.Since(start)
}

// Pause freezes region's shop for seconds (0 < seconds ≤ 60) from now: its
// requests stop mid-flight and resume when the pause ends.
func (l *Lab) Pause(region string, seconds float64) error {
	if err := l.CheckRegion(region); err != nil {
		return err
	}
	if math.IsNaN(seconds) || seconds <= 0 || seconds > MaxPause.Seconds() {
		return fmt.Errorf("%w: a pause must last more than 0 and at most %g seconds (got %g)", ErrBadInput, MaxPause.Seconds(), seconds)
	}
	d := time.Duration(seconds * float64(time.Second))
	l.pauses.set(region, time.Now().Add(d))
	l.fault(FaultPause, []string{region}, fmt.Sprintf("%s's shop paused for %v", region, d))
	l.recorder.add(RecordedAction{Kind: ActPause, Regions: []string{region}, Seconds: seconds})
	return nil
}

// Paused is how long region's shop stays paused from now.
func (l *Lab) Paused(region string) time.Duration { return l.pauses.remaining(region) }

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
func (l *Lab) ReserveAsync(ctx context.Context, sku, region string, fenced bool) (<-chan Outcome, error) {
	if err := l.checkOp(Consensus, sku, region); err != nil {
		return nil, err
	}
	if err := l.enter(ctx); err != nil {
		return nil, err
	}
	done := make(chan Outcome, 1)
	frozen := make(chan struct{})
	var once sync.Once
	freeze := func() { once.Do(func() { close(frozen) }) }
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		defer l.gate.leave()
		defer freeze()
		op := Operation{Store: Consensus, SKU: sku, Region: region, Op: OpBuy, Qty: 1, Client: l.sessionOf(region, Consensus), Call: time.Now()}
		rr := l.beginRecord(OpRecording{}, op) // verdict.go
		out := l.reserve(context.WithoutCancel(ctx), op, fenced, freeze)
		op.Return = time.Now()
		out.Store, out.Region, out.SKU, out.Op, out.Qty = Consensus, region, sku, OpBuy, 1
		out.LatencyMs = math.Round(float64(op.Return.Sub(op.Call).Microseconds())/10) / 100
		if out.AnsweredBy == nil {
			out.AnsweredBy = []string{}
		}
		op.Outcome, op.Quantity, op.Version, op.BaseVersion = out.Outcome, out.Quantity, out.Version, out.BaseVersion
		keepWords(&op, out, false) // sentence.go
		op, _ = l.endRecord(rr, OpRecording{}, op)
		out.OpID = op.ID
		l.count(op)
		l.recorder.add(RecordedAction{Kind: ActReserve, At: op.Call, Done: op.Return, Regions: []string{region}, Op: &op, Fenced: fenced})
		l.publish(Event{Type: EventOperation, Operation: &op, Outcome: &out})
		done <- out
	}()
	select {
	case <-frozen:
	case <-l.stop:
	}
	return done, nil
}

// reserve runs the flow; freeze is called when the shop freezes.
func (l *Lab) reserve(ctx context.Context, op Operation, fenced bool, freeze func()) Outcome {
	s := l.consensus
	cli, err := l.cluster.PooledMemberClient(op.Region)
	if err != nil {
		return unavailable(op, err)
	}
	gctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), l.cfg.RequestTimeout)
	lease, err := cli.Grant(gctx, LockTTL)
	cancel()
	if err != nil {
		return unavailable(op, err)
	}
	ttl := lease.TTL // etcd may raise it to its minimum
	ttlWait := time.Duration(ttl)*time.Second*3 + l.cfg.RequestTimeout
	sctx, cancelSession := context.WithCancel(ctx)
	defer cancelSession()
	session, err := concurrency.NewSession(cli, concurrency.WithLease(lease.ID), concurrency.WithContext(sctx))
	if err != nil {
		return unavailable(op, err)
	}
	defer func() {
		session.Orphan()
		cctx, cancel := context.WithTimeout(context.Background(), l.cfg.RequestTimeout)
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
	rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), l.cfg.RequestTimeout)
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
	if l.pauses.remaining(op.Region) > 0 {
		session.Orphan()
		freeze()
		paused = l.pauses.hold(op.Region, l.stop)
	}
	if qty < op.Qty {
		return Outcome{Outcome: SoldOut, Quantity: qty, Version: base, BaseVersion: base, AnsweredBy: []string{op.Region},
			Message: fmt.Sprintf("Sold out: %s held the lock (token %d) and read %d left.", cityOf(op.Region), token, qty)}
	}
	wctx, cancel := context.WithTimeout(ctx, l.cfg.RequestTimeout)
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
