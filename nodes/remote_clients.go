package nodes

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// A lab whose regions run under agents: its clients of the regions'
// servers, the outside clients' endpoints, and its view of the zones.
// Every client connection goes through the agent of the region the client
// stands in (remote.go), so the link rules apply where they do on one
// machine.

// tunnelHost names a client's path in its endpoint: a client in from of
// to's server (member, replica or a zone).
func tunnelHost(from, to, server string) string { return from + "." + to + "." + server }

// dialTunnel reaches a server of region to for a client standing in
// region from: through from's agent, which carries it on to to's agent
// unless from == to; the links between from and to apply at to's agent.
func (rs *remoteSet) dialTunnel(ctx context.Context, from, to, server string) (net.Conn, error) {
	l := rs.links[from]
	if l == nil {
		return nil, fmt.Errorf("nodes: no region %s", from)
	}
	return dialAgent(ctx, l.addr, rs.tlsConfig, rs.id.pool, from, kindClient, from, to, server)
}

// grpcDial is the clients' dialler: their endpoints name their paths.
func (rs *remoteSet) grpcDial(ctx context.Context, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p := strings.Split(host, ".")
	if len(p) != 3 {
		return nil, fmt.Errorf("nodes: %q is not a lab endpoint", addr)
	}
	return rs.dialTunnel(ctx, p[0], p[1], p[2])
}

// client connects a clientv3 client to servers through the agents.
func (rs *remoteSet) client(from, to string, servers ...string) (*clientv3.Client, error) {
	var eps []string
	for _, s := range servers {
		eps = append(eps, "http://"+tunnelHost(from, to, s)+":2379")
	}
	cli, err := newClientOpts(eps, 2*tunnelDialTimeout, grpc.WithContextDialer(rs.grpcDial))
	if err != nil {
		return nil, err
	}
	rs.throughMu.Lock()
	if rs.through == nil {
		rs.through = map[string][]*clientv3.Client{}
	}
	rs.through[from] = append(rs.through[from], cli)
	rs.throughMu.Unlock()
	return cli, nil
}

// redial is told that region's agent is reachable again: the clients whose
// path starts there try to connect now. While the agent was out of reach
// their dials failed and gRPC backed off (a second and more), so the first
// store calls after the agent was back answered unavailable although
// nothing was wrong any more (TestRegionsOnSeparateHosts, "the lab lost").
//
// Then each client reads once (a serializable Get, which etcd's client
// retries on a fresh connection): a connection that gRPC still holds as
// ready may be dead — the agent closed it while the lab was out of reach,
// and the lab learns so only from the RST its next write draws. That write
// should be this probe, not a person's buy (a buy is not retried: it
// answered unavailable, 1 run in 8 of "the lab lost" after the backoff
// fix above). The probes run together, bounded by redialProbe; the agent
// is called connected after them.
func (rs *remoteSet) redial(region string) {
	rs.throughMu.Lock()
	clients := slices.Clone(rs.through[region])
	rs.throughMu.Unlock()
	for _, cli := range clients {
		if cc := cli.ActiveConnection(); cc != nil {
			cc.ResetConnectBackoff()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), redialProbe)
	defer cancel()
	var wg sync.WaitGroup
	for _, cli := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = cli.Get(ctx, "/caplab-redial-probe", clientv3.WithSerializable(), clientv3.WithCountOnly())
		}()
	}
	wg.Wait()
}

// redialProbe bounds redial's probes.
const redialProbe = 2 * time.Second

// openClients connects the lab's gateways to every region's servers and
// opens the outside clients' endpoints (endpoints.go) — all through the
// agents.
func (rs *remoteSet) openClients() error {
	c := rs.c
	for _, r := range c.cfg.Regions {
		for range MemberPoolSize {
			cli, err := rs.client(r, r, string(ServerMember))
			if err != nil {
				return err
			}
			c.memberPools[r] = append(c.memberPools[r], cli)
		}
		c.memberClients[r] = c.memberPools[r][0]
		for _, to := range c.cfg.Regions {
			cli, err := rs.client(r, to, string(ServerReplica))
			if err != nil {
				return err
			}
			c.replicaClients[[2]string{r, to}] = cli
		}
	}
	zs := c.zones
	for _, g := range zs.groups {
		names := c.Zones(g.region)
		cli, err := rs.client(g.region, g.region, names...)
		if err != nil {
			return err
		}
		g.client = cli
		for _, z := range names {
			zc, err := rs.client(g.region, g.region, z)
			if err != nil {
				return err
			}
			g.zoneCli = append(g.zoneCli, zc)
		}
		for _, from := range c.cfg.Regions {
			if from == g.region {
				continue
			}
			cli, err := rs.client(from, g.region, names...)
			if err != nil {
				return err
			}
			zs.remote[[2]string{from, g.region}] = cli
			for _, z := range names {
				zc, err := rs.client(from, g.region, z)
				if err != nil {
					return err
				}
				zs.remoteZone[[2]string{from, z}] = zc
			}
		}
	}
	c.endpoints = map[endpointKey]*replicaProxy{}
	for _, from := range c.cfg.Regions {
		for _, to := range c.cfg.Regions {
			for _, s := range []Server{ServerMember, ServerReplica} {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					return fmt.Errorf("nodes: client endpoint: %w", err)
				}
				p := newReplicaProxy(from, to, "", ln, c.fabric)
				p.dial = func(ctx context.Context) (net.Conn, error) { return rs.dialTunnel(ctx, from, to, string(s)) }
				c.endpoints[endpointKey{from, to, s}] = p
				go p.serve()
			}
		}
	}
	return nil
}

// zoneSkeleton is the lab's view of the regions' zones: names and the
// zone links' rules (the agents run the members).
func (rs *remoteSet) zoneSkeleton() *zoneSet {
	c := rs.c
	zs := &zoneSet{n: c.cfg.Zones, byRegion: map[string]*regionalGroup{}, byZone: map[string]*zoneMember{},
		remote: map[[2]string]*clientv3.Client{}, remoteZone: map[[2]string]*clientv3.Client{}, remoteProxies: map[[3]string]*replicaProxy{},
		startErr: make(chan error, len(c.cfg.Regions))}
	for _, region := range c.cfg.Regions {
		var names []string
		g := &regionalGroup{region: region, idToZone: map[types.ID]string{}}
		for i := range c.cfg.Zones {
			names = append(names, ZoneName(region, i))
			g.members = append(g.members, &zoneMember{name: ZoneName(region, i), region: region, index: i})
		}
		g.fabric = newFabric(names, c.cfg.LatencyScale, c.changed)
		for _, l := range g.fabric.links {
			l.setRTT(zoneRTTMs(zoneIndex(l.from), zoneIndex(l.to)), c.cfg.LatencyScale)
			l.estimate = false
		}
		g.fabric.push = rs.push
		zs.add(g)
	}
	return zs
}
