package nodes

import (
	"context"
	"testing"
	"time"
)

// TestAwaitLeaderHeard: a follower cut from the leader long enough to
// forget it is not waited for while it is still cut (a partition
// elsewhere is no reason to wait), and after the heal AwaitLeaderHeard
// returns only once it knows the leader again — so a write through it
// right after goes through instead of answering "no leader".
func TestAwaitLeaderHeard(t *testing.T) {
	c := startCluster(t, Config{LatencyScale: 0, TickMs: 50, ElectionMs: 500})
	leader := c.Leader()
	follower := ""
	for _, r := range c.Regions() {
		if r != leader {
			follower = r
			break
		}
	}
	if err := c.Fabric().SetLink(leader, follower, false, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, follower+" forgets its leader behind the cut", func() bool {
		return regionStatus(c, follower).Leader == ""
	})

	// Still cut: nothing to wait for.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err := c.AwaitLeaderHeard(ctx, []string{follower})
	cancel()
	if err != nil {
		t.Fatalf("waited for a member the leader cannot reach: %v", err)
	}

	if err := c.Fabric().SetLink(leader, follower, true, false); err != nil {
		t.Fatal(err)
	}
	if err := c.AwaitStreams(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.AwaitLeaderHeard(ctxFor(t, 10*time.Second), []string{follower}); err != nil {
		t.Fatal(err)
	}
	if got := regionStatus(c, follower).Leader; got == "" {
		t.Fatalf("AwaitLeaderHeard returned while %s still knew no leader", follower)
	}
	if err := put(t, c, follower, "after-heal", "v", 5*time.Second); err != nil {
		t.Fatalf("write through %s right after the heal: %v", follower, err)
	}
}
