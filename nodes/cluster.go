package nodes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Config describes a cluster of regions. The zero value is usable: three
// default regions, real round-trip times, a temporary data directory.
type Config struct {
	// Regions to start, in display order; empty means DefaultRegions.
	Regions []string
	// LatencyScale multiplies every link delay: 1 = real RTTs, 0 = none.
	// Negative means 1 (so the zero Config has real latency, see Validate).
	LatencyScale float64
	// DataDir keeps the servers' data; empty means a temporary directory
	// removed by Close.
	DataDir string
	// TickMs and ElectionMs override the derived Raft timing (heartbeat ≈
	// the largest scaled RTT, floor MinTickMs; election = 10 × heartbeat).
	TickMs, ElectionMs uint
	// Fsync makes etcd fsync its WAL. Off by default: a crash here is a
	// process-level stop, which the page cache survives.
	Fsync bool
	// BypassFabric advertises the members' real peer listeners, so consensus
	// traffic does not cross the fabric (for benchmarks only: cuts and
	// latency then do not apply to it).
	BypassFabric bool
	// ReadyTimeout bounds the wait for every member at start (default 30 s).
	ReadyTimeout time.Duration
	// Logger receives the cluster's own messages; nil discards them.
	Logger *slog.Logger
	// Zones is how many zones each region has, each with one member of the
	// region's regional Raft group (the geo store's home): 1 to 3, 0 means
	// 3. One zone halves the etcd servers, for small machines. (zones.go)
	Zones int
	// EtcdLogLevel enables etcd's own logs at this zap level ("warn",
	// "info"); empty keeps etcd quiet.
	EtcdLogLevel string
}

// MinTickMs is the smallest derived heartbeat. Shorter heartbeats make
// spurious elections likely on a loaded two-core machine.
const MinTickMs = 100

// Timing is the Raft timing a cluster runs with.
type Timing struct {
	TickMs, ElectionMs uint
}

