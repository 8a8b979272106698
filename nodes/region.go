package nodes

import (
	"errors"
	"fmt"
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
// and its regional replica, two real etcd servers. Its lifecycle (start,
// crash, restart) is serialised by mu.
type region struct {
	place Place

	memberPeer, memberClient   string // host:port the member really listens on
	replicaPeer, replicaClient string
	replicaAdvertise           string // the replica's peer URL as its data knows it (fixed once created)
	advertisePeer              string // what the group knows the member by: its proxy unless bypassed
	dir                        string

	cluster   string // initial cluster string shared by all members
	token     string
	tickMs    uint
	elecMs    uint
	noFsync   bool
	zapLogger *zap.Logger

	mu       sync.Mutex
	member   *embed.Etcd
	replica  *embed.Etcd
	memberID types.ID
	started  time.Time // last (re)start, for role derivation
	termSeen uint64    // term when the member last knew a leader
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
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(r.zapLogger.Named(r.place.Name + ".replica"))
	return cfg
}

// start starts both servers and returns without waiting for them to be
// ready (a restarting member is ready only once it reaches a quorum).
func (r *region) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.member != nil {
		return fmt.Errorf("nodes: restart %s: %w", r.place.Name, ErrRegionUp)
	}
	m, err := embed.StartEtcd(r.memberConfig())
	if err != nil {
		return fmt.Errorf("nodes: start %s member: %w", r.place.Name, err)
	}
	rep, err := embed.StartEtcd(r.replicaConfig())
	if err != nil {
		m.Server.HardStop()
		m.Close()
		return fmt.Errorf("nodes: start %s replica: %w", r.place.Name, err)
	}
	r.member, r.replica = m, rep
	r.memberID = m.Server.MemberID()
	r.started = time.Now()
	r.termSeen = m.Server.Term()
	return nil
}

// servers returns the running servers, or nils when down.
func (r *region) servers() (member, replica *embed.Etcd) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.member, r.replica
}

// hardStop stops both servers abruptly: no leadership hand-off, no
// graceful drain — a crash. Data on disk stays.
func (r *region) hardStop(dropConnections func(region string)) error {
	r.mu.Lock()
	m, rep := r.member, r.replica
	r.member, r.replica = nil, nil
	r.mu.Unlock()
	if m == nil {
		return fmt.Errorf("nodes: crash %s: %w", r.place.Name, ErrRegionDown)
	}
	m.Server.HardStop()
	rep.Server.HardStop()
	dropConnections(r.place.Name)
	closeBoth(m, rep)
	return nil
}

// closeBoth closes two stopped servers in parallel.
func closeBoth(a, b *embed.Etcd) {
	var wg sync.WaitGroup
	for _, e := range []*embed.Etcd{a, b} {
		if e == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.Close()
		}()
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
	Name, City   string
	Lat, Lon     float64
	Up           bool
	Ready        bool // the member has joined the group since its last start
	Role         Role
	Term         uint64
	Leader       string // region the member believes leads; "" for none
	CommitIndex  uint64
	AppliedIndex uint64
	ReplicaRev   int64
}

// status reads the region's live state from its servers. etcd does not
// expose raft's role, so it is derived: leader when the member's leader is
// itself, follower when it knows another leader; with no leader, candidate
// once its term has moved past the last term in which it knew a leader
// (only a real campaign raises the term), else pre-candidate (PreVote
// probes do not).
func (r *region) status(regionOf func(types.ID) string) RegionStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := RegionStatus{Name: r.place.Name, City: r.place.City, Lat: r.place.Lat, Lon: r.place.Lon, Role: RoleOffline}
	if r.member == nil {
		return st
	}
	s := r.member.Server
	st.Up = true
	select {
	case <-s.ReadyNotify():
		st.Ready = true
	default:
	}
	st.Term = s.Term()
	st.CommitIndex = s.CommittedIndex()
	st.AppliedIndex = s.AppliedIndex()
	st.ReplicaRev = r.replica.Server.KV().Rev()
	lead := s.Leader()
	switch {
	case lead == 0 && st.Term > r.termSeen:
		st.Role = RoleCandidate
	case lead == 0:
		st.Role = RolePreCandidate
	case lead == s.MemberID():
		st.Role, st.Leader, r.termSeen = RoleLeader, r.place.Name, st.Term
	default:
		st.Role, st.Leader, r.termSeen = RoleFollower, regionOf(lead), st.Term
	}
	return st
}
