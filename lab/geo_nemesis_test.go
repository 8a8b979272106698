package lab_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/guard"
	"caplab/lab/inventory"
	"caplab/lab/store/geo"
)

// geoNemesisSchedule draws cuts, one-way cuts, isolations, zone crashes and
// region crashes (at most one region down at a time), with restarts and a
// final heal.
func geoNemesisSchedule(seed uint64, l *lab.Lab, n int) []nemesisStep {
	rng := rand.New(rand.NewPCG(seed, seed^0x51ed2705))
	regions := l.Regions()
	pick := func() string { return regions[rng.IntN(len(regions))] }
	pair := func() (string, string) {
		a := pick()
		for {
			if b := pick(); b != a {
				return a, b
			}
		}
	}
	var steps []nemesisStep
	for len(steps) < n {
		switch rng.IntN(6) {
		case 0:
			a, b := pair()
			steps = append(steps, nemesisStep{"cut " + a + " " + b, func(l *lab.Lab) error { return l.Faults().SetLink(a, b, false, false) }})
		case 1:
			a, b := pair()
			steps = append(steps, nemesisStep{"cut " + a + " -> " + b, func(l *lab.Lab) error { return l.Faults().SetLink(a, b, false, true) }})
		case 2:
			v := pick()
			steps = append(steps, nemesisStep{"isolate " + v, func(l *lab.Lab) error { return l.Faults().Isolate(v) }})
		case 3:
			steps = append(steps, nemesisStep{"heal", func(l *lab.Lab) error { return l.Faults().HealAll() }})
		case 4:
			z := l.Faults().Zones(pick())[rng.IntN(3)]
			steps = append(steps, nemesisStep{"crash+restart zone " + z, func(l *lab.Lab) error {
				if err := l.Faults().Crash(z); err != nil {
					return nil // its region is down, or it is already down
				}
				time.Sleep(150 * time.Millisecond)
				if err := l.Faults().Restart(z); err != nil && !errors.Is(err, inventory.ErrConflict) {
					return err // a conflict: its region crashed meanwhile
				}
				return nil
			}})
		case 5:
			v := pick()
			steps = append(steps, nemesisStep{"crash+restart " + v, func(l *lab.Lab) error {
				if err := l.Faults().Crash(v); err != nil {
					return nil // down already (the mid-transfer crash)
				}
				time.Sleep(300 * time.Millisecond)
				return l.Faults().Restart(v)
			}})
		}
	}
	return append(steps, nemesisStep{"heal", func(l *lab.Lab) error { return l.Faults().HealAll() }})
}

