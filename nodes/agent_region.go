package nodes

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
)

// agentRegion is the region an agent runs for its lab: the region's
// servers (its consensus member, its replica, its zones' regional group),
// the peer proxy in front of its member, the relays into its servers for
// clients in other regions, and its copy of the link rules. It enforces
// every link into and out of its region exactly as a Cluster on one
// machine does (proxy.go): the proxy in front of the member sees both
// directions of every raft exchange with it, named by X-Server-From.
type agentRegion struct {
	a    *Agent
	self string
	dir  string

	specMu sync.Mutex
	spec   agentSpec

	fabric  *Fabric // links between regions; rules from the lab
	r       *region
	group   *regionalGroup
	proxy   *peerProxy
	tunnels *connListener               // raft connections tunnelled in by other agents
	relays  map[[2]string]*replicaProxy // (client region, server) → into this region's servers
	ids     map[types.ID]string         // consensus member ids → regions, from the layout
	keeper  *portKeeper                 // the host's loopback ports of every member (hostports.go)
	mesh    *mesh                       // round trips to the other agents (mesh.go)
	spliced connSet                     // client connections relayed on to another agent
	table   atomic.Uint64               // version of the link table in force
	started atomic.Bool                 // the servers were started since prepare
	closing sync.Once
}

// prepare lays the region out as the lab says, or checks that the data
// it holds was made for that layout.
func (a *Agent) prepare(spec *agentSpec) error {
	p := a.id.pin()
	if p == nil {
		return errors.New("prepare: this agent belongs to no lab")
	}
	if spec.Lab != p.lab || spec.Region != a.cfg.Name {
		return fmt.Errorf("prepare: the layout is for region %s of lab %s; this agent serves %s of lab %s", spec.Region, spec.Lab, a.cfg.Name, p.lab)
	}
	af, err := readAgentFile(a.cfg.DataDir)
	if err != nil {
		return err
	}
	have := hasRegionData(a.cfg.DataDir, a.cfg.Name)
	if af != nil && af.Spec != nil {
		if d := spec.sameLayout(af.Spec); d != "" && have {
			return fmt.Errorf("this agent's data was made for another layout: %s", d)
		}
		if spec.sameLayout(af.Spec) == "" {
			spec.ReplicaPeer = af.Spec.ReplicaPeer
		}
	} else if have {
		return fmt.Errorf("this agent's data directory holds data of region %s and no layout: start it with --reset", a.cfg.Name)
	}
	a.mu.Lock()
	reg := a.reg
	a.mu.Unlock()
	if reg != nil {
		if cur := reg.specCopy(); cur.sameLayout(spec) == "" {
			reg.setAgents(spec)
			return nil
		}
		if reg.started.Load() {
			return errors.New("prepare: the region runs with another layout")
		}
		a.mu.Lock()
		a.reg = nil
		a.mu.Unlock()
		reg.close() // a new lab picking other ports: lay out again
	}
	reg, err = newAgentRegion(a, *spec)
	if err != nil {
		return err
	}
	if err := writeAgentFile(a.cfg.DataDir, &agentFile{Version: AgentLayoutVersion, Region: a.cfg.Name, Spec: new(reg.specCopy())}); err != nil {
		reg.close()
		return fmt.Errorf("prepare: %w", err)
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		reg.close()
		return ErrClosed
	}
	a.reg = reg
	a.mu.Unlock()
	return nil
}

// hasRegionData reports whether the region's consensus member ever wrote
// data.
func hasRegionData(dir, region string) bool {
	_, err := os.Stat(filepath.Join(dir, region, "member"))
	return err == nil
}

