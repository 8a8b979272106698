package geo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"caplab/lab/check"
	"caplab/lab/guard"
	"caplab/lab/inventory"
	"caplab/lab/store"
	"caplab/nodes"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Borrowing moves units from one region's allocation to another's: two
// different Raft groups, so no single transaction. It is a recoverable
// transfer:
//
//  1. debit at the source S together with a transfer record (one Txn in S's
//     group: row.quantity −= n, row.out += n, put out/<id>);
//  2. credit at the destination R, idempotent by transfer id (one Txn in R's
//     group, only if the marker in/<id> is absent: row.quantity += n,
//     row.in += n, put in/<id> = "credited" — and, for a buy, the sale);
//  3. completion: delete the record at S.
//
// The marker at R decides each transfer exactly once: recovery writes
// in/<id> = "aborted" if no credit got there first, then refunds S (row +=
// n, delete the record, one Txn). A credit and an abort cannot both win, so
// no unit is created or lost whichever step a crash or a cut interrupts.

// Transfer is a transfer record, stored at the source.
type Transfer struct {
	ID   string    `json:"id"`
	SKU  string    `json:"sku"`
	From string    `json:"from"`
	To   string    `json:"to"`
	Qty  int       `json:"qty"`
	At   time.Time `json:"at"`
}

const (
	markerCredited = "credited"
	markerAborted  = "aborted"
)

func (s *Store) pendingKey(sku, id string) string {
	return fmt.Sprintf("%s%d/out/%s/%s", geoPrefix, s.epoch.Load(), sku, id)
}

func (s *Store) pendingPrefix() string {
	return fmt.Sprintf("%s%d/out/", geoPrefix, s.epoch.Load())
}

func (s *Store) markerKey(sku, id string) string {
	return fmt.Sprintf("%s%d/in/%s/%s", geoPrefix, s.epoch.Load(), sku, id)
}

func (s *Store) newID() string {
	return fmt.Sprintf("t%s-%d", s.idPrefix, s.ids.Add(1))
}

// sources lists the other regions, nearest first.
func (s *Store) sources(region string) []string {
	out := slices.DeleteFunc(slices.Clone(s.regions), func(r string) bool { return r == region })
	slices.SortStableFunc(out, func(a, b string) int {
		ra, _ := nodes.ModelRTT(region, a)
		rb, _ := nodes.ModelRTT(region, b)
		switch {
		case ra < rb:
			return -1
		case ra > rb:
			return 1
		}
		return 0
	})
	return out
}

