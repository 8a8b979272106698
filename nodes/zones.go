package nodes

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Zones: every region has up to three availability zones (us-east-1a/b/c)
// and a regional Raft group of one etcd member per zone — the geo store's
// home. The zones of one region talk over links of their own small fabric
// (one Fabric per region, whose "regions" are the zones), so a zone link
// is cut, delayed and counted like any other link; the fabric between
// regions never carries intra-region traffic, so cutting a region off the
// world leaves its regional group whole.
//
// A gateway in region R reaches its own group directly (RegionalClient(R,
// R)); a gateway in R reaches region S's group through one TCP proxy per
// (R, S, zone of S) on the region fabric's links R→S and S→R, like the
// replicated store's traffic.

// DefaultZones is how many zones a region has unless Config.Zones says.
const DefaultZones = 3

// MaxZones bounds Config.Zones.
const MaxZones = 3

// zoneRTTMs is the round trip between two zones of one region at latency
// scale 1: AWS documents "single-digit millisecond" latency between the
// zones of a region; measured pings between zones are about 1–2 ms
// (neighbouring zones ≈ 1.2 ms, the farthest pair ≈ 1.8 ms). These are
// representative figures, the same for every region.
func zoneRTTMs(i, j int) float64 {
	d := i - j
	if d < 0 {
		d = -d
	}
	if d <= 1 {
		return 1.2
	}
	return 1.8
}

// Regional group Raft timing: the zones are a millisecond or two apart, so
// etcd's guide would allow a heartbeat of a few ms; the machine is shared
// and a starved process must not trigger elections, so the heartbeat is
// 30 ms and the election timeout 300 ms: a crashed leader zone costs its
// region 0.3–0.6 s of writes.
const (
	zoneTickMs     = 30
	zoneElectionMs = 300
)

// zoneIndex is a zone's position in its region (a = 0).
func zoneIndex(zone string) int { return int(zone[len(zone)-1] - 'a') }

// ZoneName is the name of zone i (0-based) of a region: us-east-1a.
func ZoneName(region string, i int) string { return region + string(rune('a'+i)) }

// ZoneStatus is one zone's member of its regional group in a Snapshot.
type ZoneStatus struct {
	Name, Region string
	Up           bool
	Ready        bool
	Role         Role
	Term         uint64
	Leader       string // zone the member believes leads its group; "" for none
	CommitIndex  uint64
	AppliedIndex uint64
	Revision     int64
}

type zoneSet struct {
	n        int
	groups   []*regionalGroup
	byRegion map[string]*regionalGroup
	byZone   map[string]*zoneMember

	remote        map[[2]string]*clientv3.Client // (from, to) → a client in from of to's group
	remoteZone    map[[2]string]*clientv3.Client // (from, zone) → a client in from of one zone's member
	remoteProxies map[[3]string]*replicaProxy    // (from, to, zone of to)

	startErr chan error // one per group
	starting sync.WaitGroup
}

type regionalGroup struct {
	region  string
	bypass  bool // members advertise their own peer listeners
	fabric  *Fabric
	members []*zoneMember
	proxies []*peerProxy       // parallel to members; empty when the fabric is bypassed
	client  *clientv3.Client   // every zone's member an endpoint
	zoneCli []*clientv3.Client // one per member (parallel to members)

	idMu     sync.RWMutex
	idToZone map[types.ID]string
}

type zoneMember struct {
	name, region string
	index        int
	dir          string
	peer, client string // real listeners
	advertise    string // the proxy in front of the peer listener, unless bypassed
	cluster      string
	noFsync      bool
	zl           *zap.Logger
	log          *slog.Logger // the cluster's logger

	mu       sync.Mutex
	etcd     *embed.Etcd
	termSeen uint64
}

func (z *zoneMember) config() *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = z.name
	cfg.Dir = z.dir
	cfg.ListenPeerUrls = []url.URL{mustURL(z.peer)}
	cfg.AdvertisePeerUrls = []url.URL{mustURL(z.advertise)}
	cfg.ListenClientUrls = []url.URL{mustURL(z.client)}
	cfg.AdvertiseClientUrls = []url.URL{mustURL(z.client)}
	cfg.InitialCluster = z.cluster
	cfg.InitialClusterToken = "caplab-" + z.region
	cfg.ClusterState = embed.ClusterStateFlagNew
	cfg.TickMs = zoneTickMs
	cfg.ElectionMs = zoneElectionMs
	cfg.UnsafeNoFsync = z.noFsync
	cfg.PreVote = true
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(z.zl.Named(z.name))
	boundStorage(cfg) // compaction, snapshots and small WAL files, as the regions' servers
	return cfg
}

