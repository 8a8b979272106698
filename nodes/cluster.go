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
	"go.etcd.io/etcd/server/v3/embed"
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
	// Fsync makes etcd sync its WAL and database to disk before it
	// acknowledges a write. Off by default: acknowledged writes then survive
	// a killed process (the page cache holds them and the kernel writes them
	// out) and a Crash, but not a machine crash or power loss; on, they
	// survive those too, at the price of slower writes.
	Fsync bool
	// BypassFabric advertises the members' real peer listeners, so consensus
	// traffic does not cross the fabric (for benchmarks only: cuts and
	// latency then do not apply to it).
	BypassFabric bool
	// ReadyTimeout bounds the wait for every member at start (default 60 s:
	// three regions start 15 etcd servers — 3 members, 3 replica servers, 9
	// zone members — in one process, and on a 2-core machine busy with
	// other work their first elections can take tens of seconds; an idle
	// machine is ready in about a second). The caller's context still
	// bounds the whole start.
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
		c.ReadyTimeout = DefaultReadyTimeout
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
	endpoints      map[endpointKey]*replicaProxy // outside clients' URLs (endpoints.go)

	memberClients  map[string]*clientv3.Client
	memberPools    map[string][]*clientv3.Client // memberClients[r] first, then more clients of the same member
	memberNext     atomic.Uint64                 // round robin over a pool
	memberUse      atomic.Int64                  // how many of each pool PooledMemberClient spreads over
	replicaClients map[[2]string]*clientv3.Client

	idMu    sync.RWMutex
	idToReg map[types.ID]string

	resumed bool // started on the data of an earlier run

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

// pickPorts chooses new ports for every listener of a region.
func (r *region) pickPorts() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range []*string{&r.memberPeer, &r.memberClient, &r.replicaPeer, &r.replicaClient} {
		var err error
		if *p, err = freePort(); err != nil {
			return fmt.Errorf("nodes: ports: %w", err)
		}
	}
	return nil
}

// movePorts moves the listeners of one server (member or replica) to new
// ports. The addresses its data knows it by stay: a member's peer proxy
// (when bypassing the fabric its peer port cannot move) and the replica's
// advertised peer URL (a single member never dials it).
func (r *region) movePorts(member bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ports := []*string{&r.replicaPeer, &r.replicaClient}
	if member {
		ports = []*string{&r.memberClient}
		if !r.bypass {
			ports = append(ports, &r.memberPeer)
		}
	}
	for _, p := range ports {
		var err error
		if *p, err = freePort(); err != nil {
			return fmt.Errorf("nodes: ports: %w", err)
		}
	}
	return nil
}

// listenLow opens a listener on a free loopback port below the ephemeral
// range (see freePort), for an address that must stay the same when the
// lab starts again on its data.
func listenLow() (net.Listener, error) {
	var last error
	for range 10 {
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln, nil
		}
		last = err
	}
	return nil, last
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
	r.mu.Lock()
	memberPeer, memberClient, replicaClient := r.memberPeer, r.memberClient, r.replicaClient
	r.mu.Unlock()
	if p := c.peerProxyOf(r); p != nil {
		p.setTarget(memberPeer)
	}
	// The client and proxy maps are filled by Start before any request
	// from outside can reach a region's owner, and read-only after.
	rcli := c.replicaClients[[2]string{name, name}]
	for _, mcli := range c.memberPools[name] {
		mcli.SetEndpoints("http://" + memberClient)
	}
	if rcli != nil {
		rcli.SetEndpoints("http://" + replicaClient)
	}
	for k, p := range c.replicaProxies {
		if k[1] == name {
			p.setTarget(replicaClient)
		}
	}
	c.repointEndpoints(name, memberClient, replicaClient)
}

// quiesce points everything that talks to a region's servers at nothing
// and ends every exchange in progress: its servers are about to stop (or
// have stopped), and nothing may reach them while they close.
func (c *Cluster) quiesce(r *region) {
	if p := c.peerProxyOf(r); p != nil {
		p.setTarget("")
		p.dropAll()
	}
	for k, p := range c.replicaProxies {
		if k[1] == r.place.Name {
			p.setTarget("")
			p.dropAll()
		}
	}
	c.dropEndpoints(r.place.Name)
}

