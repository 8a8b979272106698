package geo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"caplab/lab/guard"
	"caplab/lab/history"
	"caplab/lab/inventory"
	"caplab/lab/store"
	"caplab/nodes"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Store is the geo-partitioned store: the brief's regional_stock row per
// (sku, region), pinned to its region. Each region's allocation of a SKU
// lives in that region's own regional Raft group (one etcd member per
// zone), so a buy from region R commits with a quorum of R's zones — no
// ocean crossing. When R's allocation runs out, units are borrowed from
// another region's allocation by a recoverable transfer (transfer.go).
//
// The row is one key per (sku, region) in the region's group; its value
// holds the allocation and the counters that make conservation checkable
// inside the row:
//
//	stocked + in − out = quantity + sold
//
// Every write is a Txn comparing the row's ModRevision with the one last
// seen (optimistic locking, the brief's version token); its Else branch
// returns the current row, so a retry needs no extra read: a buy is one
// round trip to the local group when the cached row is current.
type Store struct {
	cluster    *nodes.Cluster
	breakers   *guard.Breakers // each call into a group goes through its path's
	regions    []string
	maxRetries int
	timeout    time.Duration // background calls' deadline
	epoch      atomic.Int64
	ids        atomic.Uint64
	idPrefix   string

	cacheMu sync.Mutex
	cache   map[geoKey]geoSeen // last row seen per (sku, region)

	log *history.GeoLog // every call to a regional group, for the checker

	// gaps notes write calls the log has no room for; onCall hands each
	// logged call to the lab's recorders (the audit log); unlogged says
	// the operation a call serves is left out of the History.
	gaps     *history.Gaps
	onCall   func(inventory.GeoCall)
	unlogged func(context.Context) bool

	// stranded counts buys refused because the only units left were in
	// regions that could not be reached; borrowed counts units moved.
	stranded atomic.Int64
	borrowed atomic.Int64

	inflight sync.WaitGroup // completions of transfers sent in the background
	kick     chan struct{}  // asks the recovery loop to run now

	// afterDebit, if set (tests), runs between a transfer's debit at the
	// source and its credit at the destination.
	afterDebit func(t Transfer)
}

type geoKey struct{ sku, region string }

// geoRow is the value of one (sku, region) row.
type geoRow struct {
	Quantity int `json:"q"`
	Sold     int `json:"sold"`
	Stocked  int `json:"stocked"`
	In       int `json:"in"`
	Out      int `json:"out"`
}

type geoSeen struct {
	row geoRow
	mod int64 // ModRevision of the row; 0 = absent
	at  time.Time
}

const geoPrefix = "/geo/"

// Config is what the store needs from the lab.
type Config struct {
	Cluster    *nodes.Cluster
	Regions    []string
	MaxRetries int             // a write's optimistic-lock retries
	Timeout    time.Duration   // the deadline of calls made in the background (transfers' completions, recovery)
	Breakers   *guard.Breakers // each call into a group goes through its path's breaker
	// Log keeps every call into a regional group (the records the geo
	// verdict is computed from), and Gaps the write calls it has no room
	// for; OnCall, if set, hears of each logged call (the audit log).
	Log    *history.GeoLog
	Gaps   *history.Gaps
	OnCall func(inventory.GeoCall)
	// Unlogged, if set, reports whether the operation ctx serves is left
	// out of the History (its calls are then left out of the log: the
	// operation's own gap covers them).
	Unlogged func(context.Context) bool
}

// New returns the store over c.Cluster's regions.
func New(c Config) *Store {
	s := &Store{
		cluster: c.Cluster, regions: slices.Clone(c.Regions), maxRetries: c.MaxRetries, timeout: c.Timeout, breakers: c.Breakers,
		log: c.Log, gaps: c.Gaps, onCall: c.OnCall, unlogged: c.Unlogged,
		idPrefix: fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffffff),
		cache:    map[geoKey]geoSeen{}, kick: make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = &history.GeoLog{}
	}
	if s.unlogged == nil {
		s.unlogged = func(context.Context) bool { return false }
	}
	return s
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.SelfGuarded = (*Store)(nil)
)

func (s *Store) rowKey(sku string) string {
	return fmt.Sprintf("%s%d/row/%s", geoPrefix, s.epoch.Load(), sku)
}

