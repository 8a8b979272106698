package nodes

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// ErrRegionDown is wrapped when an operation needs a region that is down.
var ErrRegionDown = errors.New("region is down")

// ErrRegionUp is wrapped when restarting a region that is running.
var ErrRegionUp = errors.New("region is already running")

// region is one simulated cloud region: its member of the consensus group
// and its regional replica, two real etcd servers. One goroutine, run, owns
// its lifecycle: start, crash, repair and stop arrive as requests and are
// carried out one after another, each to the end (a crash has closed both
// servers before the next start begins). Readers (status, servers) take mu
// for a consistent view; only the owner changes the servers.
type region struct {
	place Place

	memberPeer, memberClient   string // host:port the member really listens on
	replicaPeer, replicaClient string
	replicaAdvertise           string // the replica's peer URL as its data knows it (fixed once created)
	advertisePeer              string // what the group knows the member by: its proxy unless bypassed
	bypass                     bool   // the member listens where it advertises: its peer port cannot move
	dir                        string

	cluster   string // initial cluster string shared by all members
	token     string
	tickMs    uint
	elecMs    uint
	noFsync   bool
	zapLogger *zap.Logger
	log       *slog.Logger // the cluster's logger

	// Set by the cluster before run starts.
	quiesce func(r *region) // points traffic into the region at nothing before its servers stop
	repoint func(r *region) // points traffic at the region's current ports after a start

	mu       sync.Mutex
	member   *embed.Etcd
	replica  *embed.Etcd
	memberID types.ID
	started  time.Time // last (re)start, for role derivation
	termSeen uint64    // term when the member last knew a leader

	reqs chan lifeReq
	done chan struct{} // closed when run returns
}

// lifeOp is a lifecycle change of a region.
type lifeOp int

const (
	opStart  lifeOp = iota // start whatever is not running (a restart repairs)
	opCrash                // hard-stop and close every server
	opStop                 // like opCrash, then the owner exits (Close)
	opDefrag               // defragment servers whose database is mostly free space
)

type lifeReq struct {
	op    lifeOp
	reply chan error
}

func newRegion(place Place) *region {
	return &region{place: place, reqs: make(chan lifeReq), done: make(chan struct{})}
}

// run is the owner goroutine: it carries out lifecycle requests in order
// until opStop.
func (r *region) run() {
	defer close(r.done)
	for req := range r.reqs {
		var err error
		switch req.op {
		case opStart:
			err = r.doStart()
		case opCrash:
			err = r.doCrash()
		case opDefrag:
			r.doDefrag()
		case opStop:
			_ = r.doCrash()
			req.reply <- nil
			return
		}
		req.reply <- err
	}
}

// do asks the owner for a lifecycle change and waits until it is done.
func (r *region) do(op lifeOp) error {
	reply := make(chan error, 1)
	select {
	case r.reqs <- lifeReq{op, reply}:
	case <-r.done:
		return ErrClosed
	}
	return <-reply
}

func mustURL(hostport string) url.URL {
	return url.URL{Scheme: "http", Host: hostport}
}

func (r *region) memberConfig() *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = r.place.Name
	cfg.Dir = r.dir + "/member"
	cfg.ListenPeerUrls = []url.URL{mustURL(r.memberPeer)}
	cfg.AdvertisePeerUrls = []url.URL{mustURL(r.advertisePeer)}
	cfg.ListenClientUrls = []url.URL{mustURL(r.memberClient)}
	cfg.AdvertiseClientUrls = []url.URL{mustURL(r.memberClient)}
	cfg.InitialCluster = r.cluster
	cfg.InitialClusterToken = r.token
	cfg.ClusterState = embed.ClusterStateFlagNew
	cfg.TickMs = r.tickMs
	cfg.ElectionMs = r.elecMs
	cfg.UnsafeNoFsync = r.noFsync
	cfg.PreVote = true
	boundStorage(cfg)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(r.zapLogger.Named(r.place.Name + ".member"))
	return cfg
}