// DeriveTiming follows etcd's tuning guide: heartbeat between 0.5 and 1.5
// × the largest round-trip time between members (scaled) — the low end,
// half of it, so a lab at real latencies elects its first leader in about
// a second — and election = 10 × heartbeat (5 × the largest RTT: the
// one-way delay of a heartbeat is a tenth of it).
func DeriveTiming(regions []string, scale float64) Timing {
	maxRTT := 0.0
	for _, a := range regions {
		for _, b := range regions {
			if rtt, _ := ModelRTT(a, b); rtt > maxRTT {
				maxRTT = rtt
			}
		}
	}
	tick := uint(math.Max(MinTickMs, math.Ceil(maxRTT*scale/2)))
	return Timing{TickMs: tick, ElectionMs: 10 * tick}
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if len(c.Regions) == 0 {
		c.Regions = append([]string(nil), DefaultRegions...)
	}
	if err := validateRegions(c.Regions); err != nil {
		return err
	}
	if c.LatencyScale < 0 || math.IsNaN(c.LatencyScale) {
		c.LatencyScale = 1
	}
	if c.LatencyScale > 100 {
		return fmt.Errorf("nodes: latency scale must be between 0 and 100 (got %v)", c.LatencyScale)
	}
	t := DeriveTiming(c.Regions, c.LatencyScale)
	if c.TickMs == 0 {
		c.TickMs = t.TickMs
	}
	if c.ElectionMs == 0 {
		c.ElectionMs = 10 * c.TickMs
	}
	if c.ElectionMs < 5*c.TickMs {
		return fmt.Errorf("nodes: election timeout (%d ms) must be at least 5 × heartbeat (%d ms)", c.ElectionMs, c.TickMs)
	}
	if c.Zones == 0 { // zones (zones.go)
		c.Zones = DefaultZones
	}
	if err := checkZones(c.Zones); err != nil {
		return err
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Cluster is a set of regions on real etcd servers and the fabric between
// them. Start it with Start; Close it once.
type Cluster struct {
	cfg     Config
	fabric  *Fabric
	regions []*region
	byName  map[string]*region
	dir     string
	tempDir bool
	log     *slog.Logger

	peerProxies    []*peerProxy
	replicaProxies map[[2]string]*replicaProxy

	memberClients  map[string]*clientv3.Client
	replicaClients map[[2]string]*clientv3.Client

	idMu    sync.RWMutex
	idToReg map[types.ID]string

	zones *zoneSet // zones and regional groups (zones.go)

	// lifeMu: Crash and Restart hold it shared, Close exclusively, so no
	// server is started after (or while) the cluster closes.
	lifeMu sync.RWMutex
	closed bool

	nudge     chan struct{}
	stop      chan struct{}
	observer  sync.WaitGroup
	subMu     sync.Mutex
	subs      map[chan Snapshot]struct{}
	seq       atomic.Uint64 // of the last published snapshot
	closeOnce sync.Once
	closeErr  error
}

// freePort finds a free loopback port for an etcd listener (embed cannot
// take an open listener). It draws from below the kernel's ephemeral range,
// so the many outgoing connections of a running lab never take a port
// between this check and etcd's bind; a clash with another process is still
// possible and start retries with new ports.
func freePort() (string, error) {
	lo, _ := ephemeralRange()
	base := max(1024, lo-12000)
	for range 100 {
		port := base + rand.IntN(lo-base)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		return addr, ln.Close()
	}
	return "", errors.New("no free port below the ephemeral range")
}

// ephemeralRange reads the kernel's range for outgoing connections' ports.
func ephemeralRange() (lo, hi int) {
	lo, hi = 32768, 60999
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	if f := strings.Fields(string(raw)); len(f) == 2 {
		a, err1 := strconv.Atoi(f[0])
		b, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil && a > 2048 {
			return a, b
		}
	}
	return lo, hi
}

// pickPorts chooses the ports a region's servers listen on. fresh: no data
// exists yet, so the replica's advertised peer URL moves too; on a restart
// it stays what the replica's data says (a single member never dials it).
func (r *region) pickPorts(fresh bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range []*string{&r.memberPeer, &r.memberClient, &r.replicaPeer, &r.replicaClient} {
		var err error
		if *p, err = freePort(); err != nil {
			return fmt.Errorf("nodes: ports: %w", err)
		}
	}
	if fresh {
		r.replicaAdvertise = r.replicaPeer
	}
	return nil
}

// addrInUse reports a listener that could not bind its port.
func addrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// repoint moves everything that talks to a region's servers to their
// current ports: the peer proxy in front of its member, the clients of its
// member and replica, and the other regions' replica proxies into it.
func (c *Cluster) repoint(r *region) {
	name := r.place.Name
	for i, x := range c.regions {
		if x == r && i < len(c.peerProxies) {
			c.peerProxies[i].setTarget(r.memberPeer)
		}
	}
	if cli := c.memberClients[name]; cli != nil {
		cli.SetEndpoints("http://" + r.memberClient)
	}
	if cli := c.replicaClients[[2]string{name, name}]; cli != nil {
		cli.SetEndpoints("http://" + r.replicaClient)
	}
	for k, p := range c.replicaProxies {
		if k[1] == name {
			p.setTarget(r.replicaClient)
		}
	}
}

// Start starts every region — members one after another, then waits until
// all are ready — and the fabric between them.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg: cfg, log: cfg.Logger, byName: map[string]*region{},
		replicaProxies: map[[2]string]*replicaProxy{},
		memberClients:  map[string]*clientv3.Client{},
		replicaClients: map[[2]string]*clientv3.Client{},
		idToReg:        map[types.ID]string{},
		nudge:          make(chan struct{}, 1),
		stop:           make(chan struct{}),
		subs:           map[chan Snapshot]struct{}{},
	}
	c.fabric = newFabric(cfg.Regions, cfg.LatencyScale, c.changed)
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	if cfg.DataDir != "" {
		c.dir = cfg.DataDir
		if err := os.MkdirAll(c.dir, 0o700); err != nil {
			return nil, fmt.Errorf("nodes: data dir: %w", err)
		}
	} else {
		c.dir, err = os.MkdirTemp("", "caplab-")
		if err != nil {
			return nil, fmt.Errorf("nodes: temp dir: %w", err)
		}
		c.tempDir = true
	}
	zl := zap.NewNop()
	if cfg.EtcdLogLevel != "" {
		lvl, err := zapcore.ParseLevel(cfg.EtcdLogLevel)
		if err != nil {
			return nil, fmt.Errorf("nodes: etcd log level: %w", err)
		}
		zc := zap.NewProductionConfig()
		zc.Level = zap.NewAtomicLevelAt(lvl)
		if zl, err = zc.Build(); err != nil {
			return nil, err
		}
	}

	// Regional groups start in the background, in parallel (zones.go).
	if err := c.startZones(zl); err != nil {
		return nil, err
	}

	// Ports and proxies first: the initial cluster names every member by
	// the address of the proxy in front of it.
	var initial []string
	for _, name := range cfg.Regions {
		place, _ := Lookup(name)
		r := &region{place: place, dir: c.dir + "/" + name, token: "caplab", tickMs: cfg.TickMs, elecMs: cfg.ElectionMs, noFsync: !cfg.Fsync, zapLogger: zl}
		if err := r.pickPorts(true); err != nil {
			return nil, err
		}
		r.advertisePeer = r.memberPeer
		if !cfg.BypassFabric {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, fmt.Errorf("nodes: peer proxy: %w", err)
			}
			p := newPeerProxy(name, r.memberPeer, ln, c.fabric, c.senderRegion)
			c.peerProxies = append(c.peerProxies, p)
			r.advertisePeer = ln.Addr().String()
		}
		initial = append(initial, name+"=http://"+r.advertisePeer)
		c.regions = append(c.regions, r)
		c.byName[name] = r
	}
	for _, p := range c.peerProxies {
		go p.serve()
	}
	for _, r := range c.regions {
		r.cluster = strings.Join(initial, ",")
	}

	// Members one after another (each StartEtcd returns in ~10 ms; starting
	// them concurrently costs a second per peer in bootstrap), then wait.
	for _, r := range c.regions {
		err := r.start()
		for try := 0; addrInUse(err) && !cfg.BypassFabric && try < 5; try++ {
			// Another process took a port between our check and etcd's bind.
			// The proxy in front of the member keeps its address, so only
			// the real listeners move.
			if err := r.pickPorts(true); err != nil {
				return nil, err
			}
			c.repoint(r)
			err = r.start()
		}
		if err != nil {
			return nil, err
		}
		c.learnMembers(r)
	}
	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}
	zctx, zcancel := context.WithTimeout(ctx, cfg.ReadyTimeout) // zones (zones.go)
	err = c.awaitZones(zctx)
	zcancel()
	if err != nil {
		return nil, err
	}

	// Replica traffic between regions crosses the fabric through one TCP
	// proxy per ordered pair.
	for _, from := range c.regions {
		for _, to := range c.regions {
			if from == to {
				continue
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, fmt.Errorf("nodes: replica proxy: %w", err)
			}
			p := newReplicaProxy(from.place.Name, to.place.Name, to.replicaClient, ln, c.fabric)
			c.replicaProxies[[2]string{from.place.Name, to.place.Name}] = p
			go p.serve()
		}
	}
	for _, r := range c.regions {
		if c.memberClients[r.place.Name], err = newClient(r.memberClient); err != nil {
			return nil, err
		}
		for _, to := range c.regions {
			ep := to.replicaClient
			if to != r {
				ep = c.replicaProxies[[2]string{r.place.Name, to.place.Name}].ln.Addr().String()
			}
			if c.replicaClients[[2]string{r.place.Name, to.place.Name}], err = newClient(ep); err != nil {
				return nil, err
			}
		}
	}
	c.observer.Add(1)
	go c.observe()
	c.log.Info("regions ready", "regions", cfg.Regions, "tickMs", cfg.TickMs, "electionMs", cfg.ElectionMs, "dir", c.dir)
	return c, nil
}

