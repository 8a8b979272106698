package nodes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
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

	remote *remoteSet // regions under agents on other hosts (remote.go); nil: all here

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
			if err := checkLayout(c.dir, lay, cfg.Regions, cfg.BypassFabric, len(cfg.Remote) > 0); err != nil {
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
	if len(cfg.Remote) > 0 { // regions under agents (remote_start.go)
		if err := c.startRemote(ctx, lay); err != nil {
			return nil, err
		}
		return c, nil
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
	return newClientOpts([]string{"http://" + endpoint}, time.Second)
}

// newClientOpts is newClient for endpoints (URLs), with a connect timeout
// and more dial options (a lab's clients of regions on agents dial
// through them: remote_start.go).
func newClientOpts(endpoints []string, connect time.Duration, extra ...grpc.DialOption) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          connect,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Logger:               zap.NewNop(),
		// One quick retry, not a hundred: a member that knows it has no
		// leader answers "no leader" at once, and the caller should hear it
		// instead of the client retrying until the deadline.
		MaxUnaryRetries:    1,
		BackoffWaitBetween: 20 * time.Millisecond,
		DialOptions: append([]grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: connect,
		})}, extra...),
	})
	if err != nil {
		return nil, fmt.Errorf("nodes: client for %s: %w", strings.Join(endpoints, ","), err)
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

func (c *Cluster) region(name string) (*region, error) {
	r, ok := c.byName[name]
	if !ok {
		return nil, c.unknownRegion(name)
	}
	return r, nil
}

// checkRegion fails unless name is a region of this lab (run here or by
// an agent).
func (c *Cluster) checkRegion(name string) error {
	if _, ok := c.byName[name]; ok {
		return nil
	}
	if c.remote != nil {
		if _, ok := c.remote.links[name]; ok {
			return nil
		}
	}
	return c.unknownRegion(name)
}

func (c *Cluster) unknownRegion(name string) error {
	return fmt.Errorf("%w: region %q is not in this lab (regions: %s)", ErrBadOperation, name, strings.Join(c.cfg.Regions, ", "))
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
	if err := c.checkRegion(region); err != nil {
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
	if err := c.checkRegion(region); err != nil {
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
	if err := c.checkRegion(from); err != nil {
		return nil, err
	}
	if err := c.checkRegion(to); err != nil {
		return nil, err
	}
	return c.replicaClients[[2]string{from, to}], nil
}

// IsUp reports whether every server of a region runs.
func (c *Cluster) IsUp(region string) bool {
	if c.remote != nil {
		return c.remote.isUp(region)
	}
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
		if c.remote != nil { // agents stop their regions (remote_state.go)
			c.remote.close()
		}
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