func (z *zoneMember) start() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.etcd != nil {
		return fmt.Errorf("nodes: restart %s: zone is already running: %w", z.name, ErrRegionUp)
	}
	e, err := startGated(z.config(), z.log)
	if err != nil {
		return fmt.Errorf("nodes: start zone %s: %w", z.name, err)
	}
	z.etcd = e
	z.termSeen = e.Server.Term()
	return nil
}

func (z *zoneMember) server() *embed.Etcd {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.etcd
}

func (z *zoneMember) pickPorts() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, p := range []*string{&z.peer, &z.client} {
		var err error
		if *p, err = freePort(); err != nil {
			return fmt.Errorf("nodes: ports: %w", err)
		}
	}
	return nil
}

// hardStop crashes the zone's member; false if it was not running.
func (z *zoneMember) hardStop() *embed.Etcd {
	z.mu.Lock()
	e := z.etcd
	z.etcd = nil
	z.mu.Unlock()
	if e != nil {
		e.Server.HardStop()
	}
	return e
}

func (z *zoneMember) status(zoneOf func(types.ID) string) ZoneStatus {
	z.mu.Lock()
	defer z.mu.Unlock()
	st := ZoneStatus{Name: z.name, Region: z.region, Role: RoleOffline}
	if z.etcd == nil {
		return st
	}
	s := z.etcd.Server
	st.Up = true
	select {
	case <-s.ReadyNotify():
		st.Ready = true
	default:
	}
	st.Term = s.Term()
	st.CommitIndex = s.CommittedIndex()
	st.AppliedIndex = s.AppliedIndex()
	st.Revision = s.KV().Rev()
	lead := s.Leader()
	switch {
	case lead == 0 && st.Term > z.termSeen:
		st.Role = RoleCandidate
	case lead == 0:
		st.Role = RolePreCandidate
	case lead == s.MemberID():
		st.Role, st.Leader, z.termSeen = RoleLeader, z.name, st.Term
	default:
		st.Role, st.Leader, z.termSeen = RoleFollower, zoneOf(lead), st.Term
	}
	return st
}

func (g *regionalGroup) zoneOf(id types.ID) string {
	g.idMu.RLock()
	defer g.idMu.RUnlock()
	return g.idToZone[id]
}

func (g *regionalGroup) sender(hexID string) (string, bool) {
	id, err := types.IDFromString(hexID)
	if err != nil {
		return "", false
	}
	name := g.zoneOf(id)
	return name, name != ""
}

func (g *regionalGroup) learn(z *zoneMember) {
	e := z.server()
	if e == nil {
		return
	}
	g.idMu.Lock()
	defer g.idMu.Unlock()
	for _, m := range e.Server.Cluster().Members() {
		g.idToZone[m.ID] = m.Name
	}
}

func (g *regionalGroup) endpoints() []string {
	var eps []string
	for _, z := range g.members {
		z.mu.Lock()
		eps = append(eps, "http://"+z.client)
		z.mu.Unlock()
	}
	return eps
}

// groupConfig is what one region's regional group needs to lay itself
// out: a lab's Cluster makes one per region, an agent (agent.go) one for
// its region.
type groupConfig struct {
	region   string
	zones    int
	dir      string  // data root: each zone's data in dir/<zone>
	scale    float64 // latency scale of the zone links
	fsync    bool
	bypass   bool // members advertise their own peer listeners (benchmarks)
	zl       *zap.Logger
	log      *slog.Logger
	onChange func() // a zone link changed
}

