package nodes

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func regionalPut(t *testing.T, c *Cluster, from, to, key string, d time.Duration) error {
	t.Helper()
	cli, err := c.RegionalClient(from, to)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err = cli.Put(clientv3.WithRequireLeader(ctx), key, "v")
	return err
}

func zoneStatus(c *Cluster, name string) ZoneStatus {
	for _, z := range c.State().Zones {
		if z.Name == name {
			return z
		}
	}
	return ZoneStatus{}
}

// A region cut off from the world keeps its regional group whole; a region
// that loses one zone keeps a majority; a crashed region takes its zones
// down and brings them back on restart.
func TestRegionalGroupsSurviveIsolationAndZoneCrash(t *testing.T) {
	c := startCluster(t, Config{LatencyScale: 0})
	ctx := ctxFor(t, 20*time.Second)
	if err := c.WaitRegionalLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	st := c.State()
	if len(st.Zones) != 9 {
		t.Fatalf("want 9 zones, got %d", len(st.Zones))
	}
	if len(st.ZoneLinks) != 18 {
		t.Fatalf("want 18 zone links, got %d", len(st.ZoneLinks))
	}
	if err := c.Fabric().Isolate("ap-southeast-1"); err != nil {
		t.Fatal(err)
	}
	if err := regionalPut(t, c, "ap-southeast-1", "ap-southeast-1", "k", 3*time.Second); err != nil {
		t.Fatalf("isolated region's own group: %v", err)
	}
	if err := regionalPut(t, c, "us-east-1", "ap-southeast-1", "k", 2*time.Second); err == nil {
		t.Fatal("a write into an isolated region's group from outside succeeded")
	}
	c.Fabric().HealAll()
	// The cross-region path works once healed.
	eventually(t, 10*time.Second, "remote write after heal", func() bool {
		return regionalPut(t, c, "us-east-1", "ap-southeast-1", "k2", time.Second) == nil
	})

	// One zone down: the region still commits.
	leader := c.RegionalLeader("eu-west-1")
	if err := c.Crash(leader); err != nil {
		t.Fatal(err)
	}
	if zoneStatus(c, leader).Up {
		t.Fatalf("%s still up after crash", leader)
	}
	if err := c.Crash(leader); !errors.Is(err, ErrRegionDown) {
		t.Fatalf("crash of a crashed zone: %v", err)
	}
	eventually(t, 10*time.Second, "write with one zone down", func() bool {
		return regionalPut(t, c, "eu-west-1", "eu-west-1", "k3", time.Second) == nil
	})
	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
	// Whole region down: zones down too; back on restart.
	if err := c.Crash("us-east-1"); err != nil {
		t.Fatal(err)
	}
	for _, z := range c.Zones("us-east-1") {
		if c.ZoneUp(z) {
			t.Fatalf("zone %s up in a crashed region", z)
		}
	}
	if err := c.Restart("us-east-1a"); !errors.Is(err, ErrRegionDown) {
		t.Fatalf("restart of a zone in a crashed region: %v", err)
	}
	if err := c.Restart("us-east-1"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRegionalLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	if err := regionalPut(t, c, "us-east-1", "us-east-1", "k4", 3*time.Second); err != nil {
		t.Fatalf("after region restart: %v", err)
	}
}

// A cut zone link is a link like any other: its counters stay flat and a
// zone cut off from both others loses its say, while the other two commit.
func TestZoneLinksCut(t *testing.T) {
	c := startCluster(t, Config{LatencyScale: 0})
	ctx := ctxFor(t, 20*time.Second)
	if err := c.WaitRegionalLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	zf, err := c.ZoneFabric("us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := zf.Cut("us-east-1a", "us-east-1b", false); err != nil {
		t.Fatal(err)
	}
	if err := zf.Cut("us-east-1a", "us-east-1c", false); err != nil {
		t.Fatal(err)
	}
	before := zf.link("us-east-1a", "us-east-1b").status().Bytes
	eventually(t, 10*time.Second, "majority commits without zone a", func() bool {
		return regionalPut(t, c, "us-east-1", "us-east-1", "k", time.Second) == nil
	})
	if after := zf.link("us-east-1a", "us-east-1b").status().Bytes; after != before {
		t.Fatalf("cut zone link carried %d bytes", after-before)
	}
	if err := zf.SetLink("us-east-1a", "eu-west-1a", false, false); !errors.Is(err, ErrBadOperation) {
		t.Fatalf("cross-region zone link: %v", err)
	}
	if cfg := (Config{Zones: 4}); cfg.Validate() == nil {
		t.Fatal("4 zones accepted")
	}
}

// --zones 1: one member per regional group.
func TestOneZone(t *testing.T) {
	c := startCluster(t, Config{LatencyScale: 0, Zones: 1})
	if err := c.WaitRegionalLeaders(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := len(c.State().Zones); got != 3 {
		t.Fatalf("want 3 zones, got %d", got)
	}
	if err := regionalPut(t, c, "eu-west-1", "eu-west-1", "k", 3*time.Second); err != nil {
		t.Fatal(err)
	}
}
