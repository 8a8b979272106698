package nodes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// fast timing for fault tests: quick elections without spurious ones.
var fastTiming = Config{LatencyScale: 0, TickMs: 50, ElectionMs: 500}

func followerOf(t *testing.T, c *Cluster, leader string) string {
	t.Helper()
	for _, r := range c.Regions() {
		if r != leader {
			return r
		}
	}
	t.Fatal("no follower")
	return ""
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func regionStatus(c *Cluster, name string) RegionStatus {
	for _, r := range c.State().Regions {
		if r.Name == name {
			return r
		}
	}
	return RegionStatus{}
}

func linkStatus(c *Cluster, from, to string) LinkStatus {
	for _, l := range c.fabric.Links() {
		if l.From == from && l.To == to {
			return l
		}
	}
	return LinkStatus{}
}

func TestIsolatedRegion(t *testing.T) {
	c := startCluster(t, fastTiming)
	leader := c.Leader()
	iso := followerOf(t, c, leader)
	if err := put(t, c, leader, "stock", "1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "isolated member applied the first write", func() bool {
		return regionStatus(c, iso).AppliedIndex >= regionStatus(c, leader).AppliedIndex
	})
	if err := c.fabric.Isolate(iso); err != nil {
		t.Fatal(err)
	}
	// The majority keeps its leader (or elects one) and commits.
	var majority string
	for _, r := range c.Regions() {
		if r != iso {
			majority = r
			break
		}
	}
	if err := put(t, c, majority, "stock", "0", 10*time.Second); err != nil {
		t.Fatalf("majority write: %v", err)
	}
	// The isolated member notices it has no leader …
	eventually(t, 10*time.Second, "isolated member loses its leader", func() bool { return regionStatus(c, iso).Leader == "" })
	// … after which its write fails fast, never past its deadline.
	start := time.Now()
	err := put(t, c, iso, "stock", "9", 3*time.Second)
	if err == nil {
		t.Fatal("isolated write succeeded")
	}
	if el := time.Since(start); el > 3500*time.Millisecond {
		t.Fatalf("isolated write took %v, past its 3 s deadline", el)
	}
	cli, _ := c.MemberClient(iso)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err = cli.Get(ctx, "stock")
	cancel()
	if err == nil {
		t.Fatal("linearizable read on the isolated member succeeded")
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	resp, err := cli.Get(ctx, "stock", clientv3.WithSerializable())
	cancel()
	if err != nil {
		t.Fatalf("serializable read: %v", err)
	}
	if got := string(resp.Kvs[0].Value); got != "1" {
		t.Fatalf("serializable read on the isolated member = %q, want the stale %q", got, "1")
	}

	// Heal: everyone converges on the same applied index and value.
	c.fabric.HealAll()
	assertConverged(t, c, "stock", "0")
}

func assertConverged(t *testing.T, c *Cluster, key, want string) {
	t.Helper()
	if _, err := c.WaitLeader(ctxFor(t, 15*time.Second)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "members reach the same applied index", func() bool {
		st := c.State()
		for _, r := range st.Regions {
			if r.AppliedIndex != st.Regions[0].AppliedIndex || !r.Up {
				return false
			}
		}
		return true
	})
	// The applied indexes above come from State, which for regions on
	// agents is their last report (up to a report interval old): equal
	// indexes there can predate the write. What converged means is that
	// every member serves the value from its own copy, so wait for that.
	for _, r := range c.Regions() {
		cli, _ := c.MemberClient(r)
		deadline := time.Now().Add(15 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := cli.Get(ctx, key, clientv3.WithSerializable())
			cancel()
			var got string
			switch {
			case err != nil:
				got = err.Error()
			case len(resp.Kvs) == 0 || string(resp.Kvs[0].Value) != want:
				got = fmt.Sprintf("%q = %v", key, resp.Kvs)
			}
			if got == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s has %s, want %q", r, got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestBridgeKeepsCommitting(t *testing.T) {
	c := startCluster(t, fastTiming)
	regions := c.Regions()
	// Bridge through the leader's neighbour: only A–B is cut, C sees both.
	via := regions[2]
	if err := c.fabric.Bridge(via); err != nil {
		t.Fatal(err)
	}
	if linkStatus(c, regions[0], regions[1]).Up || linkStatus(c, regions[1], regions[0]).Up {
		t.Fatal("bridge left A–B up")
	}
	if !linkStatus(c, regions[0], via).Up || !linkStatus(c, via, regions[1]).Up {
		t.Fatal("bridge cut a link to the bridge region")
	}
	for i := range 5 {
		for _, r := range regions {
			if err := put(t, c, r, "k", fmt.Sprint(i), 10*time.Second); err != nil && r == via {
				t.Fatalf("write through the bridge region %s failed: %v", via, err)
			}
		}
	}
	if err := put(t, c, via, "k", "done", 10*time.Second); err != nil {
		t.Fatalf("cluster stopped committing under a bridge: %v", err)
	}
	c.fabric.HealAll()
	assertConverged(t, c, "k", "done")
}

func TestOneWayCutFromLeaderLosesLeader(t *testing.T) {
	c := startCluster(t, fastTiming)
	leader := c.Leader()
	b := followerOf(t, c, leader)
	if err := c.fabric.Cut(leader, b, true); err != nil {
		t.Fatal(err)
	}
	if !linkStatus(c, b, leader).Up {
		t.Fatal("one-way cut also cut the reverse direction")
	}
	// B hears nothing from the leader, so its election timer fires; with
	// PreVote and CheckQuorum the others keep their leader and refuse B's
	// pre-votes, so B stays without a leader while the rest commit.
	eventually(t, 10*time.Second, b+" loses the leader", func() bool { return regionStatus(c, b).Leader == "" })
	r := regionStatus(c, b)
	if r.Role != RolePreCandidate && r.Role != RoleCandidate {
		t.Fatalf("%s role = %s, want pre-candidate or candidate", b, r.Role)
	}
	var other string
	for _, x := range c.Regions() {
		if x != b && x != leader {
			other = x
		}
	}
	if err := put(t, c, other, "k", "v", 10*time.Second); err != nil {
		t.Fatalf("the other two stopped committing: %v", err)
	}
	c.fabric.HealAll()
	assertConverged(t, c, "k", "v")
}

func TestCutLinkCountersStayFlat(t *testing.T) {
	c := startCluster(t, fastTiming)
	a, b := c.Regions()[0], c.Regions()[1]
	eventually(t, 5*time.Second, "traffic on a→b", func() bool { return linkStatus(c, a, b).Messages > 0 })
	if err := c.fabric.Cut(a, b, false); err != nil {
		t.Fatal(err)
	}
	before := [2]LinkStatus{linkStatus(c, a, b), linkStatus(c, b, a)}
	for i := range 10 { // writes and heartbeats keep flowing elsewhere
		_ = put(t, c, c.Regions()[2], "k", fmt.Sprint(i), 5*time.Second)
		time.Sleep(50 * time.Millisecond)
	}
	after := [2]LinkStatus{linkStatus(c, a, b), linkStatus(c, b, a)}
	for i := range before {
		if before[i].Bytes != after[i].Bytes || before[i].Messages != after[i].Messages {
			t.Fatalf("cut link %s→%s carried traffic: %+v → %+v", before[i].From, before[i].To, before[i], after[i])
		}
	}
	if err := c.fabric.Heal(a, b, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "counters move after heal", func() bool {
		return linkStatus(c, a, b).Messages > after[0].Messages && linkStatus(c, b, a).Messages > after[1].Messages
	})
}

func TestWriteThroughFollowerPaysInjectedDelay(t *testing.T) {
	// RTTs scaled by 0.2: us-east-1–ap-southeast-1 227 ms → 45 ms round trip.
	c := startCluster(t, Config{LatencyScale: 0.2})
	leader := c.Leader()
	f := followerOf(t, c, leader)
	// A write through follower f: f → leader (forward), leader → quorum
	// (append + ack), leader → f (reply). At least the f↔leader round trip.
	minRTT, _ := ModelRTT(f, leader)
	lower := time.Duration(minRTT * 0.2 * float64(time.Millisecond))
	for range 3 {
		start := time.Now()
		if err := put(t, c, f, "k", "v", 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < lower {
			t.Fatalf("write via %s to leader %s took %v, less than the injected round trip %v", f, leader, el, lower)
		}
	}
}

func TestCrashAndRestart(t *testing.T) {
	c := startCluster(t, fastTiming)
	leader := c.Leader()
	f := followerOf(t, c, leader)
	if err := c.Crash(f); err != nil {
		t.Fatal(err)
	}
	if err := c.Crash(f); !errors.Is(err, ErrRegionDown) {
		t.Fatalf("crashing a crashed region: err = %v, want ErrRegionDown", err)
	}
	if regionStatus(c, f).Role != RoleOffline {
		t.Fatalf("crashed region role = %s", regionStatus(c, f).Role)
	}
	if err := put(t, c, leader, "k", "after-crash", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(f); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(f); !errors.Is(err, ErrRegionUp) {
		t.Fatalf("restarting a running region: err = %v, want ErrRegionUp", err)
	}
	assertConverged(t, c, "k", "after-crash")

	// Crash the leader: a new one is elected.
	leader = c.Leader()
	if err := c.Crash(leader); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "a new leader", func() bool { l := c.Leader(); return l != "" && l != leader })
	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
	assertConverged(t, c, "k", "after-crash")
}

func TestFullRestartKeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	cfg := fastTiming
	cfg.DataDir = dir
	c := startCluster(t, cfg)
	var acked []string
	for i := range 20 {
		k := fmt.Sprintf("k%02d", i)
		if err := put(t, c, c.Regions()[i%3], k, "v", 5*time.Second); err == nil {
			acked = append(acked, k)
		}
	}
	if len(acked) != 20 {
		t.Fatalf("only %d of 20 writes acknowledged on a healthy cluster", len(acked))
	}
	for _, r := range c.Regions() {
		if err := c.Crash(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range c.Regions() {
		if err := c.Restart(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.WaitLeader(ctxFor(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	cli, _ := c.MemberClient(c.Regions()[0])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "k", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if int(resp.Count) != len(acked) {
		t.Fatalf("after restarting every region %d keys remain, %d were acknowledged", resp.Count, len(acked))
	}
}

func TestReplicaTrafficObeysFabric(t *testing.T) {
	c := startCluster(t, fastTiming)
	a, b := c.Regions()[0], c.Regions()[1]
	cli, err := c.ReplicaClient(a, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if _, err := cli.Put(ctx, "x", "1"); err != nil {
		t.Fatalf("replica write a→b: %v", err)
	}
	cancel()
	before := linkStatus(c, a, b).Bytes
	if before == 0 {
		t.Fatal("replica write did not count on link a→b")
	}
	if err := c.fabric.Cut(a, b, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err = cli.Get(ctx, "x")
	cancel()
	if err == nil {
		t.Fatal("region a reached b's replica across a cut link")
	}
	// b's replica itself is fine, as seen from b.
	local, _ := c.ReplicaClient(b, b)
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	resp, err := local.Get(ctx, "x")
	cancel()
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("local replica read: %v %v", resp, err)
	}
	if err := c.fabric.Heal(a, b, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a reaches b's replica after heal", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := cli.Get(ctx, "x")
		return err == nil
	})
}

func TestBadOperationsChangeNothing(t *testing.T) {
	c := startCluster(t, fastTiming)
	before := c.fabric.Links()
	cases := []struct {
		name string
		op   func() error
		want string
	}{
		{"unknown region cut", func() error { return c.fabric.Cut("us-east-1", "mars-1", false) }, "mars-1"},
		{"self link", func() error { return c.fabric.Cut("us-east-1", "us-east-1", false) }, "two different regions"},
		{"overlapping groups", func() error {
			return c.fabric.Partition([][]string{{"us-east-1", "eu-west-1"}, {"eu-west-1", "ap-southeast-1"}})
		}, "exactly one group"},
		{"missing region", func() error { return c.fabric.Partition([][]string{{"us-east-1"}, {"eu-west-1"}}) }, "missing: ap-southeast-1"},
		{"empty group", func() error { return c.fabric.Partition([][]string{{"us-east-1", "eu-west-1", "ap-southeast-1"}, {}}) }, "empty"},
		{"negative latency", func() error { return c.fabric.SetRTT("us-east-1", "eu-west-1", -1, false) }, "between 0 and"},
		{"absurd latency", func() error { return c.fabric.SetRTT("us-east-1", "eu-west-1", 1e9, false) }, "between 0 and"},
		{"ring on 3", func() error { return c.fabric.MajoritiesRing() }, "at least 4"},
		{"crash unknown", func() error { return c.Crash("mars-1") }, "mars-1"},
		{"lead unknown", func() error { return c.MoveLeader(context.Background(), "mars-1") }, "mars-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if !errors.Is(err, ErrBadOperation) {
				t.Fatalf("err = %v does not wrap ErrBadOperation", err)
			}
		})
	}
	after := c.fabric.Links()
	for i := range before {
		before[i].Bytes, before[i].Messages, after[i].Bytes, after[i].Messages = 0, 0, 0, 0
		if before[i] != after[i] {
			t.Fatalf("a bad operation changed link %v → %v", before[i], after[i])
		}
	}
}

func TestMoveLeader(t *testing.T) {
	c := startCluster(t, fastTiming)
	target := followerOf(t, c, c.Leader())
	if err := c.MoveLeader(ctxFor(t, 10*time.Second), target); err != nil {
		t.Fatal(err)
	}
	if l := c.Leader(); l != target {
		t.Fatalf("leader = %s, want %s", l, target)
	}
}

func TestLeaderCutOffIsNotReportedAsAgreed(t *testing.T) {
	c := startCluster(t, Config{LatencyScale: 0, TickMs: 100, ElectionMs: 1000})
	leader := c.Leader()
	if err := c.fabric.Isolate(leader); err != nil {
		t.Fatal(err)
	}
	// The followers still name the old leader for up to an election
	// timeout, but it can no longer reach them: no agreed leader now.
	if l := c.Leader(); l == leader {
		t.Fatalf("Leader() = %s right after isolating it", l)
	}
	l, err := c.WaitLeader(ctxFor(t, 15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if l == leader {
		t.Fatalf("WaitLeader returned the isolated leader %s", l)
	}
	c.fabric.HealAll()
	eventually(t, 15*time.Second, "members caught up after heal", c.CaughtUp)
}

func TestMoveLeaderToCutOffRegionFailsAtOnce(t *testing.T) {
	c := startCluster(t, fastTiming)
	leader := c.Leader()
	target := followerOf(t, c, leader)
	if err := c.fabric.Cut(leader, target, true); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := c.MoveLeader(ctxFor(t, 10*time.Second), target)
	if err == nil || !strings.Contains(err.Error(), "cut off") {
		t.Fatalf("err = %v, want it to say the target is cut off", err)
	}
	if el := time.Since(start); el > 5*time.Second { // half the caller's deadline
		t.Fatalf("refusal took %v; it should not wait for a transfer that cannot happen", el)
	}
}

func TestNoRestartAfterClose(t *testing.T) {
	c := startCluster(t, fastTiming)
	r := c.Regions()[0]
	if err := c.Crash(r); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(r); !errors.Is(err, ErrClosed) {
		t.Fatalf("restart after Close: err = %v, want ErrClosed", err)
	}
	if c.IsUp(r) {
		t.Fatal("a region came back up after Close")
	}
	if _, ok := <-func() <-chan Snapshot { ch, _ := c.Subscribe(); return ch }(); ok {
		t.Fatal("Subscribe after Close delivered a snapshot")
	}
}

// While a region is down another process may take its ports; the restart
// then moves its listeners and repoints everything that talks to them.
func TestRestartAfterItsPortsWereTaken(t *testing.T) {
	c := startCluster(t, fastTiming)
	leader := c.Leader()
	f := followerOf(t, c, leader)
	if err := c.Crash(f); err != nil {
		t.Fatal(err)
	}
	r := c.byName[f]
	var squatters []net.Listener
	for _, addr := range []string{r.memberPeer, r.memberClient, r.replicaClient} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("take %s: %v", addr, err)
		}
		squatters = append(squatters, ln)
	}
	defer func() {
		for _, ln := range squatters {
			_ = ln.Close()
		}
	}()
	if err := c.Restart(f); err != nil {
		t.Fatalf("restart with its ports taken: %v", err)
	}
	if err := put(t, c, leader, "k", "moved", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	assertConverged(t, c, "k", "moved") // reads through f's (repointed) member client
	other := followerOf(t, c, f)
	eventually(t, 10*time.Second, "another region reaches the moved replica", func() bool {
		cli, _ := c.ReplicaClient(other, f)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := cli.Put(ctx, "x", "1")
		return err == nil
	})
}
