package lab_test

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Crashes, restarts, leader moves and resets of the same regions at once
// (a seeded schedule, fired concurrently) must leave a lab whose next
// reset works and whose State tells the truth: every region it calls up
// answers from its own member and its own replica.
func TestConcurrentLifecycleThenResetRepairs(t *testing.T) {
	l := newLab(t, lab.Config{})
	seed := uint64(20261202)
	if s, err := strconv.ParseUint(os.Getenv("CAPLAB_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (CAPLAB_SEED overrides)", seed)
	rng := rand.New(rand.NewPCG(seed, 9))
	type step struct {
		op, region string
	}
	var steps []step
	for _, spec := range []struct {
		region string
		n      int
	}{{"eu-west-1", 10}, {"ap-southeast-1", 5}} {
		for range spec.n {
			steps = append(steps, step{"crash", spec.region}, step{"restart", spec.region})
		}
	}
	for range 4 {
		steps = append(steps, step{"lead", l.Regions()[rng.IntN(len(l.Regions()))]})
	}
	steps = append(steps, step{"reset", ""}, step{"reset", ""})
	rng.Shuffle(len(steps), func(i, j int) { steps[i], steps[j] = steps[j], steps[i] })

	var wg sync.WaitGroup
	for i, s := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i%7) * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			switch s.op { // errors are expected: crash of a crashed region, …
			case "crash":
				_ = l.Faults().Crash(s.region)
			case "restart":
				_ = l.Faults().Restart(s.region)
			case "lead":
				_ = l.Faults().Lead(ctx, s.region)
			case "reset":
				_ = l.Reset(ctx)
			}
		}()
	}
	wg.Wait()

	if err := l.Reset(ctxT(t, 60*time.Second)); err != nil {
		t.Fatalf("reset after the storm: %v", err)
	}
	st := l.State()
	for _, r := range st.Regions {
		if !r.Up {
			t.Errorf("%s is down after a reset", r.Name)
			continue
		}
		// Up must be true: its own servers answer.
		ctx := ctxT(t, 10*time.Second)
		rep, _ := l.Cluster().ReplicaClient(r.Name, r.Name)
		if _, err := rep.Put(ctx, "/probe", r.Name); err != nil {
			t.Errorf("%s is up in State but its replica does not answer: %v", r.Name, err)
		}
		mem, _ := l.Cluster().MemberClient(r.Name)
		if _, err := mem.Get(clientv3.WithRequireLeader(ctx), "/probe"); err != nil {
			t.Errorf("%s is up in State but its member does not answer: %v", r.Name, err)
		}
	}
	// Strict quorum: with W=1 R=1 a buy may read another replica before
	// the stock reaches it, and rightly answer sold out.
	if err := l.Faults().SetQuorum(2, 2); err != nil {
		t.Fatal(err)
	}
	stock(t, l, inventory.Replicated, "ap-southeast-1", 3)
	if o := buy(t, l, inventory.Replicated, "ap-southeast-1"); o.Outcome != inventory.OK {
		t.Errorf("replicated buy after the storm: %s (%s)", o.Outcome, o.Message)
	}
	stock(t, l, inventory.Consensus, "eu-west-1", 3)
	if o := buy(t, l, inventory.Consensus, "eu-west-1"); o.Outcome != inventory.OK {
		t.Errorf("consensus buy after the storm: %s (%s)", o.Outcome, o.Message)
	}
}