func (s *Store) seen(sku, region string) geoSeen {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	return s.cache[geoKey{sku, region}]
}

func (s *Store) remember(sku, region string, row geoRow, mod int64) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	k := geoKey{sku, region}
	if old, ok := s.cache[k]; ok && old.mod > mod {
		return
	}
	s.cache[k] = geoSeen{row: row, mod: mod, at: time.Now()}
}

func decodeRow(kv []byte) geoRow {
	var r geoRow
	_ = json.Unmarshal(kv, &r)
	return r
}

func encodeRow(r geoRow) string {
	b, _ := json.Marshal(r)
	return string(b)
}

// rowFrom reads the row out of a Txn's Else branch (a Get of the row).
func rowFrom(resp *clientv3.TxnResponse, i int) (geoRow, int64) {
	if len(resp.Responses) <= i {
		return geoRow{}, 0
	}
	rr := resp.Responses[i].GetResponseRange()
	if rr == nil || len(rr.Kvs) == 0 {
		return geoRow{}, 0
	}
	return decodeRow(rr.Kvs[0].Value), rr.Kvs[0].ModRevision
}

// client is the gateway in from's client of region to's group, connected
// to the group's leader zone (it waits for one until ctx ends).
func (s *Store) client(ctx context.Context, from, to string) (*clientv3.Client, error) {
	cli, _, err := s.cluster.RegionalLeaderClient(ctx, from, to)
	return cli, err
}

// retryNoLeader: a request that reached a zone without a leader (its
// group is electing one after a zone crashed, or the zone is cut off from
// the others) is refused with "no leader" before anything is proposed, so
// a retry moments later, at the new leader, cannot apply twice. Other
// errors ("leader changed", timeouts) leave the write's fate unknown and
// are never retried: the compare would fail on our own write and the
// retry would apply it again.
func retryNoLeader(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no leader")
}

