package nodes

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A lab whose regions run under agents (Config.Remote): how it starts.

// remoteSet is everything a Cluster keeps of its agents.
type remoteSet struct {
	c         *Cluster
	id        *labIdentity
	tlsConfig *tls.Config // the lab's, for every connection to an agent
	key       []byte      // the token's proof key
	version   buildVersion
	temporary bool // the lab keeps no data: its agents forget it when it leaves
	fresh     bool // new data: the regions are made, not resumed
	log       *slog.Logger

	links map[string]*agentLink
	order []*agentLink // in region order
	local []*Agent     // agents of the regions this process runs itself
	peers map[string]string

	pushMu sync.Mutex    // one link table at a time, in order
	table  atomic.Uint64 // version of the newest link table

	// through holds the lab's clients by the region whose agent their
	// path starts at, so that an agent found again redials them at once
	// (redial) instead of after gRPC's connect backoff.
	throughMu sync.Mutex
	through   map[string][]*clientv3.Client

	closing atomic.Bool // close has begun: no agent is called again
	stop    chan struct{}
	bg      sync.WaitGroup
}

// startRemote starts a lab whose regions run under agents: it takes
// every agent (enrolling new ones), lays their regions out, checks that
// every agent reaches every other, measures the round trips, puts the
// link rules in force and starts the servers, one region after another.
func (c *Cluster) startRemote(ctx context.Context, lay *layout) (err error) {
	rs := &remoteSet{c: c, key: tokenKey(c.cfg.Token), version: thisVersion(), temporary: c.tempDir, fresh: lay == nil,
		log: c.log, links: map[string]*agentLink{}, stop: make(chan struct{})}
	rs.table.Store(uint64(time.Now().UnixNano())) // newer than any table of an earlier run
	c.remote = rs
	if rs.id, err = loadLabIdentity(c.dir); err != nil {
		return err
	}
	defer func() {
		if err != nil && rs.fresh {
			// A new lab that did not start leaves nothing: its agents
			// (told by Close) forget it and its regions' data, and its
			// directory is as it was.
			rs.temporary = true
			_ = os.RemoveAll(filepath.Join(c.dir, "trust"))
			_ = os.Remove(filepath.Join(c.dir, LayoutFile))
		}
	}()
	rs.tlsConfig = rs.id.clientConfig()
	c.fabric.push = rs.push
	c.zones = rs.zoneSkeleton()
	addrs, err := rs.startLocalAgents()
	if err != nil {
		return err
	}
	for _, name := range c.cfg.Regions {
		l := &agentLink{rs: rs, region: name, addr: addrs[name], base: map[[2]string]linkCount{}, zbase: map[[2]string]linkCount{}, since: time.Now()}
		rs.links[name] = l
		rs.order = append(rs.order, l)
	}
	if err := rs.takeAll(ctx, lay); err != nil {
		return err
	}
	if err := rs.layOut(ctx, lay); err != nil {
		return err
	}
	rs.measure()
	if !c.cfg.timingSet {
		c.cfg.TickMs, c.cfg.ElectionMs = rs.timing()
	}
	rs.push()
	candidate := firstCandidate(c.cfg.Regions)
	for _, l := range rs.order { // one after another (ETCD-NOTES)
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := l.conn().call(sctx, &message{Op: ctlStart, Start: rs.startOrder(rs.fresh, l.region == candidate)})
		cancel()
		if err != nil {
			return fmt.Errorf("nodes: the agent of %s at %s could not start its region: %w", l.region, l.addr, err)
		}
		l.mu.Lock()
		l.wantUp, l.started = true, true
		l.mu.Unlock()
	}
	if err := rs.waitReady(ctx); err != nil {
		return err
	}
	if err := rs.openClients(); err != nil {
		return err
	}
	for _, l := range rs.order {
		rs.bg.Add(1)
		go l.supervise()
	}
	rs.bg.Add(1)
	go rs.measureLoop()
	c.observer.Add(1)
	go c.observe()
	c.log.Info("regions ready on their agents", "regions", c.cfg.Regions, "tickMs", c.cfg.TickMs, "electionMs", c.cfg.ElectionMs, "dir", c.dir, "resumed", c.resumed)
	return nil
}