func (r *region) replicaConfig() *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = r.place.Name + "-replica"
	cfg.Dir = r.dir + "/replica"
	cfg.ListenPeerUrls = []url.URL{mustURL(r.replicaPeer)}
	cfg.AdvertisePeerUrls = []url.URL{mustURL(r.replicaAdvertise)}
	cfg.ListenClientUrls = []url.URL{mustURL(r.replicaClient)}
	cfg.AdvertiseClientUrls = []url.URL{mustURL(r.replicaClient)}
	cfg.InitialCluster = cfg.Name + "=" + "http://" + r.replicaAdvertise
	cfg.InitialClusterToken = r.token + "-" + r.place.Name
	cfg.ClusterState = embed.ClusterStateFlagNew
	cfg.TickMs = 50
	cfg.ElectionMs = 500
	cfg.UnsafeNoFsync = r.noFsync
	boundStorage(cfg)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(r.zapLogger.Named(r.place.Name + ".replica"))
	return cfg
}

// running reports whether a server runs: started and its raft loop not
// ended (etcd stops a server on its own after a fatal error).
func running(e *embed.Etcd) bool {
	if e == nil {
		return false
	}
	select {
	case <-e.Server.StopNotify():
		return false
	default:
		return true
	}
}

// doStart starts whatever of the region is not running and returns
// without waiting for readiness (a restarting member is ready only once it
// reaches a quorum). A server that stopped on its own is closed and
// started again: a restart repairs. Owner only.
func (r *region) doStart() error {
	r.mu.Lock()
	m, rep := r.member, r.replica
	r.mu.Unlock()
	if running(m) && running(rep) {
		return fmt.Errorf("nodes: restart %s: %w", r.place.Name, ErrRegionUp)
	}
	// A dead server still holds its data directory's locks: close it first.
	var dead []*embed.Etcd
	if m != nil && !running(m) {
		dead, m = append(dead, m), nil
	}
	if rep != nil && !running(rep) {
		dead, rep = append(dead, rep), nil
	}
	if len(dead) > 0 {
		r.mu.Lock()
		r.member, r.replica = m, rep
		r.mu.Unlock()
		r.quiesce(r)
		closeAll(dead...)
	}
	if m == nil {
		e, err := r.startWithRetry(r.memberConfig, true)
		if err != nil {
			return fmt.Errorf("nodes: start %s member: %w", r.place.Name, err)
		}
		r.mu.Lock()
		r.member = e
		r.memberID = e.Server.MemberID()
		r.started = time.Now()
		r.termSeen = e.Server.Term()
		r.mu.Unlock()
	}
	if rep == nil {
		e, err := r.startWithRetry(r.replicaConfig, false)
		if err != nil {
			// The member runs: State shows the region down until a restart
			// repairs the replica.
			return fmt.Errorf("nodes: start %s replica: %w", r.place.Name, err)
		}
		r.mu.Lock()
		r.replica = e
		r.mu.Unlock()
	}
	r.repoint(r)
	return nil
}

// startWithRetry starts one server; when another process took one of its
// ports while the region was down, it moves to new ports and tries again
// (the member's advertised peer address, its proxy, stays).
func (r *region) startWithRetry(config func() *embed.Config, member bool) (*embed.Etcd, error) {
	e, err := startGated(config(), r.log)
	for try := 0; addrInUse(err) && try < 5; try++ {
		if err := r.movePorts(member); err != nil {
			return nil, err
		}
		r.repoint(r)
		e, err = startGated(config(), r.log)
	}
	return e, err
}

// startGated starts one etcd server behind a new requestGate, so that its
// storage never closes under a request (gate.go).
func startGated(cfg *embed.Config, log *slog.Logger) (*embed.Etcd, error) {
	g := newRequestGate(cfg.Name, log)
	cfg.GRPCAdditionalServerOptions = append(cfg.GRPCAdditionalServerOptions, g.serverOptions()...)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	g.guard(e)
	return e, nil
}

// servers returns the servers, or nils when down.
func (r *region) servers() (member, replica *embed.Etcd) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.member, r.replica
}

// up reports whether every server of the region runs.
func (r *region) up() bool {
	m, rep := r.servers()
	return running(m) && running(rep)
}

// doCrash stops every server abruptly: no leadership hand-off, no graceful
// drain — a crash. Data on disk stays. It returns once both are closed.
// Owner only.
func (r *region) doCrash() error {
	r.mu.Lock()
	m, rep := r.member, r.replica
	r.member, r.replica = nil, nil
	r.mu.Unlock()
	if m == nil && rep == nil {
		return fmt.Errorf("nodes: crash %s: %w", r.place.Name, ErrRegionDown)
	}
	// Nothing may reach a server whose storage is closing: etcd's peer
	// /version handler on a closed backend panics once and then blocks
	// forever on the lock it left behind.
	r.quiesce(r)
	for _, e := range []*embed.Etcd{m, rep} {
		if e != nil {
			for _, p := range e.Peers {
				_ = p.Listener.Close()
			}
		}
	}
	hardStopAll(m, rep)
	r.quiesce(r)
	closeAll(m, rep)
	return nil
}

