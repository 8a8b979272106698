package guard_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"caplab/lab/guard"
	"caplab/lab/inventory"
)

// TestAdmissionAdapts: the limit grows while answers are fast, shrinks
// when they are slower than the target, never leaves its bounds.
func TestAdmissionAdapts(t *testing.T) {
	a := guard.NewAdmission([]string{"r"}, 40, 100*time.Millisecond, func(r string) string { return r })
	limit := func() int { l, _ := a.Limits("r", inventory.Consensus); return l }
	start := limit()
	for range 2000 {
		a.Done(a.Admit("r", inventory.Consensus), time.Millisecond, inventory.OK)
	}
	if got := limit(); got != 40 {
		t.Fatalf("after fast answers the limit is %d (from %d), want the ceiling 40", got, start)
	}
	a.Done(a.Admit("r", inventory.Consensus), time.Second, inventory.OK)
	if limit() != 40 {
		t.Fatalf("one slow answer cut the limit to %d", limit())
	}
	for range 400 {
		g := a.Admit("r", inventory.Consensus)
		guard.ForgetCut(g) // as if a target interval had passed
		a.Done(g, time.Second, inventory.OK)
	}
	if got := limit(); got != guard.MinInFlight {
		t.Fatalf("after slow answers the limit is %d, want the floor %d", got, guard.MinInFlight)
	}
	var held []*guard.Slot
	for range guard.MinInFlight {
		held = append(held, a.Admit("r", inventory.Consensus))
	}
	if g := a.Admit("r", inventory.Consensus); g != nil || slices.Contains(held, nil) {
		t.Fatalf("admitted past the limit (%v)", held)
	}
	if a.Admit("elsewhere", inventory.Consensus) != nil {
		t.Fatal("admitted for an unknown region")
	}
}

// TestAdmissionSetCeiling: a store's ceiling can be raised (its limit
// then grows to it) and lowered (its limit is cut to it at once); the
// other stores' gateways keep theirs.
func TestAdmissionSetCeiling(t *testing.T) {
	a := guard.NewAdmission([]string{"r"}, 32, 100*time.Millisecond, func(r string) string { return r })
	limit := func(region string, st inventory.Store) int { l, _ := a.Limits(region, st); return l }
	fast := func(region string, st inventory.Store) {
		for range 20000 {
			a.Done(a.Admit(region, st), time.Millisecond, inventory.OK)
		}
	}
	a.SetCeiling(inventory.Consensus, 128)
	fast("r", inventory.Consensus)
	fast("r", inventory.Replicated)
	if got := limit("r", inventory.Consensus); got != 128 {
		t.Fatalf("consensus limit %d after fast answers, want the raised ceiling 128", got)
	}
	if got := limit("r", inventory.Replicated); got != 32 {
		t.Fatalf("replicated limit %d, want its own ceiling 32", got)
	}
	a.SetCeiling(inventory.Consensus, 32)
	if got := limit("r", inventory.Consensus); got != 32 {
		t.Fatalf("consensus limit %d right after the ceiling went back to 32", got)
	}
	var held []*guard.Slot
	for range 32 {
		held = append(held, a.Admit("r", inventory.Consensus))
	}
	if slices.Contains(held, nil) {
		t.Fatal("a slot under the limit was refused")
	}
	if g := a.Admit("r", inventory.Consensus); g != nil {
		t.Fatal("admitted past the lowered ceiling")
	}
}

// TestGateHoldsOperationsOut: lock waits for operations in flight and
// keeps new ones out until unlock; a waiting operation honours its
// deadline.
func TestGateHoldsOperationsOut(t *testing.T) {
	g := guard.NewGate()
	if err := g.Enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	locked := make(chan error, 1)
	go func() { locked <- g.Lock(context.Background()) }()
	select {
	case <-locked:
		t.Fatal("lock returned with an operation in flight")
	case <-time.After(50 * time.Millisecond):
	}
	g.Leave()
	if err := <-locked; err != nil {
		t.Fatal(err)
	}
	if g.TryEnter() {
		t.Fatal("an operation entered a locked gate")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := g.Enter(ctx); err == nil {
		t.Fatal("enter on a locked gate did not honour its deadline")
	}
	entered := make(chan error, 1)
	go func() { entered <- g.Enter(context.Background()) }()
	time.Sleep(10 * time.Millisecond)
	g.Unlock()
	if err := <-entered; err != nil {
		t.Fatal(err)
	}
	g.Leave()
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if err := g.Lock(ctx2); err != nil {
		t.Fatalf("lock of an idle gate: %v", err)
	}
	g.Unlock()
}
