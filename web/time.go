package web

import (
	"fmt"
	"net/http"

	"caplab/lab"
	"caplab/lab/inventory"
)

// handleClock answers POST /api/regions/{region}/clock
// {"offsetMs":5000,"driftPpm":0} (token) with State. Both fields default to
// 0; {"offsetMs":0,"driftPpm":0} puts the region back to true time.
func (s *Server) handleClock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OffsetMs *float64 `json:"offsetMs"`
		DriftPpm *float64 `json:"driftPpm"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	name := r.PathValue("region")
	if err := s.region(name); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.OffsetMs == nil && req.DriftPpm == nil {
		s.fail(w, r, badRequest("Say how to set the clock, e.g. {\"offsetMs\":5000,\"driftPpm\":0}; offsets within ±3600000 ms (1 h)."))
		return
	}
	var off, drift float64
	if req.OffsetMs != nil {
		off = *req.OffsetMs
	}
	if req.DriftPpm != nil {
		drift = *req.DriftPpm
	}
	s.answerState(w, r, s.lab.Time().SetClock(name, off, drift))
}

// handleClocksReset answers POST /api/clocks/reset (token): every region's
// clock back to true time.
func (s *Server) handleClocksReset(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	s.answerState(w, r, s.lab.Time().ResetClocks())
}

// handlePause answers POST /api/regions/{region}/pause {"seconds":8}
// (token) with State: the region's shop freezes mid-flight for that long.
func (s *Server) handlePause(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Seconds *float64 `json:"seconds"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	name := r.PathValue("region")
	if err := s.region(name); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Seconds == nil {
		s.fail(w, r, badRequest("Say how long to pause the shop, e.g. {\"seconds\":8} (more than 0, at most %g).", inventory.MaxPause.Seconds()))
		return
	}
	s.answerState(w, r, s.lab.Time().Pause(name, *req.Seconds))
}

// handleReserve answers POST /api/stores/consensus/skus/{sku}/reserve
// {"region":"A","fenced":false} (token) with the Outcome of the lock-based
// reservation. It answers when the reservation is done — after the shop's
// pause, if it is paused.
func (s *Server) handleReserve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Region string `json:"region"`
		Fenced bool   `json:"fenced"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	st, sku, err := s.skuAction(r)
	if err == nil && st != inventory.Consensus {
		err = badRequest("Reservations take an etcd lock and write to the consensus store; use /api/stores/consensus/skus/%s/reserve.", sku)
	}
	if err == nil {
		err = s.region(req.Region)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := s.opContext(r, 1)
	defer cancel()
	o, err := s.lab.Reserve(ctx, sku, req.Region, req.Fenced)
	s.answerOutcome(w, r, o, err)
}

// clockText is a region's clock under its name on the map: "" at true
// time, else "clock +5s" (and the drift).
func clockText(r lab.RegionState) string {
	c := r.Clock
	if c.OffsetMs == 0 && c.DriftPpm == 0 {
		return ""
	}
	s := fmt.Sprintf("clock %+.1fs", c.SkewMs/1000)
	if c.DriftPpm != 0 {
		s += fmt.Sprintf(" (%+g ppm)", c.DriftPpm)
	}
	return s
}