// newClient connects to one endpoint with quick reconnects, so a client
// whose link was cut is back soon after the heal.
func newClient(endpoint string) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            []string{"http://" + endpoint},
		DialTimeout:          time.Second,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Logger:               zap.NewNop(),
		// One quick retry, not a hundred: a member that knows it has no
		// leader answers "no leader" at once, and the caller should hear it
		// instead of the client retrying until the deadline.
		MaxUnaryRetries:    1,
		BackoffWaitBetween: 20 * time.Millisecond,
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: time.Second,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("nodes: client for %s: %w", endpoint, err)
	}
	return cli, nil
}

// learnMembers records every member id → region from a started member's
// view of the initial cluster.
func (c *Cluster) learnMembers(r *region) {
	m, _ := r.servers()
	if m == nil {
		return
	}
	c.idMu.Lock()
	defer c.idMu.Unlock()
	for _, mem := range m.Server.Cluster().Members() {
		if _, ok := c.byName[mem.Name]; ok {
			c.idToReg[mem.ID] = mem.Name
		}
	}
}

func (c *Cluster) senderRegion(hexID string) (string, bool) {
	id, err := types.IDFromString(hexID)
	if err != nil {
		return "", false
	}
	c.idMu.RLock()
	defer c.idMu.RUnlock()
	name, ok := c.idToReg[id]
	return name, ok
}