// waitBriefly waits 25 ms unless ctx ends first; it reports whether a
// retry still has time.
func waitBriefly(ctx context.Context) bool {
	t := time.NewTimer(25 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// update applies f to the (sku, region) row with optimistic locking, as a
// gateway in from. f gets the current row and returns the new one, whether
// to write at all (false: the current row is the answer — a confirmed
// read) and more operations to commit with the row (a transfer record). It
// returns the row after, its ModRevision and whether it wrote. Each attempt
// is one Txn: compare the ModRevision last seen; Else returns the current
// row for the next attempt.
func (s *Store) update(ctx context.Context, from, region, sku string, kind inventory.GeoCallKind, f func(geoRow) (geoRow, bool, []clientv3.Op)) (geoRow, int64, bool, error) {
	key := s.rowKey(sku)
	cur := s.seen(sku, region)
	for range s.maxRetries + 1 {
		cli, err := s.client(ctx, from, region)
		if err != nil {
			return geoRow{}, 0, false, err
		}
		next, write, extra := f(cur.row)
		var then []clientv3.Op
		if write {
			then = append(append(then, clientv3.OpPut(key, encodeRow(next))), extra...)
		}
		rc := s.startCall(ctx, sku, write)
		call := time.Now()
		resp, err := cli.Txn(clientv3.WithRequireLeader(ctx)).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", cur.mod)).
			Then(then...).
			Else(clientv3.OpGet(key)).Commit()
		if err != nil {
			if write {
				s.endCall(rc, inventory.GeoCall{SKU: sku, Region: region, Kind: kind, Delta: next.Quantity - cur.row.Quantity, Set: next.Quantity,
					Unknown: true, Call: call, Return: time.Now()})
			}
			if retryNoLeader(err) && waitBriefly(ctx) {
				continue // a zone crashed or was cut off: its group elects anew
			}
			return geoRow{}, 0, false, err
		}
		ret := time.Now()
		if resp.Succeeded {
			if !write {
				s.endCall(rc, inventory.GeoCall{SKU: sku, Region: region, Kind: inventory.GeoRead, Left: cur.row.Quantity, Call: call, Return: ret})
				s.remember(sku, region, cur.row, cur.mod)
				return cur.row, cur.mod, false, nil
			}
			mod := resp.Header.Revision
			s.endCall(rc, inventory.GeoCall{SKU: sku, Region: region, Kind: kind, Delta: next.Quantity - cur.row.Quantity, Set: next.Quantity,
				Left: next.Quantity, Call: call, Return: ret})
			s.remember(sku, region, next, mod)
			return next, mod, true, nil
		}
		row, mod := rowFrom(resp, 0)
		s.endCall(rc, inventory.GeoCall{SKU: sku, Region: region, Kind: inventory.GeoRead, Left: row.Quantity, Call: call, Return: ret})
		s.remember(sku, region, row, mod)
		cur = geoSeen{row: row, mod: mod}
	}
	return cur.row, cur.mod, false, errGeoConflict
}

var errGeoConflict = errors.New("optimistic-lock retries exhausted")

// run executes one geo operation as region op.Region's gateway.
// Run executes one operation as op.Region's gateway; each call into a
// regional group goes through that path's breaker.
func (s *Store) Run(ctx context.Context, op inventory.Operation, _ store.Env) inventory.Outcome {
	br := s.breakers
	switch op.Op {
	case inventory.OpStock:
		return s.stock(ctx, op, br)
	case inventory.OpRead:
		return s.read(ctx, op)
	default:
		return s.buy(ctx, op, br)
	}
}

// Split divides quantity evenly across regions, the remainder to the first.
func Split(quantity int, regions []string) map[string]int {
	out := map[string]int{}
	for i, r := range regions {
		out[r] = quantity / len(regions)
		if i < quantity%len(regions) {
			out[r]++
		}
	}
	return out
}

// stock sets every region's allocation (op.Allocations, or op.Qty split
// evenly), each in its own group: one write per group, in parallel. Groups
// are independent, so a region that cannot be reached keeps its old
// allocation while the others change — the answer says which.
func (s *Store) stock(ctx context.Context, op inventory.Operation, br *guard.Breakers) inventory.Outcome {
	alloc := op.Allocations
	if len(alloc) == 0 {
		alloc = Split(op.Qty, s.regions)
	}
	type res struct {
		region string
		err    error
	}
	results := make(chan res, len(s.regions))
	for _, r := range s.regions {
		go func() {
			want := alloc[r]
			o := s.guard(br, op.Region, r, func() inventory.Outcome {
				_, _, _, err := s.update(ctx, op.Region, r, op.SKU, inventory.GeoSet, func(row geoRow) (geoRow, bool, []clientv3.Op) {
					row.Stocked += want - row.Quantity
					row.Quantity = want
					return row, true, nil
				})
				if err != nil {
					return inventory.Outcome{Outcome: inventory.Unavailable, Message: err.Error()}
				}
				return inventory.Outcome{Outcome: inventory.OK}
			})
			var err error
			if o.Outcome != inventory.OK {
				err = errors.New(o.Message)
			}
			results <- res{r, err}
		}()
	}
	var failed []string
	answered := []string{}
	for range s.regions {
		x := <-results
		if x.err != nil {
			failed = append(failed, x.region)
		} else {
			answered = append(answered, x.region)
		}
	}
	s.sortRegions(failed)
	s.sortRegions(answered)
	parts := make([]string, 0, len(s.regions))
	for _, r := range s.regions {
		parts = append(parts, fmt.Sprintf("%s %d", r, alloc[r]))
	}
	if len(failed) > 0 {
		return inventory.Outcome{Outcome: inventory.Unavailable, AnsweredBy: answered, Unreachable: failed, Allocations: allocMap(alloc),
			Message: fmt.Sprintf("Unavailable: could not reach the regional group of %s, so its allocation is unchanged (and the write may still apply); the others were set. Each region's allocation lives in its own group: there is no single transaction across them.", strings.Join(failed, ", "))}
	}
	return inventory.Outcome{Outcome: inventory.OK, Quantity: op.Qty, AnsweredBy: answered, Allocations: allocMap(alloc),
		Message: fmt.Sprintf("Stocked %d, split %s — each allocation committed by its own region's zones.", op.Qty, strings.Join(parts, ", "))}
}

func allocMap(a map[string]int) map[string]inventory.Allocation {
	out := map[string]inventory.Allocation{}
	for r, q := range a {
		out[r] = inventory.Allocation{Quantity: q}
	}
	return out
}

func (s *Store) sortRegions(rs []string) {
	slices.SortFunc(rs, func(a, b string) int { return slices.Index(s.regions, a) - slices.Index(s.regions, b) })
}

// guard runs a call from region from into region to's group through the
// breaker of that path: the gateway's own group uses (from, geo), the
// others (from, geo>to), so a partition that stops borrowing never opens
// the breaker of local buys.
func (s *Store) guard(br *guard.Breakers, from, to string, fn func() inventory.Outcome) inventory.Outcome {
	return br.ExecutePath(from, inventory.Geo, to, fn)
}

// buy decrements the buyer's own allocation: one Txn in the local group.
// When the allocation is short it borrows (transfer.go).
func (s *Store) buy(ctx context.Context, op inventory.Operation, br *guard.Breakers) inventory.Outcome {
	var row geoRow
	var wrote bool
	local := s.guard(br, op.Region, op.Region, func() inventory.Outcome {
		var err error
		row, _, wrote, err = s.update(ctx, op.Region, op.Region, op.SKU, inventory.GeoBuy, func(r geoRow) (geoRow, bool, []clientv3.Op) {
			if r.Quantity < op.Qty {
				return r, false, nil
			}
			r.Quantity -= op.Qty
			r.Sold += op.Qty
			return r, true, nil
		})
		switch {
		case errors.Is(err, errGeoConflict):
			return inventory.Outcome{Outcome: inventory.Conflict, Message: fmt.Sprintf("Conflict: other buyers in %s changed the allocation %d times while this buy tried; nothing was sold — try again.", store.City(op.Region), s.maxRetries)}
		case err != nil:
			return inventory.Outcome{Outcome: inventory.Unavailable, Message: fmt.Sprintf("Unavailable: %s's own regional group did not answer (%s): a majority of its zones is down or cut off. The write may still be applied later.", store.City(op.Region), shortErr(err))}
		}
		return inventory.Outcome{Outcome: inventory.OK}
	})
	if local.Outcome != inventory.OK {
		return local
	}
	if wrote {
		return inventory.Outcome{Outcome: inventory.OK, Quantity: row.Quantity, AnsweredBy: []string{op.Region},
			Message: fmt.Sprintf("Sold — %d left in %s's allocation. Committed by a quorum of %s's zones: no ocean crossed.", row.Quantity, op.Region, op.Region)}
	}
	return s.borrowAndBuy(ctx, op, br, row)
}

// read gathers every region's allocation, each from its own group (in
// parallel, linearizable per group). The total is not one atomic snapshot:
// each allocation is read at its own group's revision.
func (s *Store) read(ctx context.Context, op inventory.Operation) inventory.Outcome {
	return s.readAll(ctx, op, true)
}

// Allocations is every region's allocation as a read from op.Region sees
// it, without logging the calls: no operation, no checker sees it.
func (s *Store) Allocations(ctx context.Context, op inventory.Operation) inventory.Outcome {
	return s.readAll(ctx, op, false)
}

// readAll reads every region's row from op.Region; logged puts each answer
// in the checker's log (a recorded read), else nothing is kept but the
// rows last seen.
func (s *Store) readAll(ctx context.Context, op inventory.Operation, logged bool) inventory.Outcome {
	type res struct {
		region string
		a      inventory.Allocation
		err    error
	}
	ch := make(chan res, len(s.regions))
	for _, r := range s.regions {
		go func() {
			if why := s.refused(op.Region, r); why != "" {
				ch <- res{region: r, err: errors.New(why)}
				return
			}
			cli, err := s.client(ctx, op.Region, r)
			if err != nil {
				ch <- res{region: r, err: err}
				return
			}
			var rc geoCallRecord
			if logged {
				rc = s.startCall(ctx, op.SKU, false)
			}
			call := time.Now()
			resp, err := cli.Get(clientv3.WithRequireLeader(ctx), s.rowKey(op.SKU))
			if err != nil {
				ch <- res{region: r, err: err}
				return
			}
			var row geoRow
			var mod int64
			if len(resp.Kvs) > 0 {
				row, mod = decodeRow(resp.Kvs[0].Value), resp.Kvs[0].ModRevision
			}
			s.endCall(rc, inventory.GeoCall{SKU: op.SKU, Region: r, Kind: inventory.GeoRead, Left: row.Quantity, Call: call, Return: time.Now()})
			s.remember(op.SKU, r, row, mod)
			ch <- res{region: r, a: inventory.Allocation{Quantity: row.Quantity, Sold: row.Sold, Revision: resp.Header.Revision, ModRevision: mod}}
		}()
	}
	allocs := map[string]inventory.Allocation{}
	var unreachable []string
	answered := []string{}
	total, stranded := 0, 0
	for range s.regions {
		x := <-ch
		if x.err != nil {
			unreachable = append(unreachable, x.region)
			last := s.seen(op.SKU, x.region)
			allocs[x.region] = inventory.Allocation{Quantity: last.row.Quantity, Unreachable: true, Stranded: last.row.Quantity}
			stranded += last.row.Quantity
			continue
		}
		allocs[x.region] = x.a
		total += x.a.Quantity
		answered = append(answered, x.region)
	}
	s.sortRegions(unreachable)
	s.sortRegions(answered)
	parts := []string{}
	for _, r := range s.regions {
		a := allocs[r]
		if a.Unreachable {
			parts = append(parts, fmt.Sprintf("%s unreachable (last seen %d)", r, a.Quantity))
		} else {
			parts = append(parts, fmt.Sprintf("%s %d @rev %d", r, a.Quantity, a.Revision))
		}
	}
	msg := fmt.Sprintf("%d in total: %s. Not one atomic snapshot — each region's allocation was read from its own group at its own revision.", total, strings.Join(parts, ", "))
	if len(unreachable) > 0 {
		msg += fmt.Sprintf(" %s stranded where %s cannot reach them.", store.UnitsAre(stranded), store.City(op.Region))
		if len(unreachable) == len(s.regions) {
			return inventory.Outcome{Outcome: inventory.Unavailable, Allocations: allocs, Unreachable: unreachable, Stranded: stranded, AnsweredBy: answered,
				Message: "Unavailable: no regional group could be reached. " + msg}
		}
	}
	return inventory.Outcome{Outcome: inventory.OK, Quantity: total, Allocations: allocs, Unreachable: unreachable, Stranded: stranded, AnsweredBy: answered, Message: msg}
}

// shortErr is an etcd/gRPC error as a short phrase.
func shortErr(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no leader"):
		return "no leader"
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "deadline exceeded"):
		return "no answer before the deadline"
	case strings.Contains(msg, "connection refused"), strings.Contains(msg, "Unavailable"), strings.Contains(msg, "unavailable"):
		return "no connection"
	}
	if i := strings.LastIndex(msg, "desc = "); i >= 0 {
		return msg[i+7:]
	}
	return msg
}