// borrowAndBuy runs when the buyer's own allocation (local, just confirmed)
// is short: it debits the missing units from other regions, nearest
// first, then credits them and sells in one Txn at home.
func (s *Store) borrowAndBuy(ctx context.Context, op inventory.Operation, br *guard.Breakers, local geoRow) inventory.Outcome {
	need := op.Qty - local.Quantity
	var moved []Transfer
	var unreachable []string
	failFast := 0
	for _, src := range s.sources(op.Region) {
		if need <= 0 {
			break
		}
		var tr Transfer
		id := s.newID()
		o := s.guard(br, op.Region, src, func() inventory.Outcome {
			if why := s.refused(op.Region, src); why != "" {
				return inventory.Outcome{Outcome: inventory.Unavailable, Message: why}
			}
			// A reachable source gets most of what is left of the deadline;
			// a quarter stays for the credit at home (local and quick).
			sctx, cancel := ctx, context.CancelFunc(func() {})
			if dl, ok := ctx.Deadline(); ok {
				sctx, cancel = context.WithTimeout(ctx, time.Until(dl)*3/4)
			}
			defer cancel()
			_, _, wrote, err := s.update(sctx, op.Region, src, op.SKU, inventory.GeoTransferOut, func(r geoRow) (geoRow, bool, []clientv3.Op) {
				got := min(need, r.Quantity)
				if got <= 0 {
					return r, false, nil
				}
				tr = Transfer{ID: id, SKU: op.SKU, From: src, To: op.Region, Qty: got, At: time.Now()}
				raw, _ := json.Marshal(tr)
				r.Quantity -= got
				r.Out += got
				return r, true, []clientv3.Op{clientv3.OpPut(s.pendingKey(op.SKU, id), string(raw))}
			})
			if err != nil && !errors.Is(err, errGeoConflict) {
				return inventory.Outcome{Outcome: inventory.Unavailable, Message: shortErr(err)}
			}
			if !wrote {
				tr = Transfer{}
			}
			return inventory.Outcome{Outcome: inventory.OK}
		})
		switch o.Outcome {
		case inventory.OK:
			if tr.Qty > 0 {
				moved = append(moved, tr)
				need -= tr.Qty
			}
		case inventory.FailFast:
			failFast++
			unreachable = append(unreachable, src)
		default:
			unreachable = append(unreachable, src)
		}
	}
	if len(moved) == 0 {
		if len(unreachable) == 0 {
			return inventory.Outcome{Outcome: inventory.SoldOut, Quantity: local.Quantity, AnsweredBy: s.answered(op.Region, nil),
				Message: fmt.Sprintf("Sold out: %s has %d and no other region has any to lend.", store.City(op.Region), local.Quantity)}
		}
		s.stranded.Add(1)
		units := 0
		for _, r := range unreachable {
			units += s.seen(op.SKU, r).row.Quantity
		}
		kind := inventory.Unavailable
		if failFast == len(unreachable) {
			kind = inventory.FailFast
		}
		return inventory.Outcome{Outcome: kind, Quantity: local.Quantity, Unreachable: unreachable, Stranded: units, AnsweredBy: []string{op.Region},
			Message: fmt.Sprintf("Stranded: %s's own allocation has %d, and borrowing from %s is impossible now (cut off or down) — %s stranded there (as last seen). Local allocations keep selling; nothing was moved.",
				store.City(op.Region), local.Quantity, strings.Join(unreachable, ", "), store.UnitsAre(units))}
	}
	for _, tr := range moved {
		if s.afterDebit != nil {
			s.afterDebit(tr)
		}
	}
	row, sold, credited, err := s.credit(ctx, op.Region, op.SKU, moved, op.Qty)
	if err != nil {
		return inventory.Outcome{Outcome: inventory.Unavailable, AnsweredBy: s.answered(op.Region, moved),
			Message: fmt.Sprintf("Unavailable: %d units were debited at %s for this buy, but the credit in %s did not complete (%s). They are in a pending transfer: recovery completes or refunds it, so no unit is lost. The buy may still apply.",
				sumQty(moved), fromList(moved), store.City(op.Region), shortErr(err))}
	}
	for _, tr := range credited {
		s.borrowed.Add(int64(tr.Qty))
		s.complete(tr, op.Region)
	}
	if !sold {
		return inventory.Outcome{Outcome: inventory.SoldOut, Quantity: row.Quantity, AnsweredBy: s.answered(op.Region, credited),
			Message: fmt.Sprintf("Sold out: only %d could be gathered in %s (borrowed %d from %s), you asked for %d. The borrowed units stay in %s's allocation.",
				row.Quantity, store.City(op.Region), sumQty(credited), fromList(credited), op.Qty, op.Region)}
	}
	return inventory.Outcome{Outcome: inventory.OK, Quantity: row.Quantity, AnsweredBy: s.answered(op.Region, credited),
		Message: fmt.Sprintf("Sold — borrowed %d from %s (debit and transfer record there, then credit here by transfer id), %d left in %s's allocation.",
			sumQty(credited), fromList(credited), row.Quantity, op.Region)}
}

// refused says why a connection from a gateway in from to region to's
// group would be refused at once — the path is cut (either way: a TCP
// connection needs both) or the region is down — or "" if it would not.
// A real client hears that from the refused connect right away; the etcd
// client here would instead wait for a connection until its deadline.
func (s *Store) refused(from, to string) string {
	f := s.cluster.Fabric()
	switch {
	case !s.cluster.IsUp(to):
		return to + " is down"
	case !f.Up(from, to) || !f.Up(to, from):
		return "the link " + from + " ⇄ " + to + " is cut"
	}
	return ""
}

