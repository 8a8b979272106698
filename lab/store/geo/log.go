package geo

import (
	"context"
	"time"

	"caplab/lab/history"
	"caplab/lab/inventory"
)

// geoCallRecord is what startCall decided about one call.
type geoCallRecord struct {
	logged bool
	gap    bool
	tok    history.GapToken
}

// startCall decides, before a call into a regional group on sku is sent,
// whether it will be logged: not when the operation it serves is left out
// of the History (lab.WithOpRecording: a load's unchecked SKUs and its
// reads past the sample — the operation's own gap covers its calls), nor
// past the log's cap, where a write call opens a gap of its own.
func (s *Store) startCall(ctx context.Context, sku string, write bool) geoCallRecord {
	if s.unlogged(ctx) {
		return geoCallRecord{}
	}
	if s.log.Reserve() {
		return geoCallRecord{logged: true}
	}
	if write && s.gaps != nil {
		return geoCallRecord{gap: true, tok: s.gaps.Begin(inventory.Geo, sku, time.Now(), inventory.GapGeoLogFull)}
	}
	return geoCallRecord{}
}

// endCall logs c as startCall decided (and tells the recorders), or ends
// its gap.
func (s *Store) endCall(r geoCallRecord, c inventory.GeoCall) {
	switch {
	case r.logged:
		s.log.Add(c)
		if s.onCall != nil {
			s.onCall(c)
		}
	case r.gap:
		s.gaps.End(r.tok, c.Return, c.Kind != inventory.GeoRead, c.Unknown)
	}
}