// clear moves to a new epoch (old keys are left where nobody reads) and
// deletes the old rows, transfers and markers in every group.
// Clear waits for the transfers completing in the background, moves to a
// new epoch, forgets what it cached, logged and counted, and empties every
// regional group.
func (s *Store) Clear(ctx context.Context) error {
	s.inflight.Wait()
	s.epoch.Add(1)
	s.cacheMu.Lock()
	clear(s.cache)
	s.cacheMu.Unlock()
	s.log.Clear()
	s.stranded.Store(0)
	s.borrowed.Store(0)
	var last error
	for _, r := range s.regions {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cli, err := s.client(cctx, r, r)
		if err != nil {
			cancel()
			return err
		}
		_, err = cli.Delete(clientv3.WithRequireLeader(cctx), geoPrefix, clientv3.WithPrefix())
		cancel()
		if err != nil {
			last = fmt.Errorf("clearing %s's regional group: %w", r, err)
		}
	}
	return last
}

// Close waits for the transfers completing in the background.
func (s *Store) Close() { s.inflight.Wait() }

// Epoch is the reset epoch the store's keys live under.
func (s *Store) Epoch() int64 { return s.epoch.Load() }

// SetEpoch resumes an earlier run's epoch.
func (s *Store) SetEpoch(e int64) { s.epoch.Store(e) }

// Stranded counts buys refused because the only units left were in
// regions that could not be reached, since the last reset.
func (s *Store) Stranded() int { return int(s.stranded.Load()) }

// Borrowed counts units moved between regions since the last reset.
func (s *Store) Borrowed() int { return int(s.borrowed.Load()) }

// SelfGuarded: the store guards each call into a group itself.
func (s *Store) SelfGuarded() {}