// TestGeoNemesis: buyers in every region drain small allocations (so they
// borrow) while a seeded schedule of faults plays, including a region
// crash between a transfer's debit and its credit. Afterwards, recovery
// leaves no transfer pending, every unit is accounted for (stocked = sold
// + remaining), nothing is oversold and each region's allocation history
// is linearizable.
func TestGeoNemesis(t *testing.T) {
	if testing.Short() {
		t.Skip("nemesis runs real faults for several seconds")
	}
	l := newLab(t, lab.Config{LatencyScale: 0.05, Breaker: guard.BreakerSettings{Threshold: 3, Cooldown: 300 * time.Millisecond}})
	for seed := range uint64(*nemesisSeeds) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			if err := l.Reset(ctxT(t, 60*time.Second)); err != nil {
				t.Fatal(err)
			}
			sku := fmt.Sprintf("GEO-DROP-%d", seed)
			const units = 30
			geoStock(t, l, sku, map[string]int{"us-east-1": 26, "eu-west-1": 3, "ap-southeast-1": 1})

			// Crash between debit and credit: the first transfer crashes
			// its destination (seed even) or its source (seed odd) right
			// after the debit; it restarts after the buy's deadline.
			var midCrashes atomic.Int32
			var crashed sync.Map
			var restarts sync.WaitGroup
			lab.GeoStoreOf(l).SetAfterDebit(func(tr geo.Transfer) {
				if midCrashes.Add(1) != 1 {
					return
				}
				victim := tr.To
				if seed%2 == 1 {
					victim = tr.From
				}
				if err := l.Faults().Crash(victim); err == nil {
					crashed.Store(victim, true)
					t.Logf("crashed %s between the debit of %s and its credit", victim, tr.ID)
					restarts.Add(1)
					go func() {
						defer restarts.Done()
						// Past the buy's deadline: a crashed destination
						// leaves the transfer pending for recovery.
						time.Sleep(l.RequestTimeout() + 300*time.Millisecond)
						_ = l.Faults().Restart(victim)
					}()
				}
			})
			t.Cleanup(func() { lab.GeoStoreOf(l).SetAfterDebit(nil) })

			var okUnits atomic.Int64
			// One unit local, one borrowed from eu-west-1: the crash hits here.
			first := buyGeo(t, l, sku, "ap-southeast-1", 2)
			t.Logf("the buy whose transfer was interrupted: %s — %s", first.Outcome, first.Message)
			if first.Outcome == inventory.OK {
				okUnits.Add(2)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for _, region := range l.Regions() {
				for b := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < 40 && ctx.Err() == nil; i++ {
							qty := 1 + (i+b)%2
							o, err := l.Buy(context.Background(), inventory.Geo, sku, region, qty)
							if err != nil {
								t.Errorf("buy refused: %v", err)
								return
							}
							if o.Outcome == inventory.OK {
								okUnits.Add(int64(qty))
							}
							time.Sleep(time.Duration(40+20*b) * time.Millisecond)
						}
					}()
				}
			}
			schedule := geoNemesisSchedule(seed, l, 8)
			for _, step := range schedule {
				if err := step.do(l); err != nil {
					t.Errorf("fault %q: %v", step.what, err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			cancel()
			wg.Wait()
			restarts.Wait()
			crashed.Range(func(k, _ any) bool {
				if !l.Cluster().IsUp(k.(string)) {
					if err := l.Faults().Restart(k.(string)); err != nil {
						t.Errorf("restart %s: %v", k, err)
					}
				}
				return true
			})
			if midCrashes.Load() == 0 {
				t.Errorf("no transfer happened, so no crash between debit and credit")
			}
			if err := l.Cluster().WaitRegionalLeaders(ctxT(t, 20*time.Second)); err != nil {
				t.Fatal(err)
			}
			// Recovery settles what is left (a region may need a moment
			// before its group answers again).
			deadline := time.Now().Add(20 * time.Second)
			for {
				rec, err := l.Geo().RecoverTransfers(ctxT(t, 10*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				a, aerr := l.Geo().Conservation(ctxT(t, 10*time.Second), sku)
				if aerr == nil && rec.Pending == 0 && a.PendingTransfers == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("transfers still pending after recovery: %+v %+v %v", rec, a, aerr)
				}
				time.Sleep(200 * time.Millisecond)
			}
			a := conserved(t, l, sku, units)
			if a.InTransit != 0 || a.Sold+a.Remaining != units {
				t.Fatalf("after recovery: %+v", a)
			}
			if int(okUnits.Load()) > a.Sold {
				t.Fatalf("buyers were told ok for %d units but the rows sold %d", okUnits.Load(), a.Sold)
			}
			res, err := l.Check(inventory.Geo, sku)
			if err != nil {
				t.Fatal(err)
			}
			var steps []string
			for _, s := range schedule {
				steps = append(steps, s.what)
			}
			t.Logf("geo: %s (%d calls checked, %d sold ok, borrowed %d, stranded buys %d) under %v", res.Explanation, res.Geo.Calls, res.SoldUnits, res.Geo.Borrowed, res.Geo.Stranded, steps)
			if !res.Linearizable || res.Oversold != 0 {
				t.Fatalf("geo store broke its promise: %+v %+v", res, res.Geo)
			}
		})
	}
}
