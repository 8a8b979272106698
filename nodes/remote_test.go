package nodes

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Regions on separate hosts, in one process: three agents on loopback
// ports of their own (what a host is to an agent is its port and its data
// directory; the network-namespace test in package main puts each on a
// host of its own).

const testToken = "remote-test-token"

var agentTiming = Config{LatencyScale: 0, TickMs: 50, ElectionMs: 500, Zones: 1}

// startAgents starts one agent per region in this process, each on its
// own loopback port and data directory, closed at the end of the test.
func startAgents(t *testing.T, regions ...string) map[string]*Agent {
	t.Helper()
	out := map[string]*Agent{}
	for _, r := range regions {
		a, err := StartAgent(AgentConfig{Name: r, Listen: "127.0.0.1:0", Token: testToken, DataDir: t.TempDir()})
		if err != nil {
			t.Fatalf("agent %s: %v", r, err)
		}
		t.Cleanup(func() { _ = a.Close() })
		out[r] = a
	}
	return out
}

func remoteOf(agents map[string]*Agent) map[string]string {
	m := map[string]string{}
	for r, a := range agents {
		m[r] = a.Addr()
	}
	return m
}

// startOnAgents starts a lab on the agents; the test closes it.
func startOnAgents(t *testing.T, cfg Config, agents map[string]*Agent) *Cluster {
	t.Helper()
	if cfg.Remote == nil {
		cfg.Remote = remoteOf(agents)
	}
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start on agents: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatalf("wait leader: %v", err)
	}
	return c
}

// startFails starts a lab that must be refused, and returns the error.
func startFails(t *testing.T, cfg Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err == nil {
		_ = c.Close()
		t.Fatal("the lab started")
	}
	return err
}

func stateLink(c *Cluster, from, to string) LinkStatus {
	for _, l := range c.State().Links {
		if l.From == from && l.To == to {
			return l
		}
	}
	return LinkStatus{}
}

// awaitReports waits until every agent has reported under the newest link
// table: their counters then include all a cut let through.
func awaitReports(t *testing.T, c *Cluster) {
	t.Helper()
	v := c.remote.table.Load()
	eventually(t, 10*time.Second, "every agent reports under the newest link table", func() bool {
		for _, l := range c.remote.order {
			if st := l.lastStatus(); st == nil || st.Table < v {
				return false
			}
		}
		return true
	})
}

func TestRegionsOnAgents(t *testing.T) {
	agents := startAgents(t, DefaultRegions...)
	cfg := agentTiming
	cfg.Zones = 3
	c := startOnAgents(t, cfg, agents)
	if c.LabCertificate() == "" {
		t.Fatal("no lab certificate")
	}
	leader := c.Leader()
	if err := put(t, c, leader, "k", "v", 5*time.Second); err != nil {
		t.Fatalf("put on %s: %v", leader, err)
	}
	assertConverged(t, c, "k", "v")
	for _, r := range c.State().Regions {
		if !r.Up || r.Agent != agents[r.Name].Addr() || r.Stale {
			t.Fatalf("region %s: %+v", r.Name, r)
		}
	}
	// Every client path works: replicas from every region, the regional
	// groups from every region (through two agents when they differ).
	for _, from := range c.Regions() {
		for _, to := range c.Regions() {
			rep, _ := c.ReplicaClient(from, to)
			if _, err := rep.Put(ctxFor(t, 5*time.Second), "r-"+from, "x"); err != nil {
				t.Fatalf("replica of %s from %s: %v", to, from, err)
			}
			cli, zone, err := c.RegionalLeaderClient(ctxFor(t, 10*time.Second), from, to)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cli.Put(ctxFor(t, 5*time.Second), "g-"+from, "x"); err != nil {
				t.Fatalf("regional leader %s of %s from %s: %v", zone, to, from, err)
			}
		}
	}
	eventually(t, 10*time.Second, "traffic on every link, measured round trips", func() bool {
		for _, l := range c.State().Links {
			if l.Messages == 0 || l.MeasuredRTTMs <= 0 {
				return false
			}
		}
		return true
	})
	for _, l := range c.State().Links { // latency scale 0: nothing to add
		if l.DelayMs != 0 {
			t.Fatalf("link %s→%s adds %v ms at latency scale 0", l.From, l.To, l.DelayMs)
		}
	}
	// Outside clients' endpoints reach every server through the agents.
	for _, e := range c.Endpoints() {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.URL}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cli.Get(ctxFor(t, 5*time.Second), "k", clientv3.WithSerializable())
		_ = cli.Close()
		if err != nil {
			t.Fatalf("endpoint %s→%s %s: %v", e.From, e.To, e.Server, err)
		}
	}
}

