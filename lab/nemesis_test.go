package lab_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/guard"
	"caplab/lab/inventory"
)

var nemesisSeeds = flag.Int("nemesis.seeds", 2, "how many seeded fault schedules TestNemesis runs (CI: 2; try 20)")

// nemesisStep is one fault of a schedule.
type nemesisStep struct {
	what string
	do   func(l *lab.Lab) error
}

// nemesisSchedule draws a seeded sequence of faults: cuts, one-way cuts,
// bridges, isolations, heals, crashes and restarts (at most one region
// down at a time, so the schedule itself never ends the lab).
func nemesisSchedule(seed uint64, regions []string, n int) []nemesisStep {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
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
	down := ""
	for len(steps) < n {
		switch rng.IntN(7) {
		case 0:
			a, b := pair()
			steps = append(steps, nemesisStep{"cut " + a + " " + b, func(l *lab.Lab) error { return l.Faults().SetLink(a, b, false, false) }})
		case 1:
			a, b := pair()
			steps = append(steps, nemesisStep{"cut " + a + " -> " + b, func(l *lab.Lab) error { return l.Faults().SetLink(a, b, false, true) }})
		case 2:
			v := pick()
			steps = append(steps, nemesisStep{"bridge via " + v, func(l *lab.Lab) error { return l.Faults().Bridge(v) }})
		case 3:
			v := pick()
			steps = append(steps, nemesisStep{"isolate " + v, func(l *lab.Lab) error { return l.Faults().Isolate(v) }})
		case 4:
			steps = append(steps, nemesisStep{"heal", func(l *lab.Lab) error { return l.Faults().HealAll() }})
		case 5:
			if down != "" {
				continue
			}
			v := pick()
			down = v
			steps = append(steps, nemesisStep{"crash " + v, func(l *lab.Lab) error { return l.Faults().Crash(v) }})
		case 6:
			if down == "" {
				continue
			}
			v := down
			down = ""
			steps = append(steps, nemesisStep{"restart " + v, func(l *lab.Lab) error { return l.Faults().Restart(v) }})
		}
	}
	if down != "" {
		v := down
		steps = append(steps, nemesisStep{"restart " + v, func(l *lab.Lab) error { return l.Faults().Restart(v) }})
	}
	return append(steps, nemesisStep{"heal", func(l *lab.Lab) error { return l.Faults().HealAll() }})
}

// TestNemesis runs concurrent buyers in every region against both stores
// while a seeded schedule of faults plays, then asks the checker. The
// consensus store must stay linearizable with nothing oversold on every
// seed, with group commit off and on (then with four more buyers per
// region on it, so that batches form); the replicated store with W=1
// must be caught.
func TestNemesis(t *testing.T) {
	if testing.Short() {
		t.Skip("nemesis runs real faults for several seconds")
	}
	l := newLab(t, lab.Config{LatencyScale: 0.05, Breaker: guard.BreakerSettings{Threshold: 3, Cooldown: 300 * time.Millisecond}})
	for seed := range uint64(*nemesisSeeds) {
		for _, gc := range []bool{false, true} {
			nemesisRun(t, l, seed, gc)
		}
	}
}

func nemesisRun(t *testing.T, l *lab.Lab, seed uint64, groupCommit bool) {
	on := map[bool]string{false: "off", true: "on"}[groupCommit]
	t.Run(fmt.Sprintf("seed=%d/groupcommit=%s", seed, on), func(t *testing.T) {
		if err := l.Reset(ctxT(t, 60*time.Second)); err != nil {
			t.Fatal(err)
		}
		l.Faults().SetGroupCommit(groupCommit)
		const units = 40
		sku := fmt.Sprintf("DROP-%d-%s", seed, on)
		for _, s := range inventory.Stores {
			n := units
			if groupCommit && s == inventory.Consensus {
				n = 4 * units
			}
			o, err := l.Stock(ctxT(t, 10*time.Second), s, sku, "us-east-1", n)
			if err != nil || o.Outcome != inventory.OK {
				t.Fatalf("stock %s: %v %+v", s, err, o)
			}
		}
		if err := l.WaitConverged(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, region := range l.Regions() {
			for _, store := range inventory.Stores {
				buyers := 2
				if groupCommit && store == inventory.Consensus {
					buyers = 6
				}
				for b := range buyers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < 40 && ctx.Err() == nil; i++ {
							o, err := l.Buy(context.Background(), store, sku, region, 1)
							if err != nil {
								t.Errorf("buy refused: %v", err)
								return
							}
							if o.Outcome == inventory.SoldOut {
								return
							}
							time.Sleep(time.Duration(60+20*(b%2)) * time.Millisecond)
						}
					}()
				}
			}
		}
		schedule := nemesisSchedule(seed, l.Regions(), 10)
		rounds0, units0 := lab.ConsensusOf(l).Rounds()
		for _, step := range schedule {
			if err := step.do(l); err != nil {
				t.Errorf("fault %q: %v", step.what, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
		cancel()
		wg.Wait()
		if err := l.WaitLeader(ctxT(t, 20*time.Second)); err != nil {
			t.Fatal(err)
		}

		cr, _ := l.Check(inventory.Consensus, sku)
		rounds, sold := lab.ConsensusOf(l).Rounds()
		t.Logf("consensus: %s (%d ops, %d sold, %d indeterminate, %d Txns for %d units)", cr.Explanation, cr.Operations, cr.SoldUnits, cr.Indeterminate, rounds-rounds0, sold-units0)
		if !cr.Linearizable || cr.Oversold != 0 {
			var steps []string
			for _, s := range schedule {
				steps = append(steps, s.what)
			}
			t.Errorf("consensus store broke its promise under %v: %+v", steps, cr)
		}
		rr, _ := l.Check(inventory.Replicated, sku)
		t.Logf("replicated W=1: %s (%d ops, %d sold, %d lost updates)", rr.Explanation, rr.Operations, rr.SoldUnits, rr.LostUpdates)
		if rr.Linearizable && rr.Oversold == 0 && rr.LostUpdates == 0 {
			t.Errorf("replicated W=1 store passed the checker under faults; the lab should catch it: %+v", rr)
		}
	})
}
