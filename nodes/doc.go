// Package nodes runs simulated cloud regions on real etcd servers and the
// network between them.
//
// A region (us-east-1, eu-west-1, …, from a catalogue of seven with their
// cities, coordinates and measured round-trip times) hosts two real etcd
// servers started with go.etcd.io/etcd/server/v3/embed:
//
//   - its member of the global consensus group: one Raft group spanning
//     every region, the CP store's home;
//   - its regional replica: a single-member etcd, the AP store's home.
//
// # Zones
//
// Each region also has up to three zones (us-east-1a/b/c, Config.Zones)
// and a regional Raft group of one etcd member per zone — the geo store's
// home (zones.go). The zones of a region are 1.2–1.8 ms apart on links of
// their own per-region Fabric (cut, delay, counters like any link), so
// cutting a region off the world leaves its group whole and one crashed
// zone leaves it a majority. Crash and Restart take zone names; crashing a
// region crashes its zones. RegionalLeaderClient reaches a group's leader
// zone, from another region through proxies on the region fabric.
//
// # The fabric
//
// Every byte between two regions crosses a link owned by the Fabric. A link
// is an ordered pair (from, to) with a state (up or cut), a one-way delay
// (half the pair's round-trip time × the latency scale, optional jitter)
// and byte and message counters.
//
// Consensus traffic: each member advertises the address of a small
// HTTP-aware proxy instead of its own peer listener. etcd names the sending
// member on every peer request (X-Server-From), so the proxy puts each
// exchange on the link it crosses: a raft stream (GET /raft/stream/…)
// carries the listener's messages back to the requester; a pipeline or
// snapshot POST carries the requester's message to the listener. One-way
// cuts are therefore exact at the level of raft messages: "cut A -> B"
// stops every message from A to B and none from B to A.
//
// Replica traffic: a client in region A of region B's replica connects
// through a TCP proxy for the pair (A, B). A TCP connection needs both
// directions, so it lives only while both A→B and B→A are up.
//
// Outside clients: Endpoints lists, for every region a client may stand in
// and every region's member and replica, an etcd v3 client URL (a proxy of
// the same kind as the replica traffic's). etcdctl or any v3 client given
// such a URL talks to that server as a client in that region would: across
// the links between the two regions, or across none for its own region.
//
// A cut closes the connections on the link and refuses new ones; it never
// drops bytes inside a stream (that desynchronises etcd's decoder and
// panics raft, see ETCD-NOTES). A delay is a delay line: each chunk is
// released at its arrival time plus the delay, so delays never add up.
// Counters of a cut link stay flat: the cut is proven, not assumed.
//
// # Timing, faults and state
//
// Raft timing follows the latency model (heartbeat ≈ the largest scaled
// RTT, at least MinTickMs; election = 10 × heartbeat) unless overridden.
// Crash stops a region's servers abruptly (HardStop: no leadership
// hand-off); Restart brings them back from the data directory, so every
// acknowledged write survives. MoveLeader hands leadership to a region.
//
// Each region's lifecycle has one owner goroutine: Crash, Restart and
// Close of a region are carried out one after another, each to the end,
// whoever calls them. A region is Up only while every one of its servers
// runs (etcd may stop one on its own); Restart repairs a region that is
// partly down. Nothing reaches a server while it closes: its proxies point
// at nothing first, and a request gate in its gRPC server (gate.go)
// refuses new requests, ends those inside and waits for them before etcd
// closes its storage — on a crash, on Close and on a stop of etcd's own.
//
// # Data
//
// Config.DataDir keeps the servers' data, and LayoutFile in it records the
// regions and the peer addresses the data knows (etcd stores its peers'
// URLs in its data). Start on a directory used before resumes from it
// (Resumed): the members come back on the same addresses with every
// acknowledged write. A directory made for other regions, by another
// LayoutVersion, or not by caplab is refused with an error naming the
// difference. SaveNote and LoadNote keep a little of the caller's state
// beside the data. Without Fsync, acknowledged writes survive a killed
// process (the page cache still holds them), not a machine crash; with it
// they survive both. Without DataDir a temporary directory named by the
// process id is used and removed by Close; the next Start removes those of
// processes that no longer run. Storage is bounded: periodic compaction
// (30 s of history), 1 MB WAL segments, a raft snapshot every 5,000
// entries, and a defragmentation when a database file is mostly free.
//
// The first election on new data does not wait out raft's randomised
// timeout: Start asks the member that reaches a majority fastest to
// campaign at once (raft's MsgTimeoutNow, what a leadership hand-off
// sends), while no member knows a leader. A resumed lab never asks: a
// server replaying its log can panic on that request (election.go).
//
// State returns a Snapshot (per region: up, role, term, leader, commit
// and applied index, replica revision; per link: state, RTT, counters);
// Subscribe delivers one on every change, keeping only the newest for a
// slow reader. etcd does not expose raft's role: leader and follower come
// from Leader(); with no leader, the member is a candidate once its term
// has moved past the last term in which it knew a leader (only real
// campaigns raise the term), else a pre-candidate (PreVote).
//
// Clocks (clock.go) give each region a wall clock with an offset and a
// drift, set live like a link's delay. Only the lab's own readers of wall
// time use them; etcd's Raft and lease timers run on monotonic time.
//
// # Regions on other hosts
//
// A region can run on a host of its own under a region agent (agent.go,
// "caplab region --name R --listen HOST:PORT --token T"), and a lab
// started with Config.Remote (region → agent address) uses those agents
// for the regions it names; any region it does not name runs in the lab's
// own process under an agent of its own, so every region of such a lab is
// an agent's.
//
// Who owns what. An agent owns its region's servers — the consensus
// member, the replica, the zones and their regional group with its zone
// fabric — its data directory (the servers' data, the layout it was given,
// the lab it belongs to), the proxy in front of its member, the relays
// into its servers, and its copy of the link rules with the counters of
// what crosses them there. The lab owns the rules (the Fabric and the
// zones' fabrics are its decisions), the API and the page, the history,
// the gateways of every region (their clients reach a region's servers
// through the agent of the region they stand in), and its own data
// directory: its certificate authority, its id, the members' addresses,
// notes and the audit log.
//
// The links stay exact across hosts. etcd keeps one peer URL per member,
// the same on every host, so every member is known by 127.0.0.1:<port>
// (the lab picks the ports) and every agent listens on its host's loopback
// on every member's port: its own member's is its peer proxy, every other
// a forwarder that tunnels to that member's agent (hostports.go). The
// proxy of the member that listens sees both directions of each exchange
// by X-Server-From, as on one machine, so an agent enforces every link
// into and out of its region — one-way cuts included, at the level of raft
// messages, without root and without iptables; both agents of a link hold
// its rule, and its counters are the sum of what both counted. Client
// traffic from region A to region B's servers goes lab → A's agent → B's
// agent, and B's agent applies the links A → B and B → A.
//
// Measured links. Every agent pings every other over the same TLS path
// (mesh.go); a pair's round trip is the mean of the two agents' medians.
// A link adds only what is missing to reach the model (RTT × latency
// scale − measured, halved each way, never below zero); a link whose
// measured round trip exceeds the model's says so (LinkStatus.OverModel).
// The raft timing is derived from the larger of the two.
//
// The control connection (wire.go). One TLS 1.3 connection per agent,
// dialled by the lab; the token proves itself on it as an HMAC of keying
// material exported from that TLS session, both ways (trust.go), so it
// never crosses the wire and cannot be replayed or relayed. The first lab
// with the token to take an agent that belongs to no lab enrols it: the
// agent pins the lab's certificate, gets one signed for its own key, and
// from then on takes connections only from holders of certificates that
// lab signed — the lab and its other agents — on its one port (its
// servers listen on loopback only). A lab with another token, or another
// lab with the token (another certificate), is refused with a sentence
// that names why. The lab sends orders (prepare, links, start, crash,
// zone crash and restart, kick, stop) and each answer carries the agent's
// status; the agent also reports on every change and at least every half
// second.
//
// Failure of the machinery. An agent that loses the lab (its control
// connection silent for four seconds) keeps running its region with the
// last link table it was given, and takes the lab back when it calls. The
// lab calls a lost agent at once and then every half second: an agent
// whose host refuses the connection is not running, and its region shows
// crashed — kill -9 of an agent is a region crash; one that does not
// answer shows stale (RegionStatus.Stale: as last reported). Changes to
// links while an agent is out of reach reach the others at once and it
// when it is back. An agent started again resumes its region from its
// data: the lab gives it its layout and the rules, and starts its servers
// unless the lab crashed the region on purpose. A lab refuses an agent of
// another protocol, data layout, etcd or build, one serving another region
// than it was told, and one that holds another layout's data — naming the
// difference. A lab with a data directory leaves its agents their data
// when it stops, and resumes with them; a lab without one (a temporary
// lab) has them delete their region's data and forget it, so the next lab
// with the token may take them.
//
// Usage:
//
//	c, err := nodes.Start(ctx, nodes.Config{LatencyScale: 1})
//	defer c.Close()
//	c.Fabric().Isolate("ap-southeast-1")
//	cli, _ := c.MemberClient("ap-southeast-1") // the region's own member
//
// With regions on other hosts (each started there with "caplab region"):
//
//	c, err := nodes.Start(ctx, nodes.Config{Token: tok,
//		Remote: map[string]string{"eu-west-1": "192.168.1.21:7400", "ap-southeast-1": "192.168.1.22:7400"}})
package nodes
