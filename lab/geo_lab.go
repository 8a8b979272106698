package lab

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"caplab/lab/inventory"
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

// geoRecoverEvery is how often pending transfers are looked at; a transfer
// younger than two request deadlines is left to the buy that started it.
const geoRecoverEvery = time.Second

func (l *Lab) startGeo() {
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		t := time.NewTicker(geoRecoverEvery)
		defer t.Stop()
		for {
			minAge := 2 * l.cfg.RequestTimeout
			select {
			case <-l.stop:
				return
			case <-t.C:
			case <-l.geo.kick:
				minAge = 0 // after a restart
			}
			if !l.gate.TryEnter() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*l.cfg.RequestTimeout)
			l.geo.recover(ctx, minAge)
			cancel()
			l.gate.Leave()
		}
	}()
}

func (s *geoStore) kickRecovery() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// RecoverTransfers runs one recovery pass now over every pending transfer,
// whatever its age: each is completed (credited at its destination) or
// refunded. Regions that cannot be reached keep theirs pending.
func (l *Lab) RecoverTransfers(ctx context.Context) (GeoRecovery, error) {
	if err := l.gate.EnterWithin(ctx, l.cfg.RequestTimeout); err != nil {
		return GeoRecovery{}, err
	}
	defer l.gate.Leave()
	ctx, cancel := context.WithTimeout(ctx, 2*l.cfg.RequestTimeout)
	defer cancel()
	return l.geo.recover(ctx, 0), nil
}

// GeoAudit checks conservation of one geo SKU across every regional group:
// stocked = sold + remaining allocations + units in pending transfers.
func (l *Lab) GeoAudit(ctx context.Context, sku string) (GeoAudit, error) {
	if err := CheckSKU(sku); err != nil {
		return GeoAudit{}, err
	}
	if err := l.gate.EnterWithin(ctx, l.cfg.RequestTimeout); err != nil {
		return GeoAudit{}, err
	}
	defer l.gate.Leave()
	ctx, cancel := context.WithTimeout(ctx, l.cfg.RequestTimeout)
	defer cancel()
	return l.geo.audit(ctx, sku)
}

// StockSplit sets a geo SKU's allocations as a write from region: the
// given units per region (regions not listed get 0), or quantity split
// evenly when allocations is empty. Given both, they must add up.
func (l *Lab) StockSplit(ctx context.Context, sku, region string, quantity int, allocations map[string]int) (Outcome, error) {
	if err := l.checkOp(Geo, sku, region); err != nil {
		return Outcome{}, err
	}
	alloc, total, err := inventory.CheckAllocations(l.regions, quantity, allocations)
	if err != nil {
		return Outcome{}, err
	}
	return l.do(ctx, command{op: Operation{Store: Geo, SKU: sku, Region: region, Op: OpStock, Qty: total, Allocations: alloc}})
}

// resetGeo restarts crashed zones, puts zone links back to their model
// latencies, waits for every regional group's leader and empties the geo
// store. Called by Reset with the gate held.
func (l *Lab) resetGeo(ctx context.Context) error {
	l.cluster.ResetZoneLinks()
	for _, r := range l.regions {
		for _, z := range l.cluster.Zones(r) {
			if !l.cluster.ZoneUp(z) {
				if err := l.cluster.Restart(z); err != nil {
					return wrapNodes(err)
				}
			}
		}
	}
	if err := l.cluster.WaitRegionalLeaders(ctx); err != nil {
		return err
	}
	return l.geo.Clear(ctx)
}

func (l *Lab) healZoneLinks() {
	for _, r := range l.regions {
		if zf, err := l.cluster.ZoneFabric(r); err == nil {
			zf.HealAll()
		}
	}
}

// checkZonePair checks that a and b are zones of one region.
func (l *Lab) checkZonePair(a, b string) (*nodes.Fabric, error) {
	for _, n := range []string{a, b} {
		if !l.cluster.IsZone(n) && l.CheckRegion(n) != nil {
			return nil, l.unknownRegionOrZone(n)
		}
	}
	ra, rb := l.cluster.ZoneRegion(a), l.cluster.ZoneRegion(b)
	if ra == "" || rb == "" || ra != rb {
		return nil, fmt.Errorf("%w: a zone link joins two zones of one region (got %s and %s); between regions, name the regions", ErrBadInput, a, b)
	}
	zf, err := l.cluster.ZoneFabric(ra)
	if err != nil {
		return nil, wrapNodes(err)
	}
	return zf, nil
}

func (l *Lab) unknownRegionOrZone(n string) error {
	return fmt.Errorf("%w: region %s is not in this lab (regions: %s) and is no zone either (zones: %s)", ErrUnknownRegion, Echo(n),
		strings.Join(l.regions, ", "), strings.Join(l.allZones(), ", "))
}

func (l *Lab) allZones() []string {
	var out []string
	for _, r := range l.regions {
		out = append(out, l.cluster.Zones(r)...)
	}
	return out
}

func (l *Lab) setZoneLink(from, to string, up, oneWay bool) error {
	zf, err := l.checkZonePair(from, to)
	if err != nil {
		return err
	}
	if err := zf.SetLink(from, to, up, oneWay); err != nil {
		return wrapNodes(err)
	}
	l.linkFault(from, to, up, oneWay, nil) // zone links are no lesson actions
	return nil
}

func (l *Lab) setZoneLatency(from, to string, rttMs float64, oneWay bool) error {
	zf, err := l.checkZonePair(from, to)
	if err != nil {
		return err
	}
	if err := zf.SetRTT(from, to, rttMs, oneWay); err != nil {
		return wrapNodes(err)
	}
	l.faultHappened(FaultLatency, []string{from, to}, fmt.Sprintf("%s <-> %s: %g ms round trip", from, to, rttMs), nil)
	return nil
}

// IsZone reports whether name is a zone of this lab (us-east-1a).
func (l *Lab) IsZone(name string) bool { return l.cluster.IsZone(name) }

// Zones lists a region's zones.
func (l *Lab) Zones(region string) []string { return slices.Clone(l.cluster.Zones(region)) }

// GeoAllocations is every region's allocation of a geo SKU as seen from
// region, like a read of the geo store (Outcome.Allocations, Unreachable,
// Stranded), but not an operation: it is not recorded in the history nor
// published, and no checker sees it — what the page's allocation bars
// fetch after every geo event without filling the timeline with reads.
// Each group is read within the request deadline.
func (l *Lab) GeoAllocations(ctx context.Context, sku, region string) (Outcome, error) {
	if err := l.checkOp(Geo, sku, region); err != nil {
		return Outcome{}, err
	}
	if err := l.gate.EnterWithin(ctx, l.cfg.RequestTimeout); err != nil {
		return Outcome{}, err
	}
	defer l.gate.Leave()
	ctx, cancel := context.WithTimeout(ctx, l.cfg.RequestTimeout)
	defer cancel()
	o := l.geo.readAll(ctx, Operation{Store: Geo, SKU: sku, Region: region, Op: OpRead}, false)
	o.Store, o.SKU, o.Region, o.Op = Geo, sku, region, OpRead
	return o, nil
}
