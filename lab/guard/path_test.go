package guard_test

import (
	"strings"
	"testing"

	"caplab/lab/guard"
	"caplab/lab/inventory"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestExecutePath: a path's breaker (a gateway's calls into another
// region's group) opens on its own, leaves the (region, store) breaker and
// the other paths closed, fails fast naming the path, and stays out of
// States; to == region is the (region, store) breaker itself.
func TestExecutePath(t *testing.T) {
	b := guard.NewBreakers([]string{"us-east-1", "eu-west-1"}, guard.BreakerSettings{Threshold: 2})
	down := func() inventory.Outcome { return inventory.Outcome{Outcome: inventory.Unavailable} }
	up := func() inventory.Outcome { return inventory.Outcome{Outcome: inventory.OK} }
	for range 2 {
		b.ExecutePath("us-east-1", inventory.Geo, "eu-west-1", down)
	}
	o := b.ExecutePath("us-east-1", inventory.Geo, "eu-west-1", up)
	if o.Outcome != inventory.FailFast || !strings.Contains(o.Message, "the circuit breaker for geo>eu-west-1 in us-east-1 is open") {
		t.Fatalf("path after 2 failures: %s %q", o.Outcome, o.Message)
	}
	if o := b.ExecutePath("us-east-1", inventory.Geo, "ap-southeast-1", up); o.Outcome != inventory.OK {
		t.Fatalf("another path: %s %q", o.Outcome, o.Message)
	}
	if o := b.ExecutePath("us-east-1", inventory.Geo, "us-east-1", up); o.Outcome != inventory.OK {
		t.Fatalf("the local group: %s %q", o.Outcome, o.Message)
	}
	if st := b.States("us-east-1"); st[inventory.Geo] != guard.BreakerClosed || len(st) != len(inventory.Stores) {
		t.Fatalf("States = %v: an open path must not show as the (region, store) breaker", st)
	}
	// to == region is the (region, store) breaker.
	for range 2 {
		b.ExecutePath("eu-west-1", inventory.Geo, "eu-west-1", down)
	}
	if st := b.State("eu-west-1", inventory.Geo); st != guard.BreakerOpen {
		t.Fatalf("eu-west-1/geo after 2 failures through its own path: %s", st)
	}
	if o := b.Execute("eu-west-1", inventory.Geo, up); o.Outcome != inventory.FailFast {
		t.Fatalf("Execute after the local path opened the breaker: %s", o.Outcome)
	}
}