// newRegionalGroup lays out a region's zones — ports, the zone fabric and
// a peer proxy in front of each member — and starts the proxies; no
// member runs yet (startMembers). saved holds the proxies' addresses a
// resumed data directory knows its members by (zones.json).
func newRegionalGroup(gc groupConfig, saved map[string]string) (*regionalGroup, error) {
	var names []string
	for i := range gc.zones {
		names = append(names, ZoneName(gc.region, i))
	}
	g := &regionalGroup{region: gc.region, bypass: gc.bypass, idToZone: map[types.ID]string{}}
	g.fabric = newFabric(names, gc.scale, gc.onChange)
	for _, l := range g.fabric.links {
		l.setRTT(zoneRTTMs(zoneIndex(l.from), zoneIndex(l.to)), gc.scale)
		l.mu.Lock()
		l.estimate = false
		l.mu.Unlock()
	}
	var initial []string
	for i, name := range names {
		z := &zoneMember{name: name, region: gc.region, index: i, dir: gc.dir + "/" + name, noFsync: !gc.fsync, zl: gc.zl, log: gc.log}
		if err := z.pickPorts(); err != nil {
			g.closeProxies()
			return nil, err
		}
		if gc.bypass && saved[name] != "" {
			z.peer = saved[name] // the member's own listener is its known address
		}
		z.advertise = z.peer
		if !gc.bypass {
			ln, err := listenProxy(saved[name])
			if err != nil {
				g.closeProxies()
				return nil, fmt.Errorf("nodes: zone %s's member is known by %s in the data of %s, and that port is taken (%v): stop what uses it, or start with another --data-dir", name, saved[name], gc.dir, err)
			}
			p := newPeerProxy(name, z.peer, ln, g.fabric, g.sender)
			g.proxies = append(g.proxies, p)
			z.advertise = ln.Addr().String()
		}
		initial = append(initial, name+"=http://"+z.advertise)
		g.members = append(g.members, z)
	}
	for _, z := range g.members {
		z.cluster = strings.Join(initial, ",")
	}
	for _, p := range g.proxies {
		go p.serve()
	}
	return g, nil
}

// closeProxies stops the group's peer proxies (a layout that failed).
func (g *regionalGroup) closeProxies() {
	for _, p := range g.proxies {
		p.close()
	}
}

// startZones lays out every region's zones (ports, proxies, zone fabric)
// and starts each regional group in its own goroutine — groups in
// parallel, the members of one group one after another (ETCD-NOTES:
// concurrent starts within one group cost a second per peer). awaitZones
// waits for them.
func (c *Cluster) startZones(zl *zap.Logger) error {
	n := c.cfg.Zones
	// A regional group's members know each other by their proxies'
	// addresses (in their data): a lab resumed from its data directory
	// listens on the same ones again, and must have as many zones.
	saved, err := loadZoneAddrs(c.dir)
	if err != nil {
		return err
	}
	if c.resumed {
		if err := checkZoneAddrs(c.dir, saved, c.cfg.Regions, n); err != nil {
			return err
		}
	}
	zs := &zoneSet{n: n, byRegion: map[string]*regionalGroup{}, byZone: map[string]*zoneMember{},
		remote: map[[2]string]*clientv3.Client{}, remoteZone: map[[2]string]*clientv3.Client{}, remoteProxies: map[[3]string]*replicaProxy{},
		startErr: make(chan error, len(c.cfg.Regions))}
	c.zones = zs
	for _, region := range c.cfg.Regions {
		g, err := newRegionalGroup(groupConfig{region: region, zones: n, dir: c.dir, scale: c.cfg.LatencyScale, fsync: c.cfg.Fsync,
			bypass: c.cfg.BypassFabric, zl: zl, log: c.log, onChange: c.changed}, saved)
		if err != nil {
			return err
		}
		zs.add(g)
	}
	if err := saveZoneAddrs(c.dir, zs.byZone); err != nil {
		return err
	}
	for _, g := range zs.groups {
		zs.starting.Add(1)
		go func() {
			defer zs.starting.Done()
			zs.startErr <- g.startMembers()
		}()
	}
	return nil
}

// add takes a laid-out group into the set.
func (zs *zoneSet) add(g *regionalGroup) {
	for _, z := range g.members {
		zs.byZone[z.name] = z
	}
	zs.groups = append(zs.groups, g)
	zs.byRegion[g.region] = g
}

// startMembers starts the group's members one after another.
func (g *regionalGroup) startMembers() error {
	for i, z := range g.members {
		err := z.start()
		for try := 0; addrInUse(err) && try < 5; try++ {
			if err := z.pickPorts(); err != nil {
				return err
			}
			if !g.bypass {
				g.proxies[i].setTarget(z.peer)
			} else {
				z.advertise = z.peer
			}
			err = z.start()
		}
		if err != nil {
			return err
		}
		g.learn(z)
	}
	return nil
}