// A one-way cut between two agents stops exactly one direction: its
// counters stay flat while the other direction's move.
func TestOneWayCutAcrossAgents(t *testing.T) {
	agents := startAgents(t, DefaultRegions...)
	c := startOnAgents(t, agentTiming, agents)
	a := c.Leader()
	b := followerOf(t, c, a)
	eventually(t, 10*time.Second, "traffic both ways", func() bool {
		return stateLink(c, a, b).Messages > 0 && stateLink(c, b, a).Messages > 0
	})
	if err := c.Fabric().Cut(a, b, true); err != nil {
		t.Fatal(err)
	}
	for _, ag := range agents { // the rule is in force at both ends once Cut returns
		if reg := ag.region(); (reg.self == a || reg.self == b) && reg.fabric.Up(a, b) {
			t.Fatalf("agent of %s still has %s→%s up after the cut", reg.self, a, b)
		}
	}
	awaitReports(t, c)
	cut, other := stateLink(c, a, b), stateLink(c, b, a)
	// b hears nothing from its leader, so it asks for votes: b → a moves.
	eventually(t, 20*time.Second, b+"→"+a+" carries messages", func() bool {
		return stateLink(c, b, a).Messages > other.Messages+2
	})
	awaitReports(t, c)
	if now := stateLink(c, a, b); now.Bytes != cut.Bytes || now.Messages != cut.Messages {
		t.Fatalf("cut link %s→%s carried traffic: %+v → %+v", a, b, cut, now)
	}
	if !stateLink(c, b, a).Up {
		t.Fatal("the one-way cut also cut the reverse direction")
	}
	// Clients in b of a's replica need both directions: refused.
	rep, _ := c.ReplicaClient(b, a)
	if _, err := rep.Put(ctxFor(t, 2*time.Second), "x", "y"); err == nil {
		t.Fatalf("a client in %s reached %s's replica across a one-way cut", b, a)
	}
	c.Fabric().HealAll()
	eventually(t, 10*time.Second, "the healed link carries traffic", func() bool { return stateLink(c, a, b).Messages > cut.Messages })
	if err := put(t, c, b, "k", "after", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	assertConverged(t, c, "k", "after")
}

func TestCrashAndRestartOnAgent(t *testing.T) {
	agents := startAgents(t, DefaultRegions...)
	c := startOnAgents(t, agentTiming, agents)
	f := followerOf(t, c, c.Leader())
	if err := c.Crash(f); err != nil {
		t.Fatal(err)
	}
	if err := c.Crash(f); !errors.Is(err, ErrRegionDown) {
		t.Fatalf("crashing a crashed region: %v, want ErrRegionDown", err)
	}
	if st := regionStatus(c, f); st.Up || st.Role != RoleOffline || st.Stale {
		t.Fatalf("crashed region: %+v", st)
	}
	if err := put(t, c, c.Leader(), "k", "while down", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(f); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(f); !errors.Is(err, ErrRegionUp) {
		t.Fatalf("restarting a running region: %v, want ErrRegionUp", err)
	}
	assertConverged(t, c, "k", "while down")
	if err := c.MoveLeader(ctxFor(t, 20*time.Second), f); err != nil {
		t.Fatal(err)
	}
	if c.Leader() != f {
		t.Fatalf("leader %s after moving it to %s", c.Leader(), f)
	}
}

// An agent takes no one but its lab: a lab with another token, another
// lab with the token, and connections that are not the lab's or its
// agents' are all refused.
func TestAgentsRefuseStrangers(t *testing.T) {
	agents := startAgents(t, DefaultRegions...)
	c := startOnAgents(t, agentTiming, agents)

	wrong := agentTiming
	wrong.Remote, wrong.Token, wrong.DataDir = remoteOf(agents), "not-the-token", t.TempDir()
	if err := startFails(t, wrong); !strings.Contains(err.Error(), "token") {
		t.Fatalf("wrong token: %v", err)
	}
	other := agentTiming
	other.Remote, other.Token, other.DataDir = remoteOf(agents), testToken, t.TempDir()
	err := startFails(t, other)
	if !strings.Contains(err.Error(), "belongs to lab") || !strings.Contains(err.Error(), shortPrint(c.LabCertificate())) {
		t.Fatalf("another lab with the token: %v", err)
	}

	addr := agents["us-east-1"].Addr()
	// Plain TCP and plain HTTP get nothing back.
	raw, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(raw, "GET /raft/stream/message/1 HTTP/1.1\r\nHost: x\r\n\r\n")
	got, _ := io.ReadAll(raw)
	raw.Close()
	if strings.Contains(string(got), "HTTP/") {
		t.Fatalf("plain HTTP got an HTTP answer: %q", got)
	}
	// TLS without a certificate, and with one another authority signed.
	foreign, err := loadLabIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	der, _ := foreign.issue("eu-west-1", mustPKIX(t))
	for name, certs := range map[string][]tls.Certificate{
		"no certificate":      nil,
		"foreign lab's":       {foreign.client},
		"foreign agent's key": {{Certificate: [][]byte{der}, PrivateKey: foreign.client.PrivateKey}},
	} {
		for _, header := range []string{"peer us-east-1", "client us-east-1 us-east-1 member", "client eu-west-1 us-east-1 replica", "ping"} {
			tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: certs, MinVersion: tls.VersionTLS13})
			if err != nil {
				continue // refused in the handshake: as good
			}
			_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
			_ = writeLine(tc, wireMagic, header)
			err = readAnswer(bufio.NewReader(tc))
			tc.Close()
			if err == nil {
				t.Fatalf("%s: %q was taken", name, header)
			}
		}
	}
	if _, err := c.WaitLeader(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("the lab suffered from the strangers: %v", err)
	}
}

