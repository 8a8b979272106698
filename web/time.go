package web

import (
	"net/http"
)

// Clocker is optionally implemented by the Lab: per-region clocks
// (lab/time.go). *lab.Lab implements it.
type Clocker interface {
	SetClock(region string, offsetMs, driftPpm float64) error
	ResetClocks() error
}

// handleClock answers POST /api/regions/{region}/clock
// {"offsetMs":5000,"driftPpm":0} (token) with State. Both fields default to
// 0; {"offsetMs":0,"driftPpm":0} puts the region back to true time.
func (s *Server) handleClock(w http.ResponseWriter, r *http.Request) {
	c, ok := s.lab.(Clocker)
	if !ok {
		writeError(w, http.StatusNotImplemented, "This lab has no per-region clocks.")
		return
	}
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
	s.answerState(w, r, c.SetClock(name, off, drift))
}

// handleClocksReset answers POST /api/clocks/reset (token): every region's
// clock back to true time.
func (s *Server) handleClocksReset(w http.ResponseWriter, r *http.Request) {
	c, ok := s.lab.(Clocker)
	if !ok {
		writeError(w, http.StatusNotImplemented, "This lab has no per-region clocks.")
		return
	}
	s.answerState(w, r, c.ResetClocks())
}
