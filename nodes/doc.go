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
// Usage:
//
//	c, err := nodes.Start(ctx, nodes.Config{LatencyScale: 1})
//	defer c.Close()
//	c.Fabric().Isolate("ap-southeast-1")
//	cli, _ := c.MemberClient("ap-southeast-1") // the region's own member
package nodes