func (c *Cluster) peerProxyOf(r *region) *peerProxy {
	for i, x := range c.regions {
		if x == r && i < len(c.peerProxies) {
			return c.peerProxies[i]
		}
	}
	return nil
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
		memberPools:    map[string][]*clientv3.Client{},
		replicaClients: map[[2]string]*clientv3.Client{},
		idToReg:        map[types.ID]string{},
		nudge:          make(chan struct{}, 1),
		stop:           make(chan struct{}),
		subs:           map[chan Snapshot]struct{}{},
	}
	c.memberUse.Store(1) // one connection per region: see MemberPoolSize
	c.fabric = newFabric(cfg.Regions, cfg.LatencyScale, c.changed)
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	var lay *layout
	if cfg.DataDir != "" {
		c.dir = cfg.DataDir
		if err := os.MkdirAll(c.dir, 0o700); err != nil {
			return nil, fmt.Errorf("nodes: data dir: %w", err)
		}
		if lay, err = readLayout(c.dir); err != nil {
			return nil, err
		}
		if lay != nil {
			if err := checkLayout(c.dir, lay, cfg.Regions, cfg.BypassFabric); err != nil {
				return nil, err
			}
			c.resumed = true
		}
	} else {
		for _, d := range removeStaleTempDirs() {
			c.log.Info("removed the data a killed lab left behind", "dir", d)
		}
		if c.dir, err = makeTempDir(); err != nil {
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

	// Addresses and proxies first: the initial cluster names every member
	// by the address of the proxy in front of it. A new data directory
	// gets new ones (below the ephemeral range, so they are likely free
	// again next time) and records them; a resumed one must have the same.
	fresh := lay == nil
	if fresh {
		lay = &layout{Version: LayoutVersion, BypassFabric: cfg.BypassFabric}
	}
	var initial []string
	for i, name := range cfg.Regions {
		place, _ := Lookup(name)
		r := newRegion(place)
		go r.run() // idle until asked; Close ends it
		c.regions = append(c.regions, r)
		c.byName[name] = r
		r.dir, r.token, r.tickMs, r.elecMs, r.noFsync, r.zapLogger, r.log = c.dir+"/"+name, "caplab", cfg.TickMs, cfg.ElectionMs, !cfg.Fsync, zl, c.log
		r.bypass, r.quiesce, r.repoint = cfg.BypassFabric, c.quiesce, c.repoint
		if err := r.pickPorts(); err != nil {
			return nil, err
		}
		var ln net.Listener
		switch {
		case fresh && cfg.BypassFabric:
			r.advertisePeer = r.memberPeer
		case fresh:
			if ln, err = listenLow(); err != nil {
				return nil, fmt.Errorf("nodes: peer proxy: %w", err)
			}
			r.advertisePeer = ln.Addr().String()
		default:
			r.advertisePeer = lay.Regions[i].MemberPeer
			if cfg.BypassFabric {
				r.memberPeer = r.advertisePeer
			} else if ln, err = net.Listen("tcp", r.advertisePeer); err != nil {
				return nil, fmt.Errorf("nodes: %s's member is known by %s in the data of %s, and that port is taken (%v): stop what uses it, or start with another --data-dir", name, r.advertisePeer, c.dir, err)
			}
		}
		if fresh {
			r.replicaAdvertise = r.replicaPeer
			lay.Regions = append(lay.Regions, layoutRegion{Name: name, MemberPeer: r.advertisePeer, ReplicaPeer: r.replicaAdvertise})
		} else {
			r.replicaAdvertise = lay.Regions[i].ReplicaPeer
		}
		if ln != nil {
			c.peerProxies = append(c.peerProxies, newPeerProxy(name, r.memberPeer, ln, c.fabric, c.senderRegion))
		}
		initial = append(initial, name+"=http://"+r.advertisePeer)
	}
	if fresh {
		if err := writeLayout(c.dir, lay); err != nil {
			return nil, fmt.Errorf("nodes: data dir: %w", err)
		}
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
		if err := r.do(opStart); err != nil {
			return nil, err
		}
		c.learnMembers(r)
	}
	if !c.resumed { // never on data being replayed (election.go)
		hctx, cancel := context.WithTimeout(ctx, 2*time.Duration(cfg.ElectionMs)*time.Millisecond)
		c.hurryFirstElection(hctx)
		cancel()
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
	if err := c.startEndpoints(); err != nil {
		return nil, err
	}
	for _, r := range c.regions {
		for range MemberPoolSize {
			cli, err := newClient(r.memberClient)
			if err != nil {
				return nil, err
			}
			c.memberPools[r.place.Name] = append(c.memberPools[r.place.Name], cli)
		}
		c.memberClients[r.place.Name] = c.memberPools[r.place.Name][0]
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
	c.observer.Add(2)
	go c.observe()
	go c.upkeep()
	c.log.Info("regions ready", "regions", cfg.Regions, "tickMs", cfg.TickMs, "electionMs", cfg.ElectionMs, "dir", c.dir, "resumed", c.resumed)
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

// DefaultReadyTimeout is Config.ReadyTimeout's default.
const DefaultReadyTimeout = 60 * time.Second

// electionReport says, for a start that timed out, what each consensus
// member and replica server knows: its term and leader (0: none), so that
// a slow first election reads apart from a server that never started.
func (c *Cluster) electionReport() string {
	var parts []string
	for _, r := range c.regions {
		m, rep := r.servers()
		for _, e := range []struct {
			what string
			e    *embed.Etcd
		}{{"member", m}, {"replica", rep}} {
			if !running(e.e) {
				parts = append(parts, r.place.Name+" "+e.what+" stopped")
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %s term %d leader %x", r.place.Name, e.what, e.e.Server.Term(), uint64(e.e.Server.Leader())))
		}
	}
	return strings.Join(parts, ", ")
}

func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ReadyTimeout)
	defer cancel()
	start := time.Now()
	// A member that has not become ready after many election timeouts
	// while the others agree on a leader has stopped hearing them: seen in
	// .ci/run, one member stayed at term 1 for 60 s while the others led
	// at term 2. Dropping every exchange through the peer proxies makes
	// etcd dial its streams again (it does so on any stream error).
	kick := time.NewTicker(max(5*time.Second, 10*time.Duration(c.cfg.ElectionMs)*time.Millisecond))
	defer kick.Stop()
	for _, r := range c.regions {
		m, rep := r.servers()
		for _, e := range []struct {
			what  string
			ready <-chan struct{}
			errc  <-chan error
		}{{"member", m.Server.ReadyNotify(), m.Err()}, {"replica", rep.Server.ReadyNotify(), rep.Err()}} {
		wait:
			for {
				select {
				case <-e.ready:
					break wait
				case err := <-e.errc:
					return fmt.Errorf("nodes: %s %s failed: %w", r.place.Name, e.what, err)
				case <-kick.C:
					c.cfg.Logger.Warn("a server is slow to become ready: reconnecting the members' streams", "server", r.place.Name+" "+e.what,
						"after", time.Since(start).Round(time.Millisecond), "state", c.electionReport())
					for _, p := range c.peerProxies {
						p.dropAll()
					}
				case <-ctx.Done():
					return fmt.Errorf("nodes: %s %s not ready after %s (%s): %w", r.place.Name, e.what, time.Since(start).Round(time.Millisecond), c.electionReport(), ctx.Err())
				}
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

// MemberPoolSize is how many clients of its own member each region keeps.
// One gRPC connection serialises its writes through a per-connection lock
// (the transport's control buffer); PooledMemberClient can spread a hot
// path's requests over the pool instead (SetMemberPool). By default it
// does not: measured on a quiet 2-core machine, one connection per region
// was as fast or faster in every comparison (BenchmarkHTTPBuys medians,
// in-process 4,302 vs 4,259, 3,339 vs 3,270, 3,999 vs 3,032 buys/s; HTTP
// 2,843 vs 2,704, 2,164 vs 1,925, 2,415 vs 2,227), since one connection
// batches concurrent requests into fewer writes; the lock the pool avoids
// only mattered on a machine too busy to run the lock's holder.
const MemberPoolSize = 4

// PooledMemberClient is one of the pool of clients of a region's own
// member, taken round robin: for a hot path with many concurrent
// requests. Like MemberClient it stays valid across crashes and restarts;
// requests that need one connection's ordering use MemberClient.
func (c *Cluster) PooledMemberClient(region string) (*clientv3.Client, error) {
	if _, err := c.region(region); err != nil {
		return nil, err
	}
	pool := c.memberPools[region]
	n := uint64(min(int(c.memberUse.Load()), len(pool)))
	if n <= 1 {
		return pool[0], nil
	}
	return pool[c.memberNext.Add(1)%n], nil
}

// SetMemberPool sets how many of each region's pooled member clients
// PooledMemberClient spreads requests over (1 … MemberPoolSize; 1, the
// default, is one connection per region) and returns the previous number.
// For benchmarks that compare the two in one run.
func (c *Cluster) SetMemberPool(n int) int {
	return int(c.memberUse.Swap(int64(max(1, min(n, MemberPoolSize)))))
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

// IsUp reports whether every server of a region runs.
func (c *Cluster) IsUp(region string) bool {
	r, ok := c.byName[region]
	return ok && r.up()
}

// Resumed reports whether the cluster started on the data of an earlier
// run (a data directory used before), rather than on new data.
func (c *Cluster) Resumed() bool { return c.resumed }

// ErrClosed is returned by operations on a closed cluster.
var ErrClosed = errors.New("the cluster is closed")

// alive holds lifeMu shared until the returned func is called, or fails
// if the cluster is closed (zones' crash and restart use it).
func (c *Cluster) alive() (release func(), err error) {
	c.lifeMu.RLock()
	if c.closed {
		c.lifeMu.RUnlock()
		return nil, ErrClosed
	}
	return c.lifeMu.RUnlock, nil
}

// Crash stops both of a region's servers abruptly: no leadership hand-off.
// It returns once both are closed. A region that is partly down (one
// server stopped on its own) is crashed entirely.
func (c *Cluster) Crash(name string) error {
	if c.IsZone(name) { // zones (zones.go)
		return c.crashZone(name)
	}
	r, err := c.region(name)
	if err != nil {
		return fmt.Errorf("nodes: crash: %w", err)
	}
	if err := r.do(opCrash); err != nil {
		if errors.Is(err, ErrClosed) {
			return fmt.Errorf("nodes: crash %s: %w", name, err)
		}
		return err
	}
	c.crashRegionZones(name) // zones (zones.go)
	c.changed()
	return nil
}

// Restart starts a crashed region again from its data directory; a
// region partly down (a server stopped on its own) is repaired: whatever
// does not run is closed and started again. It returns once both servers
// run; the member rejoins the group when it reaches a quorum (watch its
// Ready in the snapshot). Crash, Restart and Close of one region are
// carried out one after another, each to the end, whoever calls them.
func (c *Cluster) Restart(name string) error {
	if c.IsZone(name) { // zones (zones.go)
		return c.restartZone(name)
	}
	r, err := c.region(name)
	if err != nil {
		return fmt.Errorf("nodes: restart: %w", err)
	}
	if err := r.do(opStart); err != nil {
		if errors.Is(err, ErrClosed) {
			return fmt.Errorf("nodes: restart %s: %w", name, err)
		}
		c.changed()
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
	// A target that has not caught up after many election timeouts gets
	// the members' streams dialled again (see waitReady).
	behindSince := time.Time{}
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
				behindSince = time.Time{}
				actx, cancel := context.WithTimeout(ctx, 3*election)
				err := lm.Server.MoveLeader(actx, uint64(lm.Server.MemberID()), uint64(tm.Server.MemberID()))
				cancel()
				if err == nil {
					continue // confirm with Leader() above
				}
				last = fmt.Errorf("nodes: move leader %s → %s: %w", leader, name, err)
			} else {
				last = fmt.Errorf("nodes: move leader to %s: it has not caught up with leader %s", name, leader)
				if behindSince.IsZero() {
					behindSince = time.Now()
				} else if time.Since(behindSince) > max(3*time.Second, 10*election) {
					c.cfg.Logger.Warn("a member is slow to catch up with the leader: reconnecting the members' streams", "member", name, "leader", leader)
					for _, p := range c.peerProxies {
						p.dropAll()
					}
					behindSince = time.Now()
				}
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
// region (each one's owner ends any proxied exchange into it, hard-stops
// its servers — no leadership hand-off — and closes them; the regions in
// parallel), the fabric and proxies, the subscriptions, and the temporary
// data directory. It returns once every server goroutine it can reach has
// ended. Safe to call twice; Crash and Restart after it fail with ErrClosed.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.lifeMu.Lock()
		c.closed = true
		c.lifeMu.Unlock()
		close(c.stop)
		c.observer.Wait()
		c.closeZones() // zones (zones.go)
		for _, pool := range c.memberPools {
			for _, cli := range pool {
				_ = cli.Close()
			}
		}
		for _, cli := range c.replicaClients {
			_ = cli.Close()
		}
		var wg sync.WaitGroup
		for _, r := range c.regions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = r.do(opStop)
			}()
		}
		wg.Wait()
		c.fabric.closeAll()
		for _, p := range c.peerProxies {
			p.close()
		}
		for _, p := range c.replicaProxies {
			p.close()
		}
		c.closeEndpoints()
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