func (c *Cluster) regionOf(id types.ID) string {
	c.idMu.RLock()
	defer c.idMu.RUnlock()
	return c.idToReg[id]
}

func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ReadyTimeout)
	defer cancel()
	for _, r := range c.regions {
		m, rep := r.servers()
		for _, e := range []struct {
			what  string
			ready <-chan struct{}
			errc  <-chan error
		}{{"member", m.Server.ReadyNotify(), m.Err()}, {"replica", rep.Server.ReadyNotify(), rep.Err()}} {
			select {
			case <-e.ready:
			case err := <-e.errc:
				return fmt.Errorf("nodes: %s %s failed: %w", r.place.Name, e.what, err)
			case <-ctx.Done():
				return fmt.Errorf("nodes: %s %s not ready: %w", r.place.Name, e.what, ctx.Err())
			}
		}
	}
	return nil
}

func (c *Cluster) region(name string) (*region, error) {
	r, ok := c.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: region %q is not in this lab (regions: %s)", ErrBadOperation, name, strings.Join(c.cfg.Regions, ", "))
	}
	return r, nil
}

// Regions lists the regions, in order.
func (c *Cluster) Regions() []string { return append([]string(nil), c.cfg.Regions...) }

// Fabric is the network between the regions.
func (c *Cluster) Fabric() *Fabric { return c.fabric }

// Timing is the Raft timing the members run with.
func (c *Cluster) Timing() Timing { return Timing{c.cfg.TickMs, c.cfg.ElectionMs} }

// LatencyScale is the factor every delay is multiplied by.
func (c *Cluster) LatencyScale() float64 { return c.cfg.LatencyScale }

// Dir is the data directory.
func (c *Cluster) Dir() string { return c.dir }

// MemberClient is a client of a region's own consensus member (local: it
// does not cross the fabric). It stays valid across crashes and restarts.
func (c *Cluster) MemberClient(region string) (*clientv3.Client, error) {
	if _, err := c.region(region); err != nil {
		return nil, err
	}
	return c.memberClients[region], nil
}

// ReplicaClient is a client in region from of region to's replica. Unless
// from == to its traffic crosses the links from → to and back.
func (c *Cluster) ReplicaClient(from, to string) (*clientv3.Client, error) {
	if _, err := c.region(from); err != nil {
		return nil, err
	}
	if _, err := c.region(to); err != nil {
		return nil, err
	}
	return c.replicaClients[[2]string{from, to}], nil
}

// IsUp reports whether a region's servers are running.
func (c *Cluster) IsUp(region string) bool {
	r, ok := c.byName[region]
	if !ok {
		return false
	}
	m, _ := r.servers()
	return m != nil
}

// ErrClosed is returned by operations on a closed cluster.
var ErrClosed = errors.New("the cluster is closed")

// alive holds lifeMu shared until the returned func is called, or fails
// if the cluster is closed.
func (c *Cluster) alive() (release func(), err error) {
	c.lifeMu.RLock()
	if c.closed {
		c.lifeMu.RUnlock()
		return nil, ErrClosed
	}
	return c.lifeMu.RUnlock, nil
}

