package nodes

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// etcdctl runs Debian's etcdctl (3.4, API v3) against one endpoint with a
// command deadline and returns its combined output.
func etcdctl(t *testing.T, url string, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	base := []string{"--endpoints", url, "--dial-timeout", "1s", "--command-timeout", timeout.String()}
	cmd := exec.CommandContext(ctx, "etcdctl", append(base, args...)...)
	cmd.Env = append(cmd.Environ(), "ETCDCTL_API=3")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// needEtcdctl skips loudly when etcdctl is not installed.
func needEtcdctl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("etcdctl"); err != nil {
		t.Skip("SKIPPED: etcdctl is not installed (Debian: apt-get install etcd-client); " +
			"this test runs real etcdctl against the lab's client endpoints")
	}
}

func endpointURL(t *testing.T, c *Cluster, from, to string, s Server) string {
	t.Helper()
	for _, e := range c.Endpoints() {
		if e.From == from && e.To == to && e.Server == s {
			return e.URL
		}
	}
	t.Fatalf("no %s endpoint from %s to %s", s, from, to)
	return ""
}

func TestEndpointsListEveryServerFromEveryRegion(t *testing.T) {
	c := startCluster(t, fastTiming)
	eps := c.Endpoints()
	n := len(c.Regions())
	if len(eps) != 2*n*n {
		t.Fatalf("%d endpoints, want %d (every server of every region, from every region)", len(eps), 2*n*n)
	}
	seen := map[string]bool{}
	for _, e := range eps {
		if !strings.HasPrefix(e.URL, "http://127.0.0.1:") || seen[e.URL] {
			t.Fatalf("endpoint %+v: want a distinct loopback URL", e)
		}
		seen[e.URL] = true
	}
}

// TestEtcdctlThroughTheFabric: real etcdctl (3.4) against the 3.7 servers
// of a partitioned cluster, through the client endpoints. On the isolated
// minority a put times out and a serializable get answers the old value;
// on the majority a put succeeds; a client standing in the minority cannot
// reach a majority member across the cut links; traffic between regions is
// counted on the links.
func TestEtcdctlThroughTheFabric(t *testing.T) {
	needEtcdctl(t)
	c := startCluster(t, fastTiming)
	leader := c.Leader()
	minority := followerOf(t, c, leader)
	var majority string
	for _, r := range c.Regions() {
		if r != leader && r != minority {
			majority = r
		}
	}
	leaderURL := endpointURL(t, c, leader, leader, ServerMember)
	minorityURL := endpointURL(t, c, minority, minority, ServerMember)

	if out, err := etcdctl(t, leaderURL, 5*time.Second, "put", "greeting", "old"); err != nil || out != "OK" {
		t.Fatalf("etcdctl put on the leader: %q %v", out, err)
	}
	// A client in the majority region talking to the leader's member
	// crosses majority → leader and back: the links count it.
	before := linkStatus(c, majority, leader).Bytes
	crossURL := endpointURL(t, c, majority, leader, ServerMember)
	if out, err := etcdctl(t, crossURL, 5*time.Second, "get", "greeting", "--print-value-only"); err != nil || out != "old" {
		t.Fatalf("etcdctl get from %s on %s's member: %q %v", majority, leader, out, err)
	}
	if after := linkStatus(c, majority, leader).Bytes; after <= before {
		t.Fatalf("a client in %s reading %s's member was not counted on the link (%d → %d bytes)", majority, leader, before, after)
	}
	eventually(t, 5*time.Second, "the minority member has the old value", func() bool {
		out, err := etcdctl(t, minorityURL, 2*time.Second, "get", "greeting", "--consistency=s", "--print-value-only")
		return err == nil && out == "old"
	})

	if err := c.fabric.Isolate(minority); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := etcdctl(t, minorityURL, time.Second, "put", "greeting", "minority")
	if err == nil {
		t.Fatalf("etcdctl put on the isolated member %s succeeded: %q", minority, out)
	}
	if !strings.Contains(out, "deadline exceeded") && !strings.Contains(out, "timed out") && !strings.Contains(out, "no leader") {
		t.Fatalf("etcdctl put on the isolated member failed with %q, want a timeout", out)
	}
	t.Logf("put on the minority (%s) failed after %v: %s", minority, time.Since(start).Round(time.Millisecond), out)
	if out, err := etcdctl(t, minorityURL, 2*time.Second, "get", "greeting", "--consistency=s", "--print-value-only"); err != nil || out != "old" {
		t.Fatalf("serializable get on the isolated member: %q %v, want the old value", out, err)
	}
	if out, err := etcdctl(t, endpointURL(t, c, majority, majority, ServerMember), 5*time.Second, "put", "greeting", "majority"); err != nil || out != "OK" {
		t.Fatalf("etcdctl put on the majority member %s: %q %v", majority, out, err)
	}
	if out, err := etcdctl(t, endpointURL(t, c, minority, leader, ServerMember), time.Second, "get", "greeting"); err == nil {
		t.Fatalf("a client in the isolated %s reached %s's member across cut links: %q", minority, leader, out)
	}

	c.fabric.HealAll()
	eventually(t, 10*time.Second, "the healed minority catches up", func() bool {
		out, err := etcdctl(t, minorityURL, 2*time.Second, "get", "greeting", "--consistency=s", "--print-value-only")
		return err == nil && out == "majority"
	})
}
