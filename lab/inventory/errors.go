package inventory

import "errors"

// Errors a caller branches on. Returned errors wrap one of these with a
// sentence a person can act on; test with errors.Is.
var (
	// ErrUnknownRegion: the region is not in this lab (API: 404).
	ErrUnknownRegion = errors.New("unknown region")
	// ErrUnknownStore: the store is not consensus, replicated or geo (API: 404).
	ErrUnknownStore = errors.New("unknown store")
	// ErrBadInput: a malformed SKU, quantity, group list, latency or quorum (API: 400).
	ErrBadInput = errors.New("bad input")
	// ErrUnavailable: the lab cannot do it now, e.g. lead a crashed region (API: 503).
	ErrUnavailable = errors.New("unavailable")
	// ErrConflict: the request contradicts the lab's state, e.g. crashing a
	// crashed region or restarting a running one; nothing changed (API: 409).
	ErrConflict = errors.New("conflict")
	// ErrClosed: the lab has been closed.
	ErrClosed = errors.New("lab closed")
)
