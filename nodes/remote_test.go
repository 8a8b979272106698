package nodes

import (
	"context"
	"net"
	"testing"
	"time"
)

const testToken = "remote-test-token"

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

// startRemote starts a lab on the agents.
func startRemote(t *testing.T, cfg Config, agents map[string]*Agent) *Cluster {
	t.Helper()
	cfg.Remote, cfg.Token = remoteOf(agents), testToken
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
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

func TestRegionsOnAgents(t *testing.T) {
	agents := startAgents(t, DefaultRegions...)
	c := startRemote(t, Config{LatencyScale: 0, TickMs: 50, ElectionMs: 500, Zones: 1}, agents)
	leader := c.Leader()
	if err := put(t, c, leader, "k", "v", 5*time.Second); err != nil {
		t.Fatalf("put on %s: %v", leader, err)
	}
	for _, r := range c.Regions() {
		cli, _ := c.MemberClient(r)
		resp, err := cli.Get(ctxFor(t, 5*time.Second), "k")
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get on %s: %v %v", r, resp, err)
		}
	}
	st := c.State()
	for _, r := range st.Regions {
		if !r.Up || r.Agent == "" || r.Stale {
			t.Fatalf("region %s: %+v", r.Name, r)
		}
	}
	eventually(t, 10*time.Second, "traffic on every link", func() bool {
		for _, l := range c.State().Links {
			if l.Messages == 0 {
				return false
			}
		}
		return true
	})
	for _, l := range c.State().Links {
		t.Logf("%+v", l)
	}
	_ = net.IPv4len
}