// hardStopAll stops servers abruptly, in parallel.
func hardStopAll(es ...*embed.Etcd) {
	eachParallel(es, func(e *embed.Etcd) { e.Server.HardStop() })
}

// closeAll closes servers in parallel (after a hard stop: no hand-off).
func closeAll(es ...*embed.Etcd) {
	eachParallel(es, func(e *embed.Etcd) {
		e.Server.HardStop()
		e.Close()
	})
}

// eachParallel runs f on every server that is not nil, in parallel, and
// returns once all are done.
func eachParallel(es []*embed.Etcd, f func(*embed.Etcd)) {
	var wg sync.WaitGroup
	for _, e := range es {
		if e != nil {
			wg.Go(func() { f(e) })
		}
	}
	wg.Wait()
}

// Role is a consensus member's role as the lab shows it.
type Role string

const (
	RoleLeader       Role = "leader"
	RoleFollower     Role = "follower"
	RoleCandidate    Role = "candidate"
	RolePreCandidate Role = "pre-candidate"
	RoleOffline      Role = "offline"
)

// RegionStatus is one region in a Snapshot.
type RegionStatus struct {
	Name, City string
	Lat, Lon   float64
	// Up: every server of the region runs. A region whose member or
	// replica stopped (crashed, or failed on its own) is not up; Restart
	// repairs it.
	Up           bool
	MemberUp     bool // its consensus member runs
	ReplicaUp    bool // its replica runs
	Ready        bool // the member has joined the group since its last start
	Role         Role
	Term         uint64
	Leader       string // region the member believes leads; "" for none
	CommitIndex  uint64
	AppliedIndex uint64
	ReplicaRev   int64
	// Agent is the address of the agent the region runs under when it
	// runs on another host (caplab region); "" when it runs here.
	Agent string
	// Stale: the lab has lost the region's agent (its control connection
	// dropped and the agent has not answered since, or refuses this lab):
	// what is shown is what it last reported. An agent whose host
	// refuses the connection is not running: its region is down, not
	// stale.
	Stale bool
}

// status reads the region's live state from its servers. etcd does not
// expose raft's role, so it is derived: leader when the member's leader is
// itself, follower when it knows another leader; with no leader, candidate
// once its term has moved past the last term in which it knew a leader
// (only a real campaign raises the term), else pre-candidate (PreVote
// probes do not).
func (r *region) status(regionOf func(types.ID) string) RegionStatus {
	// The lock only guards the fields: etcd's own calls below (the
	// replica's revision takes its store's lock, which its writes hold)
	// run outside it, so IsUp — asked on every operation — never waits
	// behind a State being built.
	r.mu.Lock()
	member, replica, termSeen := r.member, r.replica, r.termSeen
	r.mu.Unlock()
	st := RegionStatus{Name: r.place.Name, City: r.place.City, Lat: r.place.Lat, Lon: r.place.Lon, Role: RoleOffline}
	st.MemberUp, st.ReplicaUp = running(member), running(replica)
	st.Up = st.MemberUp && st.ReplicaUp
	if st.ReplicaUp {
		st.ReplicaRev = replica.Server.KV().Rev()
	}
	if !st.MemberUp {
		return st
	}
	s := member.Server
	select {
	case <-s.ReadyNotify():
		st.Ready = true
	default:
	}
	st.Term = s.Term()
	st.CommitIndex = s.CommittedIndex()
	st.AppliedIndex = s.AppliedIndex()
	lead := s.Leader()
	switch {
	case lead == 0 && st.Term > termSeen:
		st.Role = RoleCandidate
	case lead == 0:
		st.Role = RolePreCandidate
	case lead == s.MemberID():
		st.Role, st.Leader = RoleLeader, r.place.Name
	default:
		st.Role, st.Leader = RoleFollower, regionOf(lead)
	}
	if lead != 0 && st.Term != termSeen {
		r.mu.Lock()
		if r.member == member { // not restarted meanwhile
			r.termSeen = st.Term
		}
		r.mu.Unlock()
	}
	return st
}