// startLocalAgents starts an agent in this process for every region not
// named in Config.Remote, and returns every region's agent address.
func (rs *remoteSet) startLocalAgents() (map[string]string, error) {
	c := rs.c
	addrs := map[string]string{}
	var local []string
	for _, r := range c.cfg.Regions {
		if a, ok := c.cfg.Remote[r]; ok {
			addrs[r] = a
		} else {
			local = append(local, r)
		}
	}
	if len(local) == 0 {
		return addrs, nil
	}
	host, port := "", 0
	if c.cfg.RegionListen != "" {
		h, p, _ := net.SplitHostPort(c.cfg.RegionListen)
		host = h
		port, _ = strconv.Atoi(p)
	}
	advertise := host
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		var first string
		for _, r := range c.cfg.Regions {
			if a, ok := c.cfg.Remote[r]; ok {
				first = a
				break
			}
		}
		advertise = outboundIP(first)
		if host == "" {
			host = advertise
		}
	}
	for i, r := range local {
		p := 0
		if port != 0 {
			p = port + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			return nil, fmt.Errorf("nodes: region %s runs in this process and cannot listen for the agents: %w (give --region-listen)", r, err)
		}
		a, err := StartAgent(AgentConfig{Name: r, Token: c.cfg.Token, DataDir: c.dir + "/agent-" + r, Logger: c.log, EtcdLogLevel: c.cfg.EtcdLogLevel, Listener: ln})
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		rs.local = append(rs.local, a)
		_, ap, _ := net.SplitHostPort(ln.Addr().String())
		addrs[r] = net.JoinHostPort(advertise, ap)
	}
	return addrs, nil
}

// outboundIP is this host's address on the way to addr (no packet is
// sent): where agents on other hosts reach the regions it runs itself.
func outboundIP(addr string) string {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "127.0.0.1"
	}
	defer c.Close()
	host, _, _ := net.SplitHostPort(c.LocalAddr().String())
	return host
}