// removeRegionData deletes the region's data and layout (a temporary lab
// left), keeping the agent's key.
func removeRegionData(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == "trust" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func newAgentRegion(a *Agent, spec agentSpec) (_ *agentRegion, err error) {
	self := a.cfg.Name
	ar := &agentRegion{a: a, self: self, dir: a.cfg.DataDir, spec: spec, relays: map[[2]string]*replicaProxy{}, ids: map[types.ID]string{}}
	defer func() {
		if err != nil {
			ar.close()
		}
	}()
	var names, initial []string
	selfPeer := ""
	for _, sr := range spec.Regions {
		if _, ok := Lookup(sr.Name); !ok {
			return nil, fmt.Errorf("prepare: region %q is not in the catalogue", sr.Name)
		}
		urls, err := types.NewURLs([]string{"http://" + sr.Peer})
		if err != nil {
			return nil, fmt.Errorf("prepare: %s's peer address %q: %w", sr.Name, sr.Peer, err)
		}
		ar.ids[membership.NewMember(sr.Name, urls, "caplab", nil).ID] = sr.Name
		names = append(names, sr.Name)
		initial = append(initial, sr.Name+"=http://"+sr.Peer)
		if sr.Name == self {
			selfPeer = sr.Peer
		}
	}
	if selfPeer == "" {
		return nil, fmt.Errorf("prepare: the layout has no region %s", self)
	}
	if err := checkZones(spec.Zones); err != nil {
		return nil, err
	}
	ar.fabric = newFabric(names, 0, nil)
	place, _ := Lookup(self)
	r := newRegion(place)
	r.dir, r.token, r.noFsync, r.zapLogger, r.log = ar.dir+"/"+self, "caplab", !spec.Fsync, a.zl, a.log
	if err := r.pickPorts(); err != nil {
		return nil, err
	}
	r.advertisePeer = selfPeer
	if ar.spec.ReplicaPeer == "" {
		ar.spec.ReplicaPeer = r.replicaPeer
	}
	r.replicaAdvertise = ar.spec.ReplicaPeer
	r.cluster = strings.Join(initial, ",")
	r.quiesce, r.repoint = ar.quiesce, ar.repoint
	ar.r = r
	go r.run()

	ar.tunnels = newConnListener(a.ln.Addr())
	ar.proxy = newPeerProxy(self, "", ar.tunnels, ar.fabric, ar.sender)
	ar.proxy.whoami = whoami(spec.Lab, self)
	go ar.proxy.serve()

	saved, err := loadZoneAddrs(ar.dir)
	if err != nil {
		return nil, err
	}
	if hasRegionData(ar.dir, self) {
		if err := checkZoneAddrs(ar.dir, saved, []string{self}, spec.Zones); err != nil {
			return nil, err
		}
	}
	if ar.group, err = newRegionalGroup(groupConfig{region: self, zones: spec.Zones, dir: ar.dir, fsync: spec.Fsync, zl: a.zl, log: a.log}, saved); err != nil {
		return nil, err
	}
	zones := map[string]*zoneMember{}
	for _, z := range ar.group.members {
		zones[z.name] = z
	}
	if err := saveZoneAddrs(ar.dir, zones); err != nil {
		return nil, err
	}
	for _, from := range names {
		for _, server := range ar.servers() {
			target := ""
			if z := zones[server]; z != nil {
				target = z.client
			}
			ar.relays[[2]string{from, server}] = newReplicaProxy(from, self, target, nil, ar.fabric)
		}
	}
	ar.keeper = newPortKeeper(ar)
	ar.mesh = newMesh(ar)
	return ar, nil
}

// servers names what clients may reach in this region: its member, its
// replica and its zones' members.
func (ar *agentRegion) servers() []string {
	out := []string{string(ServerMember), string(ServerReplica)}
	for i := range ar.spec.Zones {
		out = append(out, ZoneName(ar.self, i))
	}
	return out
}

func whoami(lab, region string) string { return "caplab " + lab + " " + region }

// whoamiPath is what an agent's peer proxy answers with whoami: another
// agent on the same host checks, by asking a loopback port it could not
// take, that a sibling of the same lab holds it (hostports.go).
const whoamiPath = "/caplab/whoami"

func (ar *agentRegion) specCopy() agentSpec {
	ar.specMu.Lock()
	defer ar.specMu.Unlock()
	s := ar.spec
	s.Regions = append([]specRegion(nil), s.Regions...)
	return s
}

// setAgents takes the agents' addresses of a new spec of the same layout.
func (ar *agentRegion) setAgents(spec *agentSpec) {
	ar.specMu.Lock()
	defer ar.specMu.Unlock()
	for i := range ar.spec.Regions {
		ar.spec.Regions[i].Agent = spec.Regions[i].Agent
	}
}

// agentAddr is where region's agent listens.
func (ar *agentRegion) agentAddr(region string) string {
	ar.specMu.Lock()
	defer ar.specMu.Unlock()
	return ar.spec.agentAddr(region)
}

// isAgent reports whether a certificate name is one of this lab's agents.
func (ar *agentRegion) isAgent(cn string) bool {
	region, ok := strings.CutPrefix(cn, agentCNPrefix)
	return ok && ar.fabric.checkRegion(region) == nil
}

func (ar *agentRegion) sender(hexID string) (string, bool) {
	id, err := types.IDFromString(hexID)
	if err != nil {
		return "", false
	}
	name, ok := ar.ids[id]
	return name, ok
}

func (ar *agentRegion) regionOf(id types.ID) string { return ar.ids[id] }

// dial reaches another agent of the lab for kind.
func (ar *agentRegion) dial(ctx context.Context, region, kind string, args ...string) (net.Conn, error) {
	p := ar.a.id.pin()
	if p == nil {
		return nil, errors.New("this agent belongs to no lab")
	}
	addr := ar.agentAddr(region)
	if addr == "" {
		return nil, fmt.Errorf("no agent for region %s", region)
	}
	return dialAgent(ctx, addr, ar.a.id.clientConfig(p), p.pool, region, kind, args...)
}

// quiesce points everything into the region's member and replica at
// nothing and ends what is in flight (their servers are stopping).
func (ar *agentRegion) quiesce(*region) {
	ar.proxy.setTarget("")
	ar.proxy.dropAll()
	for k, p := range ar.relays {
		if k[1] == string(ServerMember) || k[1] == string(ServerReplica) {
			p.setTarget("")
			p.dropAll()
		}
	}
}

// repoint points the proxy and the relays at the servers' ports.
func (ar *agentRegion) repoint(r *region) {
	r.mu.Lock()
	memberPeer, memberClient, replicaClient := r.memberPeer, r.memberClient, r.replicaClient
	r.mu.Unlock()
	ar.proxy.setTarget(memberPeer)
	for k, p := range ar.relays {
		switch k[1] {
		case string(ServerMember):
			p.setTarget(memberClient)
		case string(ServerReplica):
			p.setTarget(replicaClient)
		}
	}
}

// zoneMoved points the relays into a zone's member at its new port.
func (ar *agentRegion) zoneMoved(z *zoneMember) {
	for k, p := range ar.relays {
		if k[1] == z.name {
			p.setTarget(z.client)
		}
	}
}

// dropZone ends every relayed connection into a zone's member.
func (ar *agentRegion) dropZone(zone string) {
	for k, p := range ar.relays {
		if k[1] == zone {
			p.dropAll()
		}
	}
}

// applyTable puts a lab's link rules in force.
func (ar *agentRegion) applyTable(t *linkTable) {
	for _, rule := range t.Links {
		if l := ar.fabric.link(rule.From, rule.To); l != nil {
			l.setRule(rule)
		}
	}
	for _, rule := range t.Zone {
		if l := ar.group.fabric.link(rule.From, rule.To); l != nil {
			l.setRule(rule)
		}
	}
	ar.table.Store(t.Version)
}

// start starts whatever of the region is not running: the member and the
// replica, then the zones' members (a restart repairs).
func (ar *agentRegion) start(o startOrder) error {
	if o.TickMs == 0 || o.ElectionMs < 5*o.TickMs {
		return fmt.Errorf("start: timing %d/%d ms is not valid", o.TickMs, o.ElectionMs)
	}
	ar.r.mu.Lock()
	ar.r.tickMs, ar.r.elecMs = o.TickMs, o.ElectionMs
	ar.r.mu.Unlock()
	err := ar.r.do(opStart)
	if err != nil && !errors.Is(err, ErrRegionUp) {
		return err
	}
	regionUp := errors.Is(err, ErrRegionUp)
	zerr := ar.group.restartDown(ar.zoneMoved)
	ar.started.Store(true)
	if zerr != nil {
		return zerr
	}
	if regionUp && !o.Hurry {
		return fmt.Errorf("nodes: restart %s: %w", ar.self, ErrRegionUp)
	}
	if o.Hurry {
		go ar.hurry(o)
	}
	return nil
}

// crash stops the region's servers and zones abruptly.
func (ar *agentRegion) crash() error {
	if err := ar.r.do(opCrash); err != nil {
		return err
	}
	ar.group.crashAll(ar.dropZone)
	return nil
}

func (ar *agentRegion) zone(name string) (*zoneMember, error) {
	for _, z := range ar.group.members {
		if z.name == name {
			return z, nil
		}
	}
	return nil, fmt.Errorf("%w: %s is not a zone of %s", ErrBadOperation, name, ar.self)
}

func (ar *agentRegion) crashZone(name string) error {
	z, err := ar.zone(name)
	if err != nil {
		return err
	}
	if !ar.r.up() {
		return fmt.Errorf("nodes: crash %s: its region %s is down: %w", name, ar.self, ErrRegionDown)
	}
	e := ar.group.crashMember(z, ar.dropZone)
	if e == nil {
		return fmt.Errorf("nodes: crash %s: zone is down: %w", name, ErrRegionDown)
	}
	e.Close()
	return nil
}

func (ar *agentRegion) startZone(name string) error {
	z, err := ar.zone(name)
	if err != nil {
		return err
	}
	if !ar.r.up() {
		return fmt.Errorf("nodes: restart %s: its region %s is down (restart the region): %w", name, ar.self, ErrRegionDown)
	}
	if err := ar.group.restartMember(z, ar.zoneMoved); err != nil {
		return err
	}
	ar.group.learn(z)
	return nil
}

// kick ends every raft exchange through the region's proxies: etcd dials
// its streams again (see Cluster.waitReady).
func (ar *agentRegion) kick() {
	ar.proxy.dropAll()
	for _, p := range ar.group.proxies {
		p.dropAll()
	}
}

// close stops everything: the servers (abruptly), the proxies, the relays,
// the host's ports and the pings. Safe to call twice.
func (ar *agentRegion) close() {
	ar.closing.Do(func() {
		if ar.mesh != nil {
			ar.mesh.close()
		}
		if ar.keeper != nil {
			ar.keeper.close()
		}
		if ar.r != nil {
			_ = ar.r.do(opStop)
		}
		if ar.group != nil {
			ar.group.stop()
		}
		if ar.fabric != nil {
			ar.fabric.closeAll()
		}
		if ar.proxy != nil {
			ar.proxy.close()
		} else if ar.tunnels != nil {
			_ = ar.tunnels.Close()
		}
		for _, p := range ar.relays {
			p.close()
		}
		ar.spliced.closeAll()
	})
}

// status is what the agent reports of its region.
func (ar *agentRegion) status(boot string) *agentStatus {
	st := &agentStatus{Boot: boot, Table: ar.table.Load(), Prepared: true, Ports: ar.keeper.states(), Peers: ar.mesh.states()}
	st.Region = ar.r.status(ar.regionOf)
	m, rep := ar.r.servers()
	if running(rep) {
		select {
		case <-rep.Server.ReadyNotify():
			st.ReplicaReady = true
		default:
		}
	}
	if running(m) {
		st.MemberID = uint64(m.Server.MemberID())
	}
	for _, z := range ar.group.members {
		st.Zones = append(st.Zones, z.status(ar.group.zoneOf))
	}
	for _, l := range ar.group.fabric.Links() {
		st.ZoneLinks = append(st.ZoneLinks, linkCount{From: l.From, To: l.To, Bytes: l.Bytes, Messages: l.Messages})
	}
	for _, l := range ar.fabric.Links() {
		if l.From != ar.self && l.To != ar.self {
			continue
		}
		st.Links = append(st.Links, linkCount{From: l.From, To: l.To, Bytes: l.Bytes, Messages: l.Messages,
			Fresh: ar.fabric.link(l.From, l.To).freshStreams()})
	}
	return st
}

// serveClient carries a client connection into one of this region's
// servers — across the links between the client's region and this one —
// or, for the lab standing in this region, on to another region's agent.
func (ar *agentRegion) serveClient(tc net.Conn, cn, from, to, server string) {
	refuse := func(err error) { // a cut link or a server down: what a client expects to meet
		ar.a.log.Debug("refused a client connection", "from", tc.RemoteAddr(), "err", err)
		_ = answer(tc, err)
		_ = tc.Close()
	}
	if cn != labCommonName && cn != agentCNPrefix+from {
		ar.a.log.Warn("refused a client connection", "from", tc.RemoteAddr(), "err", "not allowed to stand in "+from, "certificate", cn)
		refuse(fmt.Errorf("%s may not stand in region %s", cn, from))
		return
	}
	if to != ar.self {
		if cn != labCommonName || from != ar.self {
			ar.a.log.Warn("refused a client connection", "from", tc.RemoteAddr(), "err", "only the lab may relay", "certificate", cn)
			refuse(errors.New("only the lab may ask an agent to reach another region for it"))
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), tunnelDialTimeout)
		up, err := ar.dial(ctx, to, kindClient, from, to, server)
		cancel()
		if err != nil {
			refuse(err)
			return
		}
		if err := answer(tc, nil); err != nil {
			_ = up.Close()
			_ = tc.Close()
			return
		}
		if !ar.spliced.add(tc, up) {
			return
		}
		splice(tc, up)
		ar.spliced.remove(tc, up)
		return
	}
	p := ar.relays[[2]string{from, server}]
	switch {
	case p == nil:
		refuse(fmt.Errorf("%w: %s has no server %q for clients in %q", ErrBadOperation, ar.self, server, from))
	case p.target.Load().(string) == "":
		refuse(fmt.Errorf("%s's %s is down", ar.self, server))
	case from != ar.self && !(ar.fabric.Up(from, ar.self) && ar.fabric.Up(ar.self, from)):
		refuse(fmt.Errorf("the link between %s and %s is cut", from, ar.self))
	default:
		if answer(tc, nil) != nil {
			_ = tc.Close()
			return
		}
		p.accept(tc)
	}
}

// hurry is hurryFirstElection for one region's servers (election.go): on
// new data, its replica campaigns at once, and so does its member if it
// is the first candidate, until each has campaigned or knows a leader.
func (ar *agentRegion) hurry(o startOrder) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Duration(o.ElectionMs)*time.Millisecond)
	defer cancel()
	go func() {
		select {
		case <-ar.a.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var other uint64 // another member of the consensus group: the request's sender
	for id, name := range ar.ids {
		if name != ar.self || len(ar.ids) == 1 {
			other = uint64(id)
			break
		}
	}
	hurryServers(ctx, func() []hurried {
		m, rep := ar.r.servers()
		h := []hurried{{e: rep, from: 0}}
		if o.Candidate {
			h = append(h, hurried{e: m, from: other})
		}
		return h
	})
}