// Crash stops both of a region's servers abruptly: no leadership hand-off.
func (c *Cluster) Crash(name string) error {
	if c.IsZone(name) { // zones (zones.go)
		return c.crashZone(name)
	}
	r, err := c.region(name)
	if err != nil {
		return fmt.Errorf("nodes: crash: %w", err)
	}
	release, err := c.alive()
	if err != nil {
		return fmt.Errorf("nodes: crash %s: %w", name, err)
	}
	defer release()
	if err := r.hardStop(c.dropConnections); err != nil {
		return err
	}
	c.crashRegionZones(name) // zones (zones.go)
	c.changed()
	return nil
}

// dropConnections ends every proxied connection into a region's servers,
// so closing them does not wait for peers' idle connections.
func (c *Cluster) dropConnections(name string) {
	for i, r := range c.regions {
		if r.place.Name == name && i < len(c.peerProxies) {
			c.peerProxies[i].dropAll()
		}
	}
	for k, p := range c.replicaProxies {
		if k[1] == name {
			p.dropAll()
		}
	}
}

// Restart starts a crashed region again from its data directory. It
// returns once both servers run; the member rejoins the group when it
// reaches a quorum (watch its Ready in the snapshot).
func (c *Cluster) Restart(name string) error {
	if c.IsZone(name) { // zones (zones.go)
		return c.restartZone(name)
	}
	r, err := c.region(name)
	if err != nil {
		return fmt.Errorf("nodes: restart: %w", err)
	}
	release, err := c.alive()
	if err != nil {
		return fmt.Errorf("nodes: restart %s: %w", name, err)
	}
	defer release()
	err = r.start()
	for try := 0; addrInUse(err) && !c.cfg.BypassFabric && try < 5; try++ {
		// While the region was down another process took one of its ports:
		// move its listeners, and everything that talks to them.
		if err := r.pickPorts(false); err != nil {
			return err
		}
		c.repoint(r)
		err = r.start()
	}
	if err != nil {
		return err
	}
	if err := c.restartRegionZones(name); err != nil { // zones (zones.go)
		return err
	}
	c.changed()
	return nil
}

// Leader is the region whose member leads with the agreement of a majority
// of members right now: members in its term that believe it leads and that
// it can reach both ways. Members' beliefs lag (a follower cut off from its
// leader still names it until its election timer fires), so beliefs alone
// would report a leader that has just been cut off. "" when there is none.
func (c *Cluster) Leader() string {
	st := make(map[string]RegionStatus, len(c.regions))
	for _, r := range c.regions {
		st[r.place.Name] = r.status(c.regionOf)
	}
	for name, cand := range st {
		if cand.Role != RoleLeader {
			continue
		}
		votes := 0
		for voter, s := range st {
			if s.Leader == name && s.Term == cand.Term &&
				(voter == name || (c.fabric.Up(name, voter) && c.fabric.Up(voter, name))) {
				votes++
			}
		}
		if votes > len(c.regions)/2 {
			return name
		}
	}
	return ""
}

// StreamsPerLink is how many raft streams carry one direction of a link
// when it works: etcd's msgappv2 and message streams.
const StreamsPerLink = 2

