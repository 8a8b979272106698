package lab

import (
	"caplab/lab/inventory"
	"caplab/lab/store/consensus"
	"caplab/nodes"
)

// State is the whole lab as GET /api/state answers it (API.md).
type State struct {
	Regions      []RegionState         `json:"regions"`
	Links        []LinkState           `json:"links"`
	Replicated   inventory.QuorumState `json:"replicated"`
	Consensus    ConsensusState        `json:"consensus"` // extension: the consensus store's group commit and caches
	LatencyScale float64               `json:"latencyScale"`
	Speed        float64               `json:"speed,omitempty"` // extension: every link's delay × this (Faults.SetSpeed; 1 at the start)
	Version      int64                 `json:"version"`         // extension: increases with every change
	Counters     []StoreCounter        `json:"counters"`        // extension: outcome counts per store

	ZoneLinks []LinkState `json:"zoneLinks"` // extension (geo): links between the zones of each region
}

// RegionState is one region in State.
type RegionState struct {
	Name      string                     `json:"name"`
	City      string                     `json:"city"`
	Lat       float64                    `json:"lat"`
	Lon       float64                    `json:"lon"`
	Up        bool                       `json:"up"`
	Consensus MemberState                `json:"consensus"`
	Replica   ReplicaState               `json:"replica"`
	Breakers  map[inventory.Store]string `json:"breakers"` // closed, open, half-open
	// ClientURLs (extension): etcd v3 client URLs of this region's member
	// and replica for outside clients, by the region the client stands in
	// (lab/outside.go).
	ClientURLs ClientURLs       `json:"clientUrls"`
	Clock      nodes.ClockState `json:"clock"` // extension: the region's wall clock (offset, drift, skew now)
	Zones      []ZoneState      `json:"zones"` // geo store: the region's zones
	// Agent (extension): the address of the agent the region runs under
	// on another host ("caplab region"); absent when it runs in the lab.
	Agent string `json:"agent,omitempty"`
	// Stale (extension): the lab has lost that agent; the region is shown
	// as it last reported.
	Stale bool `json:"stale,omitempty"`
	// Cache (extension): how far behind the region's cache of the
	// consensus store may be now (cached reads); absent before it is built.
	Cache *inventory.CacheLag `json:"cache,omitempty"`
}

// MemberState is a region's member of the consensus group.
type MemberState struct {
	Role         string `json:"role"` // leader, follower, candidate, pre-candidate, offline
	Term         uint64 `json:"term"`
	Leader       string `json:"leader"` // region name; "" when it knows none
	CommitIndex  uint64 `json:"commitIndex"`
	AppliedIndex uint64 `json:"appliedIndex"`
}

// ReplicaState is a region's replica of the replicated store.
type ReplicaState struct {
	Revision int64 `json:"revision"`
}

// LinkState is one ordered pair of regions in State.
type LinkState struct {
	From      string  `json:"from"`
	To        string  `json:"to"`
	State     string  `json:"state"` // up, cut
	RTTMs     float64 `json:"rttMs"`
	DelayMs   float64 `json:"delayMs"`   // extension: one-way delay applied now (after the latency scale)
	Estimated bool    `json:"estimated"` // extension: RTT estimated from distance, not measured
	Bytes     int64   `json:"bytes"`
	Messages  int64   `json:"messages"`
	// MeasuredRTTMs (extension): the real round trip between the two
	// regions' hosts when they run on separate machines; absent on one.
	// The delay adds only what is missing to reach rttMs × the scale.
	MeasuredRTTMs float64 `json:"measuredRttMs,omitempty"`
	// OverModel (extension): the measured round trip already exceeds the
	// model's, so the link adds no delay and is slower than the lab says.
	OverModel bool `json:"overModel,omitempty"`
}

// StoreCounter counts outcomes per store since the last reset.
type StoreCounter struct {
	Store       inventory.Store `json:"store"`
	OK          int             `json:"ok"`
	SoldOut     int             `json:"soldOut"`
	Unavailable int             `json:"unavailable"`
	FailFast    int             `json:"failFast"`
	Conflict    int             `json:"conflict"`
	Overloaded  int             `json:"overloaded"` // extension: answered at once by a gateway at its limit
	Oversold    int             `json:"oversold"`
	StaleReads  int             `json:"staleReads"`

	Stranded int `json:"stranded,omitempty"` // geo: buys refused because the units left were unreachable
}

// EventType names what an Event carries.
type EventType string

const (
	EventState     EventType = "state"     // State changed (cluster, links, breakers, quorum)
	EventOperation EventType = "operation" // an operation returned (Operation and Outcome set)
	EventFault     EventType = "fault"     // a fault or configuration change was recorded
	EventReset     EventType = "reset"     // the lab was reset; history is empty

	// Recorders only (Lab.Record: the audit log), never subscribers:
	EventGap     EventType = "gap"      // a recording gap began or changed (Gap set; gaps.go)
	EventGeoCall EventType = "geo_call" // a call of the geo store's log (GeoCall set)
)

// Event is what Subscribe delivers. State is set on every event, so a
// subscriber that missed some (slow readers lose events, never block the
// lab) is whole again at the next one.
type Event struct {
	Type      EventType            `json:"type"`
	State     *State               `json:"state,omitempty"`
	Operation *inventory.Operation `json:"operation,omitempty"`
	Outcome   *inventory.Outcome   `json:"outcome,omitempty"`
	Fault     *inventory.Fault     `json:"fault,omitempty"`
	// FirstOpID (reset): the ID the first operation after the reset gets.
	// An answer that overtook the reset's frame (its OpID is at least
	// this) belongs to the fresh lab and stays on the page.
	FirstOpID int `json:"firstOpId,omitempty"`
	// Missed is how many events this subscriber lost, for want of room,
	// just before this one (0: none). A subscriber that shows what happened
	// (a page's outcomes, a timeline) reads the History again.
	Missed int64 `json:"missed,omitempty"`
	// Gap and GeoCall: what the checker needs besides operations, for
	// recorders (EventGap, EventGeoCall).
	Gap     *inventory.RecordingGap `json:"gap,omitempty"`
	GeoCall *inventory.GeoCall      `json:"geoCall,omitempty"`
}

// ConsensusState is the consensus store's configuration and what its
// batching did (an extension of State).
type ConsensusState struct {
	// GroupCommit: a region's concurrent buys of one SKU share one Txn
	// (PUT /api/stores/consensus/config {"groupCommit": …}).
	GroupCommit bool `json:"groupCommit"`
	// Rounds is how many Txns the store's buys sent (each one Raft
	// round) and UnitsSold how many units they sold, since the lab
	// started; RoundsPerUnit is their ratio (0 before the first sale).
	Rounds        int64   `json:"rounds"`
	UnitsSold     int64   `json:"unitsSold"`
	RoundsPerUnit float64 `json:"roundsPerUnit"`
}

func consensusState(s *consensus.Store) ConsensusState {
	rounds, units := s.Rounds()
	st := ConsensusState{GroupCommit: s.GroupCommit(), Rounds: rounds, UnitsSold: units}
	if units > 0 {
		st.RoundsPerUnit = float64(rounds) / float64(units)
	}
	return st
}

func cacheLag(s *consensus.Store, region string) *inventory.CacheLag {
	if l, ok := s.CacheLag(region); ok {
		return &l
	}
	return nil
}
