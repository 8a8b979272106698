package nodes

import (
	"errors"
	"testing"
	"time"
)

// A server that stops on its own (etcd stops one after a fatal error) is
// shown: the region is not up, its replica not running; Restart repairs
// what stopped and leaves the rest; Restart of a whole region is refused.
func TestStateTellsAStoppedReplicaAndRestartRepairs(t *testing.T) {
	c := startCluster(t, fastTiming)
	name := "ap-southeast-1"
	_, rep := c.byName[name].servers()
	rep.Server.HardStop() // not through the owner: as if etcd stopped it

	st := regionStatus(c, name)
	if st.Up || st.ReplicaUp || !st.MemberUp {
		t.Fatalf("after the replica stopped: up %v, member %v, replica %v", st.Up, st.MemberUp, st.ReplicaUp)
	}
	if c.IsUp(name) {
		t.Fatal("IsUp says a region with a stopped replica is up")
	}
	m, _ := c.byName[name].servers()
	if err := c.Restart(name); err != nil {
		t.Fatalf("restart to repair: %v", err)
	}
	if m2, _ := c.byName[name].servers(); m2 != m {
		t.Error("the repair restarted the running member too")
	}
	st = regionStatus(c, name)
	if !st.Up || !st.ReplicaUp {
		t.Fatalf("after the repair: %+v", st)
	}
	cli, _ := c.ReplicaClient(name, name)
	if _, err := cli.Put(ctxFor(t, 10*time.Second), "k", "v"); err != nil {
		t.Fatalf("repaired replica does not answer: %v", err)
	}
	if err := c.Restart(name); !errors.Is(err, ErrRegionUp) {
		t.Fatalf("restart of a running region: %v, want ErrRegionUp", err)
	}
}
