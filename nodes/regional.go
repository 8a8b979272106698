package nodes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// Regional groups as the rest of the lab sees them: names, clients, the
// agreed leader, state for snapshots, and zone faults (crash, restart).
// Their layout and start-up are in zones.go.

// IsZone reports whether name is a zone of this lab (us-east-1a).
func (c *Cluster) IsZone(name string) bool {
	if c.zones == nil {
		return false
	}
	_, ok := c.zones.byZone[name]
	return ok
}

// ZoneRegion is the region a zone belongs to ("" if name is no zone).
func (c *Cluster) ZoneRegion(name string) string {
	if !c.IsZone(name) {
		return ""
	}
	return c.zones.byZone[name].region
}

// Zones lists a region's zones in order.
func (c *Cluster) Zones(region string) []string {
	g, ok := c.zones.byRegion[region]
	if !ok {
		return nil
	}
	var out []string
	for _, z := range g.members {
		out = append(out, z.name)
	}
	return out
}

// ZonesPerRegion is how many zones (members of its regional group) each
// region has.
func (c *Cluster) ZonesPerRegion() int { return c.zones.n }

// ZoneFabric is the network between a region's zones.
func (c *Cluster) ZoneFabric(region string) (*Fabric, error) {
	g, ok := c.zones.byRegion[region]
	if !ok {
		return nil, c.checkRegion(region)
	}
	return g.fabric, nil
}

// ResetZoneLinks brings every zone link up at its model round trip.
func (c *Cluster) ResetZoneLinks() {
	for _, g := range c.zones.groups {
		g.fabric.HealAll()
		for _, l := range g.fabric.links {
			l.setRTT(zoneRTTMs(zoneIndex(l.from), zoneIndex(l.to)), g.fabric.scale)
			l.setJitter(0)
		}
	}
	if c.remote != nil {
		c.remote.push()
	}
	c.changed()
}

// RegionalClient is a client in region from of region to's regional group
// (every zone's member is an endpoint). Unless from == to its traffic
// crosses the region fabric's links from → to and back. It stays valid
// across crashes and restarts.
func (c *Cluster) RegionalClient(from, to string) (*clientv3.Client, error) {
	if err := c.checkRegion(from); err != nil {
		return nil, err
	}
	if err := c.checkRegion(to); err != nil {
		return nil, err
	}
	if from == to {
		return c.zones.byRegion[to].client, nil
	}
	return c.zones.remote[[2]string{from, to}], nil
}

// RegionalLeaderClient waits until region to's group has an agreed leader
// and returns a client in region from of that leader zone's member, and
// the zone. Sending to the leader itself means a write is never forwarded
// to a leader that has just crashed (a follower that still believes in it
// would hold the request until its deadline). It fails when ctx ends
// first: no majority of to's zones is up and connected.
func (c *Cluster) RegionalLeaderClient(ctx context.Context, from, to string) (*clientv3.Client, string, error) {
	if _, err := c.RegionalClient(from, to); err != nil {
		return nil, "", err
	}
	g := c.zones.byRegion[to]
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if leader := c.RegionalLeader(to); leader != "" {
			z := c.zones.byZone[leader]
			if from == to {
				return g.zoneCli[z.index], leader, nil
			}
			return c.zones.remoteZone[[2]string{from, leader}], leader, nil
		}
		select {
		case <-ctx.Done():
			return nil, "", fmt.Errorf("nodes: the regional group of %s has no leader: %w", to, ctx.Err())
		case <-t.C:
		}
	}
}

// RegionalLeader is the zone whose member leads region's group with the
// agreement of a majority of its members reachable both ways, or "".
func (c *Cluster) RegionalLeader(region string) string {
	g, ok := c.zones.byRegion[region]
	if !ok {
		return ""
	}
	st := map[string]ZoneStatus{}
	for _, z := range g.members {
		st[z.name] = c.zoneStatus(g, z)
	}
	for name, cand := range st {
		if cand.Role != RoleLeader {
			continue
		}
		votes := 0
		for voter, s := range st {
			if s.Leader == name && s.Term == cand.Term && (voter == name || (g.fabric.Up(name, voter) && g.fabric.Up(voter, name))) {
				votes++
			}
		}
		if votes > len(g.members)/2 {
			return name
		}
	}
	return ""
}

// WaitRegionalLeaders waits until every regional group of a running region
// has a leader agreed by a majority.
func (c *Cluster) WaitRegionalLeaders(ctx interface {
	Done() <-chan struct{}
	Err() error
}) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		missing := ""
		for _, g := range c.zones.groups {
			if c.IsUp(g.region) && c.RegionalLeader(g.region) == "" {
				missing = g.region
				break
			}
		}
		if missing == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes: regional group of %s has no leader: %w", missing, ctx.Err())
		case <-t.C:
		}
	}
}