func mustPKIX(t *testing.T) []byte {
	t.Helper()
	id, err := loadAgentIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return id.pkix
}

// An agent of another version, or one serving another region than the
// lab says, is refused, naming the difference.
func TestAgentMismatchRefused(t *testing.T) {
	agents := startAgents(t, DefaultRegions...)
	swapped := remoteOf(agents)
	swapped["us-east-1"], swapped["eu-west-1"] = swapped["eu-west-1"], swapped["us-east-1"]
	cfg := agentTiming
	cfg.Remote, cfg.Token, cfg.DataDir = swapped, testToken, t.TempDir()
	if err := startFails(t, cfg); !strings.Contains(err.Error(), "serves region eu-west-1, not us-east-1") {
		t.Fatalf("swapped agents: %v", err)
	}
	agents["ap-southeast-1"].version.Protocol = AgentProtocol + 1
	cfg.Remote, cfg.DataDir = remoteOf(agents), t.TempDir()
	err := startFails(t, cfg)
	if want := fmt.Sprintf("protocol %d, not %d", AgentProtocol+1, AgentProtocol); !strings.Contains(err.Error(), want) {
		t.Fatalf("another version: %v (want %q)", err, want)
	}
}

// A lab with a data directory leaves its agents holding their regions'
// data and comes back to them; a lab without one frees them.
func TestRemoteLabResumesAndReleases(t *testing.T) {
	agents := startAgents(t, DefaultRegions...)
	cfg := agentTiming
	cfg.DataDir = t.TempDir()
	c := startOnAgents(t, cfg, agents)
	if c.Resumed() {
		t.Fatal("a new lab says it resumed")
	}
	if err := put(t, c, c.Leader(), "k", "kept", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for r, a := range agents {
		if lab, _ := a.Lab(); lab == "" {
			t.Fatalf("agent %s forgot a lab that keeps its data", r)
		}
	}
	c2 := startOnAgents(t, cfg, agents)
	if !c2.Resumed() {
		t.Fatal("the lab did not resume")
	}
	assertConverged(t, c2, "k", "kept")
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}

	// Another region list on that directory is refused before any agent.
	bad := cfg
	bad.Regions = []string{"us-east-1", "eu-west-1"}
	bad.Remote, bad.Token = map[string]string{"us-east-1": agents["us-east-1"].Addr(), "eu-west-1": agents["eu-west-1"].Addr()}, testToken
	if err := startFails(t, bad); !strings.Contains(err.Error(), "holds regions") {
		t.Fatalf("other regions: %v", err)
	}
	// Another number of zones than the agents' data was made with is
	// refused by the agents' layout, naming it.
	zones := cfg
	zones.Zones = 3
	if err := startFails(t, withAgents(zones, agents)); !strings.Contains(err.Error(), "1 zone(s), not 3") {
		t.Fatalf("other zones: %v", err)
	}
	// So is the directory without --remote.
	local := cfg
	local.Remote = nil
	if err := startFails(t, local); !strings.Contains(err.Error(), "--remote") {
		t.Fatalf("without --remote: %v", err)
	}

	// Agents that hold a lab's data refuse a lab without it …
	temp := agentTiming
	if err := startFails(t, withAgents(temp, agents)); !strings.Contains(err.Error(), "belongs to lab") {
		t.Fatalf("a new lab on agents that belong to another: %v", err)
	}
	// … until they are reset; a lab without a data directory frees them.
	for r := range agents {
		_ = agents[r].Close()
		a, err := StartAgent(AgentConfig{Name: r, Listener: mustListen(t, agents[r].Addr()), Token: testToken, DataDir: agents[r].cfg.DataDir, Reset: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
		agents[r] = a
	}
	c3 := startOnAgents(t, temp, agents)
	if err := c3.Close(); err != nil {
		t.Fatal(err)
	}
	for r, a := range agents {
		if lab, _ := a.Lab(); lab != "" {
			t.Fatalf("agent %s still belongs to a lab that kept no data", r)
		}
		if hasRegionData(a.cfg.DataDir, r) {
			t.Fatalf("agent %s kept the data of a lab that kept none", r)
		}
	}
	c4 := startOnAgents(t, temp, agents)
	if err := put(t, c4, c4.Leader(), "k", "new lab", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func withAgents(cfg Config, agents map[string]*Agent) Config {
	cfg.Remote, cfg.Token = remoteOf(agents), testToken
	return cfg
}

// mustListen listens on addr again (an agent restarted on its port).
func mustListen(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	eventually(t, 5*time.Second, "listen on "+addr, func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	return ln
}

// An agent the lab loses keeps its region running with the last link
// table it was given, and the lab shows the region stale; when the agent
// answers again it gets the rules decided meanwhile.
func TestAgentKeepsItsLinkTableWhenTheLabIsLost(t *testing.T) {
	agents := startAgents(t, DefaultRegions...)
	c := startOnAgents(t, agentTiming, agents)
	lost := "ap-southeast-1"
	agents[lost].goDeaf(true)
	eventually(t, 10*time.Second, lost+" shown stale", func() bool { return regionStatus(c, lost).Stale })
	if st := regionStatus(c, lost); st.Role == RoleOffline {
		t.Fatalf("a stale region lost its last known state: %+v", st)
	}
	if err := c.Fabric().Cut("us-east-1", lost, false); err != nil {
		t.Fatal(err)
	}
	if !agents[lost].region().fabric.Up("us-east-1", lost) || agents["us-east-1"].region().fabric.Up("us-east-1", lost) {
		t.Fatal("the reachable agent did not take the cut, or the lost one changed its table")
	}
	agents[lost].goDeaf(false)
	eventually(t, 10*time.Second, lost+" back and given the cut", func() bool {
		return !regionStatus(c, lost).Stale && !agents[lost].region().fabric.Up("us-east-1", lost)
	})
	c.Fabric().HealAll()
	if err := put(t, c, lost, "k", "v", 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestAddedDelay(t *testing.T) {
	for _, tc := range []struct {
		rtt, scale, measured float64
		want                 time.Duration
		over                 bool
	}{
		{76, 1, 0, 38 * time.Millisecond, false},
		{76, 1, 20, 28 * time.Millisecond, false},
		{80, 0.5, 8, 16 * time.Millisecond, false},
		{76, 1, 76, 0, false},
		{76, 1, 81, 0, true},    // more than 1 ms and 5 % over
		{76, 1, 79.5, 0, false}, // within 5 %: noise
		{0, 0, 0.4, 0, false},   // within 1 ms
		{227, 0.1, 40, 0, true}, // a far host on a fast lab
		{227, 1, 200, 13500 * time.Microsecond, false},
	} {
		if got := addedDelay(tc.rtt, tc.scale, tc.measured); got != tc.want {
			t.Errorf("addedDelay(%v, %v, %v) = %v, want %v", tc.rtt, tc.scale, tc.measured, got, tc.want)
		}
		if got := overModel(tc.measured, tc.rtt*tc.scale); got != tc.over {
			t.Errorf("overModel(%v, %v) = %v, want %v", tc.measured, tc.rtt*tc.scale, got, tc.over)
		}
	}
}

// Regions not named in Remote run in the lab's own process, under agents
// of their own that the remote agents reach like any other.
func TestMixedLocalAndRemoteRegions(t *testing.T) {
	agents := startAgents(t, "eu-west-1", "ap-southeast-1")
	cfg := agentTiming
	cfg.DataDir = t.TempDir()
	c := startOnAgents(t, cfg, agents)
	local := regionStatus(c, "us-east-1")
	if !local.Up || local.Agent == "" || local.Agent == agents["eu-west-1"].Addr() {
		t.Fatalf("the lab's own region: %+v", local)
	}
	if err := put(t, c, "us-east-1", "k", "mixed", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	assertConverged(t, c, "k", "mixed")
	if err := c.Fabric().Isolate("us-east-1"); err != nil {
		t.Fatal(err)
	}
	if err := put(t, c, "us-east-1", "k", "alone", time.Second); err == nil {
		t.Fatal("the isolated local region committed a write")
	}
	if err := put(t, c, "eu-west-1", "k", "majority", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	c.Fabric().HealAll()
	assertConverged(t, c, "k", "majority")
}
