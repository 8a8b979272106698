package history

import (
	"sync"

	"caplab/lab/inventory"
)

// MaxGeoCalls bounds the geo store's call log since the last reset.
const MaxGeoCalls = MaxOperations

// GeoLog records every call the geo store makes into a regional group
// (the records its verdict is computed from). It is capped like the
// History and decided like it at the call: Reserve says whether a call
// about to be sent will be logged, Add logs it when it returns. Safe for
// concurrent use; the zero GeoLog is empty and ready.
type GeoLog struct {
	mu       sync.Mutex
	calls    []inventory.GeoCall
	reserved int
	dropped  int
}

// Reserve promises the call being sent a place in the log: false once
// MaxGeoCalls are promised since the last Clear (the call is then counted
// as dropped and must not be added).
func (g *GeoLog) Reserve() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reserved < MaxGeoCalls {
		g.reserved++
		return true
	}
	g.dropped++
	return false
}

// Add logs a call that Reserve promised a place.
func (g *GeoLog) Add(c inventory.GeoCall) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, c)
}

// Calls returns a copy of the logged calls on sku ("" for every SKU), in
// the order they were logged.
func (g *GeoLog) Calls(sku string) []inventory.GeoCall {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []inventory.GeoCall
	for _, c := range g.calls {
		if sku == "" || c.SKU == sku {
			out = append(out, c)
		}
	}
	return out
}

// Clear forgets every call (a reset).
func (g *GeoLog) Clear() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls, g.reserved, g.dropped = nil, 0, 0
}