func (s *Store) answered(region string, trs []Transfer) []string {
	out := []string{region}
	for _, t := range trs {
		if !slices.Contains(out, t.From) {
			out = append(out, t.From)
		}
	}
	return out
}

func sumQty(trs []Transfer) int {
	n := 0
	for _, t := range trs {
		n += t.Qty
	}
	return n
}

func fromList(trs []Transfer) string {
	var out []string
	for _, t := range trs {
		out = append(out, fmt.Sprintf("%s (%d, %s)", t.From, t.Qty, t.ID))
	}
	return strings.Join(out, ", ")
}

// credit adds the transfers to region's allocation and, when it then holds
// take units, sells them — one Txn in region's group, only for transfers
// whose marker is absent (a transfer recovery already aborted is dropped:
// it refunds the source). It returns the row after, whether it sold, and
// the transfers it credited.
func (s *Store) credit(ctx context.Context, region, sku string, trs []Transfer, take int) (geoRow, bool, []Transfer, error) {
	cli, err := s.client(ctx, region, region)
	if err != nil {
		return geoRow{}, false, nil, err
	}
	key := s.rowKey(sku)
	live := slices.Clone(trs)
	cur := s.seen(sku, region)
	for range s.maxRetries + 1 {
		if len(live) == 0 {
			return cur.row, false, nil, nil
		}
		in := sumQty(live)
		next := cur.row
		next.Quantity += in
		next.In += in
		sold := next.Quantity >= take
		if sold {
			next.Quantity -= take
			next.Sold += take
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", cur.mod)}
		then := []clientv3.Op{clientv3.OpPut(key, encodeRow(next))}
		elses := []clientv3.Op{clientv3.OpGet(key)}
		for _, t := range live {
			mk := s.markerKey(sku, t.ID)
			cmps = append(cmps, clientv3.Compare(clientv3.Version(mk), "=", 0))
			then = append(then, clientv3.OpPut(mk, markerCredited))
			elses = append(elses, clientv3.OpGet(mk))
		}
		rc := s.startCall(ctx, sku, true)
		call := time.Now()
		resp, err := cli.Txn(clientv3.WithRequireLeader(ctx)).If(cmps...).Then(then...).Else(elses...).Commit()
		if err != nil {
			s.endCall(rc, inventory.GeoCall{SKU: sku, Region: region, Kind: inventory.GeoTransferIn, Delta: next.Quantity - cur.row.Quantity, Unknown: true, Call: call, Return: time.Now()})
			return geoRow{}, false, nil, err
		}
		ret := time.Now()
		if resp.Succeeded {
			mod := resp.Header.Revision
			s.endCall(rc, inventory.GeoCall{SKU: sku, Region: region, Kind: inventory.GeoTransferIn, Delta: next.Quantity - cur.row.Quantity, Left: next.Quantity, Call: call, Return: ret})
			s.remember(sku, region, next, mod)
			return next, sold, live, nil
		}
		row, mod := rowFrom(resp, 0)
		s.endCall(rc, inventory.GeoCall{SKU: sku, Region: region, Kind: inventory.GeoRead, Left: row.Quantity, Call: call, Return: ret})
		s.remember(sku, region, row, mod)
		cur = geoSeen{row: row, mod: mod}
		var still []Transfer
		for i, t := range live {
			if rr := resp.Responses[i+1].GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
				continue // decided already (aborted by recovery)
			}
			still = append(still, t)
		}
		live = still
	}
	return cur.row, false, nil, errGeoConflict
}

// complete deletes a credited transfer's record at its source, in the
// background (a buy need not wait for it; recovery finishes what fails).
func (s *Store) complete(tr Transfer, gateway string) {
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		cli, err := s.client(ctx, gateway, tr.From)
		if err != nil {
			return
		}
		_, _ = cli.Delete(clientv3.WithRequireLeader(ctx), s.pendingKey(tr.SKU, tr.ID))
	}()
}