// awaitZones waits until every regional group has started and every
// member is ready, then connects the gateways' clients.
func (c *Cluster) awaitZones(ctx interface {
	Done() <-chan struct{}
	Err() error
}) error {
	zs := c.zones
	for range zs.groups {
		select {
		case err := <-zs.startErr:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return fmt.Errorf("nodes: regional groups not started: %w", ctx.Err())
		}
	}
	for _, g := range zs.groups {
		if err := g.awaitReady(ctx, c.cfg.Logger); err != nil {
			return err
		}
	}
	for _, g := range zs.groups {
		cli, err := newClientEndpoints(g.endpoints())
		if err != nil {
			return err
		}
		g.client = cli
		for _, ep := range g.endpoints() {
			zc, err := newClientEndpoints([]string{ep})
			if err != nil {
				return err
			}
			g.zoneCli = append(g.zoneCli, zc)
		}
	}
	for _, from := range zs.groups {
		for _, to := range zs.groups {
			if from == to {
				continue
			}
			var eps []string
			for _, z := range to.members {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					return fmt.Errorf("nodes: regional proxy: %w", err)
				}
				z.mu.Lock()
				p := newReplicaProxy(from.region, to.region, z.client, ln, c.fabric)
				z.mu.Unlock()
				zs.remoteProxies[[3]string{from.region, to.region, z.name}] = p
				go p.serve()
				eps = append(eps, "http://"+ln.Addr().String())
				zc, err := newClientEndpoints([]string{"http://" + ln.Addr().String()})
				if err != nil {
					return err
				}
				zs.remoteZone[[2]string{from.region, z.name}] = zc
			}
			cli, err := newClientEndpoints(eps)
			if err != nil {
				return err
			}
			zs.remote[[2]string{from.region, to.region}] = cli
		}
	}
	return nil
}

// awaitReady waits until every member of the group is ready. As for the
// consensus members (Cluster.waitReady): a member not ready after many
// election timeouts gets its group's streams dialled again.
func (g *regionalGroup) awaitReady(ctx interface {
	Done() <-chan struct{}
	Err() error
}, log *slog.Logger) error {
	kick := time.NewTicker(max(5*time.Second, 10*zoneElectionMs*time.Millisecond))
	defer kick.Stop()
	for _, z := range g.members {
		e := z.server()
		if e == nil {
			return fmt.Errorf("nodes: zone %s is not running", z.name)
		}
	wait:
		for {
			select {
			case <-e.Server.ReadyNotify():
				break wait
			case err := <-e.Err():
				return fmt.Errorf("nodes: zone %s failed: %w", z.name, err)
			case <-kick.C:
				log.Warn("a zone member is slow to become ready: reconnecting its group's streams", "zone", z.name)
				for _, p := range g.proxies {
					p.dropAll()
				}
			case <-ctx.Done():
				return fmt.Errorf("nodes: zone %s not ready (term %d, leader %x): %w", z.name, e.Server.Term(), uint64(e.Server.Leader()), ctx.Err())
			}
		}
	}
	return nil
}

// newClientEndpoints is newClient for several endpoints (one per zone).
func newClientEndpoints(eps []string) (*clientv3.Client, error) {
	cli, err := newClient(strings.TrimPrefix(eps[0], "http://"))
	if err != nil {
		return nil, err
	}
	cli.SetEndpoints(eps...)
	return cli, nil
}

// closeZones stops every zone member (hard stop on all, then close), the
// clients and the proxies. The caller holds the cluster closed.
func (c *Cluster) closeZones() {
	zs := c.zones
	if zs == nil {
		return
	}
	zs.starting.Wait()
	for _, cli := range zs.remote {
		_ = cli.Close()
	}
	for _, cli := range zs.remoteZone {
		_ = cli.Close()
	}
	for _, g := range zs.groups {
		if g.client != nil {
			_ = g.client.Close()
		}
		for _, zc := range g.zoneCli {
			_ = zc.Close()
		}
	}
	for _, p := range zs.remoteProxies { // the clients through them are closed
		p.close()
	}
	var wg sync.WaitGroup
	for _, g := range zs.groups {
		wg.Go(g.stop)
	}
	wg.Wait()
}

// stop hard-stops every member of the group (nothing reaches one while it
// stops: its proxy points at nothing first), closes them, and closes the
// zone fabric and the proxies.
func (g *regionalGroup) stop() {
	for _, p := range g.proxies {
		p.setTarget("")
		p.dropAll()
	}
	var stopped []*embed.Etcd
	for _, z := range g.members {
		if e := z.hardStop(); e != nil {
			stopped = append(stopped, e)
		}
	}
	g.fabric.closeAll()
	g.closeProxies()
	var wg sync.WaitGroup
	for _, e := range stopped {
		wg.Go(e.Close)
	}
	wg.Wait()
}