// takeAll connects to every agent at once, retrying for a few seconds an
// agent whose port is not open yet, and checks it belongs here: a new lab
// takes agents that belong to no lab — only once every agent passed, so a
// lab refused by one leaves the others free; a resumed one needs its own,
// with the data of its layout.
func (rs *remoteSet) takeAll(ctx context.Context, lay *layout) error {
	errs := make([]error, len(rs.order))
	hellos := make([]*hello, len(rs.order))
	var wg sync.WaitGroup
	for i, l := range rs.order {
		wg.Go(func() { hellos[i], errs[i] = rs.take(ctx, l, lay) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, l := range rs.order {
			if cc := l.conn(); cc != nil {
				cc.close()
			}
			l.mu.Lock()
			l.cc = nil
			l.mu.Unlock()
		}
		return fmt.Errorf("nodes: %w", err)
	}
	if !rs.fresh {
		return nil
	}
	for i, l := range rs.order {
		wg.Go(func() { errs[i] = rs.enroll(ctx, l, l.conn(), hellos[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	return nil
}

func (rs *remoteSet) take(ctx context.Context, l *agentLink, lay *layout) (*hello, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*tunnelDialTimeout)
		cc, h, err := rs.connect(cctx, l)
		cancel()
		if err != nil {
			if refusedConn(err) && time.Now().Before(deadline) && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			if refusedConn(err) {
				err = fmt.Errorf("%w (is \"caplab region --name %s --listen %s\" running there?)", err, l.region, l.addr)
			}
			return nil, err
		}
		fail := func(err error) (*hello, error) {
			cc.close()
			return nil, err
		}
		switch {
		case rs.fresh && h.Lab == "":
		case rs.fresh:
			return fail(fmt.Errorf("the agent of %s at %s already belongs to this lab, whose data directory is new", l.region, l.addr))
		case h.Lab == "":
			return fail(fmt.Errorf("the agent of %s at %s holds no data of this lab (it belongs to no lab): its region cannot rejoin its group; start it with the data directory it had, or start a new lab", l.region, l.addr))
		case h.Spec == nil:
			return fail(fmt.Errorf("the agent of %s at %s belongs to this lab but holds no data of its region", l.region, l.addr))
		default:
			if d := rs.specFor(l.region, lay).sameLayout(h.Spec); d != "" {
				return fail(fmt.Errorf("the agent of %s at %s holds data of another layout: %s", l.region, l.addr, d))
			}
		}
		l.mu.Lock()
		l.cc = cc
		l.mu.Unlock()
		return h, nil
	}
}

// layOut sends every agent its region's layout and waits until each
// holds (or shares) every member's loopback port and reaches every other
// agent. A new lab picks the ports, and picks again any another program
// holds on some host.
func (rs *remoteSet) layOut(ctx context.Context, lay *layout) error {
	c := rs.c
	if lay != nil {
		rs.peers = map[string]string{}
		for _, r := range lay.Regions {
			rs.peers[r.Name] = r.MemberPeer
		}
	} else {
		rs.peers = pickPeerPorts(c.cfg.Regions, nil)
	}
	for round := 0; ; round++ {
		if err := rs.prepareAll(ctx); err != nil {
			return err
		}
		held, err := rs.awaitLayout(ctx)
		if err != nil {
			return err
		}
		if len(held) == 0 {
			break
		}
		if !rs.fresh || round >= 5 {
			var why []string
			for r, d := range held {
				why = append(why, fmt.Sprintf("%s's port %s: %s", r, rs.peers[r], d))
			}
			slices.Sort(why)
			return fmt.Errorf("nodes: a member's address is taken on a host (%s): stop what holds it, or start a new lab", strings.Join(why, "; "))
		}
		var again []string
		for r := range held {
			again = append(again, r)
		}
		rs.peers = pickPeerPorts(c.cfg.Regions, rs.peers, again...)
	}
	lay = &layout{Version: RemoteLayoutVersion, Lab: rs.id.id, Zones: c.cfg.Zones, Remote: map[string]string{}}
	for _, l := range rs.order {
		lay.Regions = append(lay.Regions, layoutRegion{Name: l.region, MemberPeer: rs.peers[l.region]})
		lay.Remote[l.region] = l.addr
	}
	if err := writeLayout(c.dir, lay); err != nil {
		return fmt.Errorf("nodes: data dir: %w", err)
	}
	return nil
}

// pickPeerPorts chooses loopback ports for the members (below the
// ephemeral range, as freePort): new ones for the regions in again, or
// for every region when have is nil.
func pickPeerPorts(regions []string, have map[string]string, again ...string) map[string]string {
	out := map[string]string{}
	used := map[string]bool{}
	for r, p := range have {
		if !slices.Contains(again, r) {
			out[r] = p
			used[p] = true
		}
	}
	lo, _ := ephemeralRange()
	base := max(1024, lo-12000)
	for _, r := range regions {
		if out[r] != "" {
			continue
		}
		for {
			p := "127.0.0.1:" + strconv.Itoa(base+rand.IntN(lo-base))
			if !used[p] && p != have[r] {
				out[r], used[p] = p, true
				break
			}
		}
	}
	return out
}

// specFor is region's layout as this lab has it.
func (rs *remoteSet) specFor(region string, lay *layout) *agentSpec {
	s := &agentSpec{Lab: rs.id.id, Region: region, Zones: rs.c.cfg.Zones, Fsync: rs.c.cfg.Fsync, Temporary: rs.temporary}
	peers := rs.peers
	if peers == nil && lay != nil {
		peers = map[string]string{}
		for _, r := range lay.Regions {
			peers[r.Name] = r.MemberPeer
		}
	}
	for _, l := range rs.order {
		s.Regions = append(s.Regions, specRegion{Name: l.region, Peer: peers[l.region], Agent: l.addr})
	}
	return s
}

func (rs *remoteSet) prepareAll(ctx context.Context) error {
	errs := make([]error, len(rs.order))
	var wg sync.WaitGroup
	for i, l := range rs.order {
		wg.Go(func() { errs[i] = rs.prepare(ctx, l, l.conn()) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	return nil
}

func (rs *remoteSet) prepare(ctx context.Context, l *agentLink, cc *ctlConn) error {
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := cc.call(pctx, &message{Op: ctlPrepare, Spec: rs.specFor(l.region, nil)}); err != nil {
		return fmt.Errorf("the agent of %s at %s cannot lay its region out: %w", l.region, l.addr, err)
	}
	return nil
}

// awaitLayout waits until every agent serves or shares every port and has
// measured every other agent; it returns the ports another program holds.
func (rs *remoteSet) awaitLayout(ctx context.Context) (held map[string]string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		held = map[string]string{}
		var waiting []string
		for _, l := range rs.order {
			st := l.lastStatus()
			if st == nil || !st.Prepared {
				waiting = append(waiting, fmt.Sprintf("%s's agent has not reported its layout", l.region))
				continue
			}
			for _, p := range st.Ports {
				switch p.State {
				case portHeld:
					held[p.Region] = fmt.Sprintf("on %s's host: %s", l.region, p.Detail)
				case portPending:
					waiting = append(waiting, fmt.Sprintf("%s's agent: %s's port %s: %s", l.region, p.Region, p.Addr, p.Detail))
				}
			}
			for _, p := range st.Peers {
				if p.Samples == 0 {
					waiting = append(waiting, fmt.Sprintf("%s's agent at %s has not reached %s's agent at %s: %s", l.region, l.addr, p.Region, rs.links[p.Region].addr, p.Err))
				}
			}
		}
		if len(held) > 0 || len(waiting) == 0 {
			return held, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("nodes: the agents are not ready to form the lab: %s", strings.Join(waiting, "; "))
		case <-t.C:
		}
	}
}

// timing derives the raft timing from the round trips the links will
// have: the model's, or the measured one where the hosts are farther
// apart (DeriveTiming).
func (rs *remoteSet) timing() (tick, election uint) {
	maxRTT := 0.0
	for _, l := range rs.c.fabric.Links() {
		maxRTT = max(maxRTT, l.RTTMs*rs.c.cfg.LatencyScale, l.MeasuredRTTMs)
	}
	tick = uint(math.Max(MinTickMs, math.Ceil(maxRTT/2)))
	return tick, 10 * tick
}

func (rs *remoteSet) startOrder(hurry, candidate bool) *startOrder {
	return &startOrder{TickMs: rs.c.cfg.TickMs, ElectionMs: rs.c.cfg.ElectionMs, Hurry: hurry, Candidate: candidate}
}

// waitReady waits until every region's member and replica and every zone
// is ready, dialling the members' streams again if one is slow
// (Cluster.waitReady).
func (rs *remoteSet) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, rs.c.cfg.ReadyTimeout)
	defer cancel()
	start := time.Now()
	kick := time.NewTicker(max(5*time.Second, 10*time.Duration(rs.c.cfg.ElectionMs)*time.Millisecond))
	defer kick.Stop()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		var waiting []string
		for _, l := range rs.order {
			st := l.lastStatus()
			switch {
			case st == nil || !st.Region.Ready:
				s := RegionStatus{}
				if st != nil {
					s = st.Region
				}
				waiting = append(waiting, fmt.Sprintf("%s member (term %d, leader %q)", l.region, s.Term, s.Leader))
			case !st.ReplicaReady:
				waiting = append(waiting, l.region+" replica")
			default:
				for _, z := range st.Zones {
					if !z.Ready {
						waiting = append(waiting, "zone "+z.Name)
					}
				}
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes: not ready after %s: %s: %w", time.Since(start).Round(time.Millisecond), strings.Join(waiting, ", "), ctx.Err())
		case <-kick.C:
			rs.log.Warn("a server is slow to become ready: reconnecting the members' streams", "waiting", strings.Join(waiting, ", "))
			rs.kickAll()
		case <-t.C:
		}
	}
}

// kickAll asks every agent to drop its raft exchanges: etcd dials its
// streams again.
func (rs *remoteSet) kickAll() {
	for _, l := range rs.order {
		if cc := l.conn(); cc != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = cc.call(ctx, &message{Op: ctlKick})
			cancel()
		}
	}
}
