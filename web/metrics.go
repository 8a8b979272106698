package web

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"caplab/lab"
	"caplab/lab/guard"
	"caplab/lab/inventory"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics serves GET /metrics in Prometheus' text format from the lab's
// own registry. etcd registers its collectors in Prometheus' global
// registry, where the several members of one process overwrite each
// other's gauges (ETCD-NOTES), so the lab never uses it.
//
// Two sources feed it:
//   - per-operation counters and latency histograms, and fault counters,
//     from a subscription to the lab's events (lab.Subscribe): nothing on
//     the lab's hot path knows about metrics. The lab drops events only for
//     a subscriber 256 events behind; this reader does nothing but
//     increment counters, so it keeps up — and if it ever does not, the
//     events it lost are counted (caplab_metrics_missed_events_total);
//   - everything else (regions, roles, terms and leaders, links, breakers,
//     quorum, audit counts) is read from lab.State() at scrape time by a
//     collector, so it is as fresh as the scrape.
//
// Outcome kinds and fault kinds are label values taken from the events as
// they come: a new kind (say "overloaded") needs no change here.
type metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	ops     *prometheus.CounterVec
	latency *prometheus.HistogramVec
	faults  *prometheus.CounterVec
	resets  prometheus.Counter
	missed  prometheus.Counter

	unsub func()
	done  chan struct{}
	once  sync.Once
}

// leaderSource is implemented by a lab that can say which region leads
// the consensus group with a majority's agreement (*lab.Lab does).
type leaderSource interface{ Leader() string }

func newMetrics(l Lab) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), done: make(chan struct{})}
	m.ops = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "caplab_operations_total",
		Help: "Operations answered, by store, region, operation (stock, buy, read) and outcome (ok, sold_out, unavailable, fail_fast, conflict, …).",
	}, []string{"store", "region", "op", "outcome"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "caplab_operation_duration_seconds",
		Help:    "Latency of operations as the buyer saw it (call to answer), by store, region, operation and outcome.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms … 16 s
	}, []string{"store", "region", "op", "outcome"})
	m.faults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "caplab_faults_total",
		Help: "Faults and configuration changes recorded (cut, heal, partition, latency, crash, restart, lead, quorum, reset, …), by kind.",
	}, []string{"kind"})
	m.resets = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "caplab_resets_total",
		Help: "Lab resets (history and the audit counts start again; these counters do not).",
	})
	m.missed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "caplab_metrics_missed_events_total",
		Help: "Events (operations, faults, resets) this reader lost because it fell 256 behind the lab: the counters above are short by at most this.",
	})
	var leader func() string
	if ls, ok := l.(leaderSource); ok {
		leader = ls.Leader
	}
	m.reg.MustRegister(m.ops, m.latency, m.faults, m.resets, m.missed,
		&stateCollector{state: l.State, leader: leader},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
	events, unsub := l.Subscribe()
	m.unsub = unsub
	go m.run(events)
	return m
}

// run counts operations and faults until the subscription ends.
func (m *metrics) run(events <-chan lab.Event) {
	defer close(m.done)
	for e := range events {
		m.missed.Add(float64(e.Missed))
		switch e.Type {
		case lab.EventOperation:
			if e.Operation == nil {
				continue
			}
			op := e.Operation
			labels := []string{string(op.Store), op.Region, string(op.Op), string(op.Outcome)}
			m.ops.WithLabelValues(labels...).Inc()
			m.latency.WithLabelValues(labels...).Observe(op.Return.Sub(op.Call).Seconds())
		case lab.EventFault:
			if e.Fault != nil {
				m.faults.WithLabelValues(string(e.Fault.Kind)).Inc()
			}
		case lab.EventReset:
			m.resets.Inc()
		}
	}
}

func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.handler.ServeHTTP(w, r)
}

// close ends the subscription and waits for the reader.
func (m *metrics) close() {
	m.once.Do(func() {
		m.unsub()
		<-m.done
	})
}

// stateCollector turns lab.State into gauges and counters at scrape time.
type stateCollector struct {
	state  func() lab.State
	leader func() string // nil: derived from the members' roles
}

