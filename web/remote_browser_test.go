package web

import (
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/nodes"
)

// On a lab whose regions run under agents (here three in this process),
// the map labels every link with its measured round trip beside the
// model's, and an agent stopped is its region crashed on the page; started
// again, the region comes back.
func TestMapOnAgents(t *testing.T) {
	exe := chromiumPath(t)
	const token = "agents-browser-token"
	agents := map[string]*nodes.Agent{}
	remote := map[string]string{}
	dirs := map[string]string{}
	for _, r := range nodes.DefaultRegions {
		dirs[r] = t.TempDir()
		a, err := nodes.StartAgent(nodes.AgentConfig{Name: r, Listen: "127.0.0.1:0", Token: token, DataDir: dirs[r]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = agents[r].Close() })
		agents[r], remote[r] = a, a.Addr()
	}
	l := startLab(t, lab.Config{LatencyScale: 0.05, Zones: 1, Remote: remote, Token: token})
	s := New(l, Options{Token: testToken, Logger: quietLogger()})
	t.Cleanup(s.Close)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	b := &browserLab{apiFixture: &apiFixture{lab: l, srv: srv, s: s}, url: srv.URL, browser: startChromium(t, exe, 1280, 720)}
	tab := b.presenterTab(t, "")

	labels := `[...document.querySelectorAll('#links .link')].map((g) => document.getElementById(g.id + '-label').textContent).join(' | ')`
	waitJS(t, tab, "every link labelled with its measured round trip", labels, func(s string) bool {
		return strings.Count(s, "measured") == 3
	})
	if tip := evalJS[string](t, tab, `document.getElementById('region-eu-west-1-tip').textContent`); !strings.Contains(tip, "on its agent at "+remote["eu-west-1"]) {
		t.Errorf("Ireland's tip does not say where it runs: %q", tip)
	}

	stopped := "ap-southeast-1"
	_ = agents[stopped].Close()
	role := `document.getElementById('region-` + stopped + `-role').textContent`
	waitJS(t, tab, "the stopped agent's region crashed on the map", role, textHas("crashed"))

	var ln net.Listener
	waitUntil(t, 10*time.Second, "the agent's port free again", func() (bool, string) {
		var err error
		ln, err = net.Listen("tcp", remote[stopped])
		return err == nil, "listen"
	})
	a, err := nodes.StartAgent(nodes.AgentConfig{Name: stopped, Listener: ln, Token: token, DataDir: dirs[stopped]})
	if err != nil {
		t.Fatal(err)
	}
	agents[stopped] = a
	waitJS(t, tab, "the region back, resumed from its data", role, func(s string) bool {
		return s == "follower" || s == "♛ leader"
	})
}