// zoneStatus is a zone's member's state now.
func (c *Cluster) zoneStatus(g *regionalGroup, z *zoneMember) ZoneStatus {
	if c.remote != nil {
		return c.remote.zoneStatus(z)
	}
	return z.status(g.zoneOf)
}

// zoneState reads every zone and zone link for a Snapshot.
func (c *Cluster) zoneState() ([]ZoneStatus, []LinkStatus) {
	if c.zones == nil {
		return nil, nil
	}
	var zs []ZoneStatus
	var ls []LinkStatus
	for _, g := range c.zones.groups {
		for _, z := range g.members {
			zs = append(zs, z.status(g.zoneOf))
		}
		ls = append(ls, g.fabric.Links()...)
	}
	return zs, ls
}

// crashZone stops one zone's member abruptly.
func (c *Cluster) crashZone(name string) error {
	release, err := c.alive()
	if err != nil {
		return fmt.Errorf("nodes: crash %s: %w", name, err)
	}
	defer release()
	z := c.zones.byZone[name]
	if c.remote != nil { // its agent crashes it
		return c.remote.zoneOrder(ctlCrashZone, name)
	}
	if !c.IsUp(z.region) {
		return fmt.Errorf("nodes: crash %s: its region %s is down: %w", name, z.region, ErrRegionDown)
	}
	g := c.zones.byRegion[z.region]
	e := g.crashMember(z, c.dropRemoteZone)
	if e == nil {
		return fmt.Errorf("nodes: crash %s: zone is down: %w", name, ErrRegionDown)
	}
	e.Close()
	c.changed()
	return nil
}

// crashMember stops a zone's member abruptly and returns its server to be
// closed (nil if it was not running). Its peer proxy points at nothing
// first, and every exchange through it ends: a peer request (etcd's
// /version) that reaches a server whose backend is closing panics while
// holding the backend's lock, and every later one then blocks forever — a
// goroutine that outlives Close (issue 9 item 4). dropOther ends the
// connections into the zone that do not cross its proxy. restartMember
// points the proxy back.
func (g *regionalGroup) crashMember(z *zoneMember, dropOther func(zone string)) *embed.Etcd {
	if z.server() == nil {
		return nil
	}
	if z.index < len(g.proxies) {
		g.proxies[z.index].setTarget("")
		g.proxies[z.index].dropAll()
	}
	e := z.hardStop()
	if e == nil {
		return nil
	}
	if z.index < len(g.proxies) {
		g.proxies[z.index].dropAll()
	}
	if dropOther != nil {
		dropOther(z.name)
	}
	return e
}

// dropRemoteZone ends every connection of another region's gateway into
// a zone's member.
func (c *Cluster) dropRemoteZone(zone string) {
	for k, p := range c.zones.remoteProxies {
		if k[2] == zone {
			p.dropAll()
		}
	}
}

// crashRegionZones stops every running zone of a crashed region.
func (c *Cluster) crashRegionZones(region string) {
	if g, ok := c.zones.byRegion[region]; ok {
		g.crashAll(c.dropRemoteZone)
	}
}

// crashAll stops every running member of the group abruptly and closes
// them.
func (g *regionalGroup) crashAll(dropOther func(zone string)) {
	var wg sync.WaitGroup
	for _, z := range g.members {
		if e := g.crashMember(z, dropOther); e != nil {
			wg.Go(e.Close)
		}
	}
	wg.Wait()
}

// restartZone starts a crashed zone's member again from its data.
func (c *Cluster) restartZone(name string) error {
	release, err := c.alive()
	if err != nil {
		return fmt.Errorf("nodes: restart %s: %w", name, err)
	}
	defer release()
	z := c.zones.byZone[name]
	if c.remote != nil { // its agent starts it
		return c.remote.zoneOrder(ctlStartZone, name)
	}
	if !c.IsUp(z.region) {
		return fmt.Errorf("nodes: restart %s: its region %s is down (restart the region): %w", name, z.region, ErrRegionDown)
	}
	if err := c.zones.byRegion[z.region].restartMember(z, c.zoneMoved); err != nil {
		return err
	}
	c.changed()
	return nil
}

