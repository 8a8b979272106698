package lab

// Transitional aliases: these names moved to package guard (issue 20).
// go fix -inline ./... rewrites callers; the vars are rewritten by hand.

import "caplab/lab/guard"

//go:fix inline
type BreakerSettings = guard.BreakerSettings

//go:fix inline
type Breakers = guard.Breakers

//go:fix inline
const BreakerClosed = guard.BreakerClosed

//go:fix inline
const BreakerHalfOpen = guard.BreakerHalfOpen

//go:fix inline
const BreakerOpen = guard.BreakerOpen

//go:fix inline
const DefaultMaxInFlight = guard.DefaultMaxInFlight

//go:fix inline
func NewBreakers(regions []string, s guard.BreakerSettings) *guard.Breakers {
	return guard.NewBreakers(regions, s)
}