// Recovery is what one recovery pass over the pending transfers did.
type Recovery struct {
	Completed int `json:"completed"` // credited at the destination; record deleted
	Refunded  int `json:"refunded"`  // aborted at the destination; units back at the source
	Pending   int `json:"pending"`   // still pending (too young, or a group unreachable)
}

// recover completes or refunds every pending transfer at least minAge
// old: the destination's marker decides (an absent one becomes
// "aborted"), then the record at the source is deleted — with a refund when
// aborted, in one Txn.
func (s *Store) Recover(ctx context.Context, minAge time.Duration) Recovery {
	var res Recovery
	for _, src := range s.regions {
		if !s.cluster.IsUp(src) {
			continue
		}
		cli, err := s.client(ctx, src, src)
		if err != nil {
			continue
		}
		resp, err := cli.Get(clientv3.WithRequireLeader(ctx), s.pendingPrefix(), clientv3.WithPrefix())
		if err != nil {
			continue
		}
		for _, kv := range resp.Kvs {
			var tr Transfer
			if json.Unmarshal(kv.Value, &tr) != nil {
				continue
			}
			if time.Since(tr.At) < minAge {
				res.Pending++
				continue
			}
			switch s.settle(ctx, tr) {
			case markerCredited:
				res.Completed++
			case markerAborted:
				res.Refunded++
			default:
				res.Pending++
			}
		}
	}
	return res
}

// settle decides one transfer at its destination and finishes it at its
// source; it returns the decision, or "" if it could not finish.
func (s *Store) settle(ctx context.Context, tr Transfer) string {
	dst, err := s.client(ctx, tr.From, tr.To)
	if err != nil {
		return ""
	}
	mk := s.markerKey(tr.SKU, tr.ID)
	resp, err := dst.Txn(clientv3.WithRequireLeader(ctx)).
		If(clientv3.Compare(clientv3.Version(mk), "=", 0)).
		Then(clientv3.OpPut(mk, markerAborted)).
		Else(clientv3.OpGet(mk)).Commit()
	if err != nil {
		return ""
	}
	decision := markerAborted
	if !resp.Succeeded {
		if rr := resp.Responses[0].GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
			decision = string(rr.Kvs[0].Value)
		}
	}
	src, err := s.client(ctx, tr.From, tr.From)
	if err != nil {
		return ""
	}
	pk := s.pendingKey(tr.SKU, tr.ID)
	if decision == markerCredited {
		if _, err := src.Delete(clientv3.WithRequireLeader(ctx), pk); err != nil {
			return ""
		}
		return decision
	}
	// Refund: back into the source's allocation, once (the record's
	// presence is part of the compare).
	key := s.rowKey(tr.SKU)
	cur := s.seen(tr.SKU, tr.From)
	for range s.maxRetries + 1 {
		next := cur.row
		next.Quantity += tr.Qty
		next.Out -= tr.Qty
		rc := s.startCall(ctx, tr.SKU, true)
		call := time.Now()
		resp, err := src.Txn(clientv3.WithRequireLeader(ctx)).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", cur.mod), clientv3.Compare(clientv3.Version(pk), ">", 0)).
			Then(clientv3.OpPut(key, encodeRow(next)), clientv3.OpDelete(pk)).
			Else(clientv3.OpGet(key), clientv3.OpGet(pk)).Commit()
		if err != nil {
			s.endCall(rc, inventory.GeoCall{SKU: tr.SKU, Region: tr.From, Kind: inventory.GeoRefund, Delta: tr.Qty, Unknown: true, Call: call, Return: time.Now()})
			return ""
		}
		ret := time.Now()
		if resp.Succeeded {
			s.endCall(rc, inventory.GeoCall{SKU: tr.SKU, Region: tr.From, Kind: inventory.GeoRefund, Delta: tr.Qty, Left: next.Quantity, Call: call, Return: ret})
			s.remember(tr.SKU, tr.From, next, resp.Header.Revision)
			return decision
		}
		row, mod := rowFrom(resp, 0)
		s.endCall(rc, inventory.GeoCall{SKU: tr.SKU, Region: tr.From, Kind: inventory.GeoRead, Left: row.Quantity, Call: call, Return: ret})
		s.remember(tr.SKU, tr.From, row, mod)
		cur = geoSeen{row: row, mod: mod}
		if rr := resp.Responses[1].GetResponseRange(); rr == nil || len(rr.Kvs) == 0 {
			return decision // refunded already
		}
	}
	return ""
}