var (
	descRegionUp = prometheus.NewDesc("caplab_region_up",
		"1 while the region's servers run, 0 when it is crashed.", []string{"region"}, nil)
	descMemberRole = prometheus.NewDesc("caplab_member_role",
		"1 for the role the region's consensus member has now (leader, follower, candidate, pre-candidate, offline).",
		[]string{"group", "region", "role"}, nil)
	descMemberTerm = prometheus.NewDesc("caplab_member_term",
		"Raft term of the region's consensus member.", []string{"group", "region"}, nil)
	descMemberCommit = prometheus.NewDesc("caplab_member_commit_index",
		"Raft commit index of the region's consensus member.", []string{"group", "region"}, nil)
	descMemberApplied = prometheus.NewDesc("caplab_member_applied_index",
		"Raft applied index of the region's consensus member.", []string{"group", "region"}, nil)
	descGroupLeader = prometheus.NewDesc("caplab_group_leader",
		"1 for the region that leads the group with a majority's agreement; no series while it has no leader.",
		[]string{"group", "leader"}, nil)
	descGroupHasLeader = prometheus.NewDesc("caplab_group_has_leader",
		"1 while the group has a leader a majority agrees on, else 0.", []string{"group"}, nil)
	descGroupTerm = prometheus.NewDesc("caplab_group_term",
		"Highest Raft term among the group's running members.", []string{"group"}, nil)
	descReplicaRev = prometheus.NewDesc("caplab_replica_revision",
		"etcd revision of the region's replica of the replicated store (a single-member group that leads itself).",
		[]string{"region"}, nil)
	descLinkUp = prometheus.NewDesc("caplab_link_up",
		"1 while the link from → to carries traffic, 0 while it is cut.", []string{"from", "to"}, nil)
	descLinkBytes = prometheus.NewDesc("caplab_link_bytes_total",
		"Bytes the link from → to carried.", []string{"from", "to"}, nil)
	descLinkMessages = prometheus.NewDesc("caplab_link_messages_total",
		"Chunks the link from → to carried (≈ raft message batches, RPC frames).", []string{"from", "to"}, nil)
	descLinkDelay = prometheus.NewDesc("caplab_link_delay_seconds",
		"One-way delay the link from → to applies now (after the latency scale).", []string{"from", "to"}, nil)
	descBreaker = prometheus.NewDesc("caplab_breaker_state",
		"1 for the state the circuit breaker of (region, store) is in (closed, open, half-open).",
		[]string{"region", "store", "state"}, nil)
	descQuorum = prometheus.NewDesc("caplab_replicated_quorum",
		"The replicated store's N, W and R.", []string{"param"}, nil)
	descOversold = prometheus.NewDesc("caplab_oversold_units",
		"Units sold beyond the stock, by store, since the last reset (the auditor's count).", []string{"store"}, nil)
	descStale = prometheus.NewDesc("caplab_stale_reads",
		"Stale reads, by store, since the last reset (the auditor's count).", []string{"store"}, nil)
	descLatencyScale = prometheus.NewDesc("caplab_latency_scale",
		"The factor every link delay is multiplied by (1 = real round trips).", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRegionUp, descMemberRole, descMemberTerm, descMemberCommit,
		descMemberApplied, descGroupLeader, descGroupHasLeader, descGroupTerm, descReplicaRev, descLinkUp,
		descLinkBytes, descLinkMessages, descLinkDelay, descBreaker, descQuorum, descOversold, descStale,
		descLatencyScale} {
		ch <- d
	}
}

// consensusGroup names the one Raft group spanning every region.
const consensusGroup = "consensus"

var memberRoles = []string{"leader", "follower", "candidate", "pre-candidate", "offline"}

var breakerStates = []string{guard.BreakerClosed, guard.BreakerOpen, guard.BreakerHalfOpen}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.state()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	var maxTerm uint64
	leader := ""
	for _, r := range st.Regions {
		gauge(descRegionUp, flag(r.Up), r.Name)
		role := r.Consensus.Role
		for _, known := range memberRoles {
			gauge(descMemberRole, flag(role == known), consensusGroup, r.Name, known)
		}
		if role != "" && !slices.Contains(memberRoles, role) { // a role added later still shows
			gauge(descMemberRole, 1, consensusGroup, r.Name, role)
		}
		gauge(descMemberTerm, float64(r.Consensus.Term), consensusGroup, r.Name)
		gauge(descMemberCommit, float64(r.Consensus.CommitIndex), consensusGroup, r.Name)
		gauge(descMemberApplied, float64(r.Consensus.AppliedIndex), consensusGroup, r.Name)
		gauge(descReplicaRev, float64(r.Replica.Revision), r.Name)
		maxTerm = max(maxTerm, r.Consensus.Term)
		if role == "leader" && leader == "" {
			leader = r.Name
		}
		for _, store := range inventory.Stores {
			now := r.Breakers[store]
			for _, known := range breakerStates {
				gauge(descBreaker, flag(now == known), r.Name, string(store), known)
			}
		}
	}
	if c.leader != nil {
		leader = c.leader()
	}
	gauge(descGroupHasLeader, flag(leader != ""), consensusGroup)
	if leader != "" {
		gauge(descGroupLeader, 1, consensusGroup, leader)
	}
	gauge(descGroupTerm, float64(maxTerm), consensusGroup)
	for _, k := range st.Links {
		gauge(descLinkUp, flag(k.State == "up"), k.From, k.To)
		counter(descLinkBytes, float64(k.Bytes), k.From, k.To)
		counter(descLinkMessages, float64(k.Messages), k.From, k.To)
		gauge(descLinkDelay, k.DelayMs/1000, k.From, k.To)
	}
	gauge(descQuorum, float64(st.Replicated.N), "n")
	gauge(descQuorum, float64(st.Replicated.W), "w")
	gauge(descQuorum, float64(st.Replicated.R), "r")
	for _, sc := range st.Counters {
		gauge(descOversold, float64(sc.Oversold), string(sc.Store))
		gauge(descStale, float64(sc.StaleReads), string(sc.Store))
	}
	gauge(descLatencyScale, st.LatencyScale)
}
