package web

import (
	"net/http"

	"caplab/lab/inventory"
)

// handleGeoAllocations answers GET /api/stores/geo/skus/{sku}/allocations
// ?region=R: every region's allocation as seen from R (unreachable regions
// with their last value and stranded units), like a geo read but not an
// operation — nothing is recorded or published. The page's allocation bars
// (static/geo.js) fetch it after every geo event; watching needs no token.
func (s *Server) handleGeoAllocations(w http.ResponseWriter, r *http.Request) {
	st, sku, err := s.skuAction(r)
	if err == nil && st != inventory.Geo {
		err = badRequest("Only the geo store has per-region allocations; %s keeps one stock per SKU (read it with GET /api/stores/%s/skus/%s).", st, st, sku)
	}
	region := r.URL.Query().Get("region")
	if err == nil {
		err = s.region(region)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := s.opContext(r, 1)
	defer cancel()
	o, err := s.lab.Geo().Allocations(ctx, sku, region)
	s.answerOutcome(w, r, o, err)
}