// audit reads every region's row, transfer records and markers of sku and
// checks conservation. Every group must answer.
func (s *Store) Conservation(ctx context.Context, sku string) (check.GeoConservation, error) {
	a := check.GeoConservation{SKU: sku, Regions: map[string]check.GeoRow{}}
	markers := map[string]string{}
	var pending []Transfer
	inPrefix := fmt.Sprintf("%s%d/in/%s/", geoPrefix, s.epoch.Load(), sku)
	outPrefix := fmt.Sprintf("%s%d/out/%s/", geoPrefix, s.epoch.Load(), sku)
	for _, r := range s.regions {
		if !s.cluster.IsUp(r) {
			return a, fmt.Errorf("%w: the conservation audit needs every regional group; %s is down", inventory.ErrUnavailable, r)
		}
		cli, err := s.client(ctx, r, r)
		if err != nil {
			return a, fmt.Errorf("%w: the conservation audit needs every regional group; %s's has no leader", inventory.ErrUnavailable, r)
		}
		resp, err := cli.Txn(clientv3.WithRequireLeader(ctx)).Then(
			clientv3.OpGet(s.rowKey(sku)),
			clientv3.OpGet(outPrefix, clientv3.WithPrefix()),
			clientv3.OpGet(inPrefix, clientv3.WithPrefix())).Commit()
		if err != nil {
			return a, fmt.Errorf("%w: the conservation audit needs every regional group; %s's did not answer: %s", inventory.ErrUnavailable, r, shortErr(err))
		}
		row, _ := rowFrom(resp, 0)
		a.Regions[r] = check.GeoRow(row)
		a.Stocked += row.Stocked
		a.Sold += row.Sold
		a.Remaining += row.Quantity
		if row.Quantity < 0 {
			a.Oversold -= row.Quantity
		}
		if row.Stocked+row.In-row.Out != row.Quantity+row.Sold {
			a.Explanation += fmt.Sprintf("%s's row does not balance (stocked %d + in %d − out %d ≠ left %d + sold %d). ", r, row.Stocked, row.In, row.Out, row.Quantity, row.Sold)
		}
		for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
			var tr Transfer
			if json.Unmarshal(kv.Value, &tr) == nil {
				pending = append(pending, tr)
			}
		}
		for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
			markers[strings.TrimPrefix(string(kv.Key), inPrefix)] = string(kv.Value)
		}
	}
	a.PendingTransfers = len(pending)
	for _, tr := range pending {
		if markers[tr.ID] != markerCredited {
			a.InTransit += tr.Qty
		}
	}
	a.Oversold += max(0, a.Sold-a.Stocked)
	a.Conserved = a.Explanation == "" && a.Stocked == a.Sold+a.Remaining+a.InTransit
	if a.Conserved {
		a.Explanation = fmt.Sprintf("Conserved: %d stocked = %d sold + %d left in the regions' allocations + %d in pending transfers.", a.Stocked, a.Sold, a.Remaining, a.InTransit)
	} else {
		a.Explanation += fmt.Sprintf("NOT conserved: %d stocked ≠ %d sold + %d left + %d in transit.", a.Stocked, a.Sold, a.Remaining, a.InTransit)
	}
	return a, nil
}

// Kick asks the recovery loop to settle every pending transfer now
// (after a restart).
func (s *Store) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Kicked delivers a value when the recovery loop should run now (Kick).
func (s *Store) Kicked() <-chan struct{} { return s.kick }

// SetAfterDebit makes every transfer call f between its debit at the
// source and its credit at the destination (nil: nothing). A knob for
// tests that break the network exactly there.
func (s *Store) SetAfterDebit(f func(Transfer)) { s.afterDebit = f }
