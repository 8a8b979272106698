package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"caplab/lab/inventory"
)

// --- handlers of the network, regions, quorum and reset: each answers the
// State after the change.

func (s *Server) handleState(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("at") {
		s.handleStateAt(w, r) // replay.go: the State as it was at T
		return
	}
	writeJSON(w, http.StatusOK, s.lab.State())
}

// answerState finishes a mutation: err, or the State after it.
func (s *Server) answerState(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.lab.State())
}

func (s *Server) handlePartition(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Groups [][]string `json:"groups"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkGroups(req.Groups); err != nil {
		s.fail(w, r, err)
		return
	}
	s.answerState(w, r, s.lab.Faults().Partition(req.Groups))
}

func (s *Server) handleHeal(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	s.answerState(w, r, s.lab.Faults().HealAll())
}

// handleBridge (extension): the other regions split into two halves that
// reach each other only through via, in one step (no half-applied state).
func (s *Server) handleBridge(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Via string `json:"via"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.region(req.Via); err != nil {
		s.fail(w, r, err)
		return
	}
	if n := len(s.lab.Regions()); n < 3 {
		s.fail(w, r, badRequest("A bridge needs at least 3 regions; this lab has %d.", n))
		return
	}
	s.answerState(w, r, s.lab.Faults().Bridge(req.Via))
}

func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From   string `json:"from"`
		To     string `json:"to"`
		State  string `json:"state"`
		OneWay bool   `json:"oneWay"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkPair(req.From, req.To); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.State != "up" && req.State != "cut" {
		s.fail(w, r, badRequest("\"state\" must be \"up\" or \"cut\", not %s.", inventory.Echo(req.State)))
		return
	}
	s.answerState(w, r, s.lab.Faults().SetLink(req.From, req.To, req.State == "up", req.OneWay))
}

func (s *Server) handleLatency(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From   string   `json:"from"`
		To     string   `json:"to"`
		RTTMs  *float64 `json:"rttMs"`
		OneWay bool     `json:"oneWay"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkPair(req.From, req.To); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.RTTMs == nil {
		s.fail(w, r, badRequest("Say the round-trip time: \"rttMs\" is missing (0 to %d).", maxRTTMs))
		return
	}
	if rtt := *req.RTTMs; rtt < 0 || rtt > maxRTTMs {
		s.fail(w, r, badRequest("\"rttMs\" must be from 0 to %d milliseconds, not %s.", maxRTTMs, inventory.EchoNumber(rtt)))
		return
	}
	s.answerState(w, r, s.lab.Faults().SetLatency(req.From, req.To, *req.RTTMs, req.OneWay))
}

// regionAction decodes the (empty) body and the {region} path value.
func (s *Server) regionAction(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return "", false
	}
	name := r.PathValue("region")
	if err := s.region(name); err != nil {
		s.fail(w, r, err)
		return "", false
	}
	return name, true
}

func (s *Server) handleCrash(w http.ResponseWriter, r *http.Request) {
	if name, ok := s.regionOrZoneAction(w, r); ok {
		s.answerState(w, r, s.lab.Faults().Crash(name))
	}
}

func (s *Server) handleRestart(w http.ResponseWriter, r *http.Request) {
	if name, ok := s.regionOrZoneAction(w, r); ok {
		s.answerState(w, r, s.lab.Faults().Restart(name))
	}
}

// regionOrZoneAction is regionAction that also takes a zone (us-east-1a):
// the lab names both in its errors (geo issue).
func (s *Server) regionOrZoneAction(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return "", false
	}
	name := r.PathValue("region")
	if name == "" {
		s.fail(w, r, s.region(name))
		return "", false
	}
	return name, true
}

func (s *Server) handleLead(w http.ResponseWriter, r *http.Request) {
	name, ok := s.regionAction(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.opContext(r, 5)
	defer cancel()
	err := s.lab.Faults().Lead(ctx, name)
	if errors.Is(err, context.DeadlineExceeded) {
		// Whatever stopped the move (a cut, a crash), the region cannot lead now.
		err = &apiError{http.StatusServiceUnavailable, fmt.Sprintf("Region %s did not become the leader in time; it may be cut off from the majority or crashed.", inventory.Echo(name))}
	}
	s.answerState(w, r, err)
}

// handleStoreConfig sets a store's configuration: the replicated store's
// W and R, the consensus store's group commit.
func (s *Server) handleStoreConfig(w http.ResponseWriter, r *http.Request) {
	var req struct {
		W           *int  `json:"w"`
		R           *int  `json:"r"`
		GroupCommit *bool `json:"groupCommit"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := parseStore(r.PathValue("store"))
	if err == nil && st == inventory.Consensus {
		switch {
		case req.W != nil || req.R != nil:
			err = badRequest("Only the replicated store has W and R; the consensus store always uses a majority. Its setting is \"groupCommit\" (true or false).")
		case req.GroupCommit == nil:
			err = badRequest("Send {\"groupCommit\": true} or {\"groupCommit\": false}: whether a region's concurrent buys of one SKU share one Txn.")
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.lab.Faults().SetGroupCommit(*req.GroupCommit)
		s.answerState(w, r, nil)
		return
	}
	if err == nil && st != inventory.Replicated {
		err = badRequest("Only the replicated store has W and R, and only the consensus store has group commit; the %s store has neither.", st)
	}
	if err == nil && req.GroupCommit != nil {
		err = badRequest("Group commit is the consensus store's; the replicated store's settings are \"w\" and \"r\".")
	}
	n := len(s.lab.Regions())
	if err == nil {
		err = checkQty("w", req.W, 1, n)
	}
	if err == nil {
		err = checkQty("r", req.R, 1, n)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.answerState(w, r, s.lab.Faults().SetQuorum(*req.W, *req.R))
}

func (s *Server) handleReset(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	s.answerState(w, r, s.lab.Reset(ctx))
}
