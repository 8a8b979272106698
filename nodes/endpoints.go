package nodes

import (
	"fmt"
	"net"
)

// Server names one of a region's two etcd servers.
type Server string

const (
	// ServerMember is the region's member of the consensus group.
	ServerMember Server = "member"
	// ServerReplica is the region's replica of the replicated store.
	ServerReplica Server = "replica"
)

// Endpoint is an etcd v3 client URL for an outside client — etcdctl, any
// v3 client library — that stands in region From and talks to one server
// of region To. Unless From == To its traffic crosses the links From → To
// and To → From like the lab's own cross-region traffic: it is delayed,
// counted, and cut with them (a TCP connection needs both directions, so a
// cut either way closes it and refuses new ones). With From == To it
// crosses no link, like the lab's own gateway talking to its region's
// member.
//
// Every endpoint is a proxy with its own port, fixed for the life of the
// cluster: a crashed region's endpoints refuse connections until it
// restarts, even if its servers come back on other ports.
type Endpoint struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Server Server `json:"server"`
	URL    string `json:"url"`
}

type endpointKey struct {
	from, to string
	server   Server
}

// startEndpoints opens one proxy per (client region, server region,
// server). Called by Start once every server runs.
func (c *Cluster) startEndpoints() error {
	c.endpoints = map[endpointKey]*replicaProxy{}
	for _, from := range c.regions {
		for _, to := range c.regions {
			for _, s := range []Server{ServerMember, ServerReplica} {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					return fmt.Errorf("nodes: client endpoint: %w", err)
				}
				target := to.memberClient
				if s == ServerReplica {
					target = to.replicaClient
				}
				p := newReplicaProxy(from.place.Name, to.place.Name, target, ln, c.fabric)
				c.endpoints[endpointKey{from.place.Name, to.place.Name, s}] = p
				go p.serve()
			}
		}
	}
	return nil
}

// Endpoints lists the client URLs of every region's member and replica as
// seen from every region, ordered by client region, then server region,
// member before replica.
func (c *Cluster) Endpoints() []Endpoint {
	var out []Endpoint
	for _, from := range c.cfg.Regions {
		for _, to := range c.cfg.Regions {
			for _, s := range []Server{ServerMember, ServerReplica} {
				if p := c.endpoints[endpointKey{from, to, s}]; p != nil {
					out = append(out, Endpoint{From: from, To: to, Server: s, URL: "http://" + p.ln.Addr().String()})
				}
			}
		}
	}
	return out
}

// repointEndpoints moves the endpoints into a region to its servers'
// current ports (after a restart moved them).
func (c *Cluster) repointEndpoints(name, memberClient, replicaClient string) {
	for k, p := range c.endpoints {
		if k.to != name {
			continue
		}
		if k.server == ServerMember {
			p.setTarget(memberClient)
		} else {
			p.setTarget(replicaClient)
		}
	}
}

// dropEndpoints ends every outside client connection into a region (it
// crashed).
func (c *Cluster) dropEndpoints(name string) {
	for k, p := range c.endpoints {
		if k.to == name {
			p.dropAll()
		}
	}
}

// closeEndpoints stops every endpoint proxy.
func (c *Cluster) closeEndpoints() {
	for _, p := range c.endpoints {
		p.close()
	}
}