// AwaitStreams waits until every up link between two running, ready
// members carries raft streams opened since it last came up. A member
// learns that a stream broke (a cut closes it) only when it next writes to
// it, and that message is lost: a write forwarded right after a heal would
// otherwise wait out its whole deadline. It returns ctx's error if the
// streams are not back in time; nothing is wrong then but speed.
func (c *Cluster) AwaitStreams(ctx context.Context) error {
	if c.cfg.BypassFabric {
		return nil
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		ready := true
		st := c.State()
		for _, a := range st.Regions {
			for _, b := range st.Regions {
				if a.Name == b.Name || !a.Ready || !b.Ready {
					continue
				}
				if l := c.fabric.link(a.Name, b.Name); l.isUp() && l.freshStreams() < StreamsPerLink {
					ready = false
				}
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes: raft streams not back: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// CaughtUp reports whether every running member knows the agreed leader
// and has applied everything the leader has committed.
func (c *Cluster) CaughtUp() bool {
	leader := c.Leader()
	if leader == "" {
		return false
	}
	lst := c.byName[leader].status(c.regionOf)
	for _, r := range c.regions {
		s := r.status(c.regionOf)
		if !s.Up {
			continue
		}
		if s.Leader != leader || s.AppliedIndex < lst.CommitIndex {
			return false
		}
	}
	return true
}

// WaitLeader waits until a majority of members agree on a leader.
func (c *Cluster) WaitLeader(ctx context.Context) (string, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if l := c.Leader(); l != "" {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("nodes: no leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// ErrNoLeader is wrapped when an operation needs a leader and there is none.
var ErrNoLeader = errors.New("the consensus group has no leader")

// MoveLeader hands leadership of the consensus group to a region's member
// (etcd MoveLeader) and waits until it leads. Raft abandons a transfer
// that takes longer than an election timeout (the target was still
// catching up, say after a heal), so each attempt first waits for the
// target to catch up and is retried until ctx ends.
func (c *Cluster) MoveLeader(ctx context.Context, name string) error {
	target, err := c.region(name)
	if err != nil {
		return fmt.Errorf("nodes: move leader: %w", err)
	}
	election := time.Duration(c.cfg.ElectionMs) * time.Millisecond
	var last error
	for {
		tm, _ := target.servers()
		if tm == nil {
			return fmt.Errorf("nodes: move leader to %s: %w", name, ErrRegionDown)
		}
		leader := c.Leader()
		switch {
		case leader == name:
			c.changed()
			return nil
		case leader == "":
			last = fmt.Errorf("nodes: move leader to %s: %w", name, ErrNoLeader)
		case !c.fabric.Up(leader, name) || !c.fabric.Up(name, leader):
			return fmt.Errorf("nodes: move leader to %s: %w: it is cut off from leader %s", name, ErrNoLeader, leader)
		default:
			if lm, _ := c.byName[leader].servers(); lm != nil && c.caughtUp(name, leader) {
				actx, cancel := context.WithTimeout(ctx, 3*election)
				err := lm.Server.MoveLeader(actx, uint64(lm.Server.MemberID()), uint64(tm.Server.MemberID()))
				cancel()
				if err == nil {
					continue // confirm with Leader() above
				}
				last = fmt.Errorf("nodes: move leader %s → %s: %w", leader, name, err)
			} else {
				last = fmt.Errorf("nodes: move leader to %s: it has not caught up with leader %s", name, leader)
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = fmt.Errorf("nodes: move leader to %s: %w", name, ctx.Err())
			}
			return last
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// caughtUp reports whether region's member follows leader and has applied
// everything the leader committed.
func (c *Cluster) caughtUp(region, leader string) bool {
	ls := c.byName[leader].status(c.regionOf)
	rs := c.byName[region].status(c.regionOf)
	return rs.Up && rs.Leader == leader && rs.AppliedIndex >= ls.CommitIndex
}

// Close stops everything in this order: the observer, the clients, every
// server (hard stop on all first, so none hands leadership over, then
// close), the proxies, and the temporary data directory. Safe to call twice.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.lifeMu.Lock()
		c.closed = true
		c.lifeMu.Unlock()
		close(c.stop)
		c.observer.Wait()
		c.closeZones() // zones (zones.go)
		for _, cli := range c.memberClients {
			_ = cli.Close()
		}
		for _, cli := range c.replicaClients {
			_ = cli.Close()
		}
		for _, r := range c.regions {
			if m, rep := r.servers(); m != nil {
				m.Server.HardStop()
				rep.Server.HardStop()
			}
		}
		// No server sends anything now; ending the proxied connections first
		// lets every server close without waiting for idle peers.
		c.fabric.closeAll()
		for _, p := range c.peerProxies {
			p.close()
		}
		for _, p := range c.replicaProxies {
			p.close()
		}
		var wg sync.WaitGroup
		for _, r := range c.regions {
			r.mu.Lock()
			m, rep := r.member, r.replica
			r.member, r.replica = nil, nil
			r.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				closeBoth(m, rep)
			}()
		}
		wg.Wait()
		c.subMu.Lock()
		for ch := range c.subs {
			close(ch)
		}
		c.subs = map[chan Snapshot]struct{}{}
		c.subMu.Unlock()
		if c.tempDir {
			c.closeErr = os.RemoveAll(c.dir)
		}
	})
	return c.closeErr
}
