package lab

import (
	"context"
	"time"

	"caplab/lab/check"
	"caplab/lab/guard"
	"caplab/lab/inventory"
	"caplab/lab/store/geo"
	"caplab/nodes"
)

// ZoneState is one zone of a region in State: its member of the region's
// regional Raft group.
type ZoneState struct {
	Name   string `json:"name"`
	Up     bool   `json:"up"`
	Role   string `json:"role"`   // leader, follower, candidate, pre-candidate, offline
	Leader string `json:"leader"` // zone it believes leads the group
	Term   uint64 `json:"term"`
}

func zoneStates(s nodes.Snapshot, region string) []ZoneState {
	out := []ZoneState{}
	for _, z := range s.Zones {
		if z.Region == region {
			out = append(out, ZoneState{Name: z.Name, Up: z.Up, Role: string(z.Role), Leader: z.Leader, Term: z.Term})
		}
	}
	return out
}

func zoneLinkStates(s nodes.Snapshot) []LinkState {
	out := []LinkState{}
	for _, k := range s.ZoneLinks {
		state := "up"
		if !k.Up {
			state = "cut"
		}
		out = append(out, LinkState{From: k.From, To: k.To, State: state, RTTMs: k.RTTMs, DelayMs: k.DelayMs, Bytes: k.Bytes, Messages: k.Messages})
	}
	return out
}

// GeoStore is the lab's room for what the geo store offers besides
// operations: its allocations as the page's bars show them, the
// conservation audit of a SKU and a recovery pass over pending transfers.
// None of these is an operation: they are not recorded, published or
// judged (the documented exceptions to "every operation goes through do").
// Each reads through the lab's gate, within the request deadline.
type GeoStore struct {
	gate    *guard.Gate
	store   *geo.Store
	regions []string
	timeout time.Duration
}

// Geo is the lab's room for the geo store's allocations, conservation
// audit and transfer recovery.
func (l *Lab) Geo() *GeoStore { return l.geoRoom }

// RecoverTransfers runs one recovery pass now over every pending transfer,
// whatever its age: each is completed (credited at its destination) or
// refunded. Regions that cannot be reached keep theirs pending.
func (g *GeoStore) RecoverTransfers(ctx context.Context) (geo.Recovery, error) {
	if err := g.gate.EnterWithin(ctx, g.timeout); err != nil {
		return geo.Recovery{}, err
	}
	defer g.gate.Leave()
	ctx, cancel := context.WithTimeout(ctx, 2*g.timeout)
	defer cancel()
	return g.store.Recover(ctx, 0), nil
}

// Conservation audits one geo SKU across every regional group: stocked =
// sold + remaining allocations + units in pending transfers. It reads the
// groups now (it is no part of a verdict: see GeoCheck).
func (g *GeoStore) Conservation(ctx context.Context, sku string) (check.GeoConservation, error) {
	if err := inventory.CheckSKU(sku); err != nil {
		return check.GeoConservation{}, err
	}
	if err := g.gate.EnterWithin(ctx, g.timeout); err != nil {
		return check.GeoConservation{}, err
	}
	defer g.gate.Leave()
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	return g.store.Conservation(ctx, sku)
}

// Allocations is every region's allocation of a geo SKU as seen from
// region, like a read of the geo store (Outcome.Allocations, Unreachable,
// Stranded), but not an operation: it is not recorded in the history nor
// published, and no checker sees it — what the page's allocation bars
// fetch after every geo event without filling the timeline with reads.
// Each group is read within the request deadline.
func (g *GeoStore) Allocations(ctx context.Context, sku, region string) (inventory.Outcome, error) {
	if err := checkOp(g.regions, inventory.Geo, sku, region); err != nil {
		return inventory.Outcome{}, err
	}
	if err := g.gate.EnterWithin(ctx, g.timeout); err != nil {
		return inventory.Outcome{}, err
	}
	defer g.gate.Leave()
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	o := g.store.Allocations(ctx, inventory.Operation{Store: inventory.Geo, SKU: sku, Region: region, Op: inventory.OpRead})
	o.Store, o.SKU, o.Region, o.Op = inventory.Geo, sku, region, inventory.OpRead
	return o, nil
}

// live adds to a geo verdict what is read from the stores, not judged from
// the record: the counters of stranded and borrowed units, and (one SKU)
// the conservation audit.
func (g *GeoStore) live(r *check.Result) {
	if r.Geo == nil {
		r.Geo = &check.GeoResult{}
	}
	r.Geo.Stranded, r.Geo.Borrowed = g.store.Stranded(), g.store.Borrowed()
	if r.SKU == "" {
		return
	}
	a, err := g.Conservation(context.Background(), r.SKU)
	if err != nil {
		r.Geo.AuditError = err.Error()
		return
	}
	r.Geo.Conservation = &a
}

// StockSplit sets a geo SKU's allocations as a write from region: the
// given units per region (regions not listed get 0), or quantity split
// evenly when allocations is empty. Given both, they must add up.
func (l *Lab) StockSplit(ctx context.Context, sku, region string, quantity int, allocations map[string]int) (inventory.Outcome, error) {
	if err := checkOp(l.regions, inventory.Geo, sku, region); err != nil {
		return inventory.Outcome{}, err
	}
	alloc, total, err := inventory.CheckAllocations(l.regions, quantity, allocations)
	if err != nil {
		return inventory.Outcome{}, err
	}
	return l.do(ctx, command{op: inventory.Operation{Store: inventory.Geo, SKU: sku, Region: region, Op: inventory.OpStock, Qty: total, Allocations: alloc}})
}