// zoneMoved points the clients of a zone's member and the other regions'
// proxies into it at its new client port.
func (c *Cluster) zoneMoved(z *zoneMember) {
	g := c.zones.byRegion[z.region]
	if g.client != nil {
		g.client.SetEndpoints(g.endpoints()...)
	}
	if z.index < len(g.zoneCli) {
		g.zoneCli[z.index].SetEndpoints("http://" + z.client)
	}
	for k, p := range c.zones.remoteProxies {
		if k[2] == z.name {
			p.setTarget(z.client)
		}
	}
}

// restartMember starts one zone's member, moving its listeners if another
// process took a port while it was down (moved, if not nil, then points
// what talks to its client port at the new one).
func (g *regionalGroup) restartMember(z *zoneMember, moved func(*zoneMember)) error {
	if !g.bypass && z.index < len(g.proxies) {
		g.proxies[z.index].setTarget(z.peer) // crashMember pointed it at nothing
	}
	err := z.start()
	for try := 0; addrInUse(err) && !g.bypass && try < 5; try++ {
		if err := z.pickPorts(); err != nil {
			return err
		}
		g.proxies[z.index].setTarget(z.peer)
		if moved != nil {
			moved(z)
		}
		err = z.start()
	}
	return err
}

// restartRegionZones starts every zone of a restarted region that is down.
func (c *Cluster) restartRegionZones(region string) error {
	if g, ok := c.zones.byRegion[region]; ok {
		return g.restartDown(c.zoneMoved)
	}
	return nil
}

// restartDown starts every member of the group that is down, one after
// another. Each started member's view of the group names every member's
// id (learn), before the next one dials it: the proxies attribute every
// exchange from then on.
func (g *regionalGroup) restartDown(moved func(*zoneMember)) error {
	for _, z := range g.members {
		if z.server() != nil {
			continue
		}
		if err := g.restartMember(z, moved); err != nil {
			return err
		}
		g.learn(z)
	}
	return nil
}

// ZoneUp reports whether a zone's member runs.
func (c *Cluster) ZoneUp(name string) bool {
	z, ok := c.zones.byZone[name]
	if ok && c.remote != nil {
		return c.remote.zoneStatus(z).Up
	}
	return ok && z.server() != nil
}

// checkZones validates Config.Zones.
func checkZones(n int) error {
	if n < 1 || n > MaxZones {
		return fmt.Errorf("nodes: a region has 1 to %d zones (got %d)", MaxZones, n)
	}
	return nil
}

// zoneAddrsFile keeps the zone proxies' addresses in the data directory.
const zoneAddrsFile = "zones.json"

// loadZoneAddrs reads the saved addresses, zone → host:port (none for a
// new data directory).
func loadZoneAddrs(dir string) (map[string]string, error) {
	out := map[string]string{}
	raw, err := os.ReadFile(filepath.Join(dir, zoneAddrsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nodes: data dir: %w", err)
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("nodes: data dir %s: %s is damaged (%v); move the directory away or start with another --data-dir", dir, zoneAddrsFile, err)
	}
	return out, nil
}

// checkZoneAddrs compares the zones a resumed data directory was made
// with to the zones asked for: a regional group's members are fixed in
// its data, so a group of three started as one (or the reverse) would
// never elect a leader. A directory made before zones existed has none
// saved and gets new groups.
func checkZoneAddrs(dir string, saved map[string]string, regions []string, n int) error {
	if len(saved) == 0 {
		return nil
	}
	for _, r := range regions {
		have := 0
		for i := range MaxZones {
			if saved[ZoneName(r, i)] != "" {
				have++
			}
		}
		if have != n {
			return fmt.Errorf("nodes: data dir %s was made with %d zone(s) per region (%s's regional group has %d member(s)), this lab asks for %d: start with --zones %d, or use another --data-dir",
				dir, have, r, have, n, have)
		}
	}
	return nil
}

// saveZoneAddrs records every zone's known address, atomically, before
// any zone's member writes data.
func saveZoneAddrs(dir string, zones map[string]*zoneMember) error {
	m := map[string]string{}
	for name, z := range zones {
		m[name] = z.advertise
	}
	raw, _ := json.Marshal(m)
	if err := writeFileAtomic(filepath.Join(dir, zoneAddrsFile), raw, true); err != nil {
		return fmt.Errorf("nodes: zones: %w", err)
	}
	return nil
}

// listenProxy listens on addr when given (a resumed zone: its address is
// fixed in its group's data, so a taken port is an error), else on a new
// port.
func listenProxy(addr string) (net.Listener, error) {
	if addr != "" {
		return net.Listen("tcp", addr)
	}
	return net.Listen("tcp", "127.0.0.1:0")
}
