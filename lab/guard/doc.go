// Package guard is the request path between a region's shop and a store:
// four layers, each in its own file, each knowing only what it needs.
//
//   - Gate lets operations run concurrently and lets a reset or Close hold
//     them all out (gate.go).
//   - Admission bounds each (region, store) gateway's requests in flight
//     with a limit that adapts to latency, and answers the excess
//     overloaded at once (admission.go).
//   - Breakers open per (region, store) after consecutive unavailable
//     answers and then fail fast; a store that calls several groups gets
//     one breaker per (region, store, destination) through ExecutePath
//     (breaker.go).
//   - WithinDeadline answers every store call within its deadline plus
//     AnswerGrace (deadline.go).
//
// The lab stacks them in that order, around the store call:
//
//	layer          knows                                  decides                                   never
//	Gate           operations in flight; reset or Close   wait (within the deadline), unavailable   looks at a request
//	               holding it                             ("being reset") or ErrClosed
//	Admission      per (region, store): in flight, limit, overloaded now, or a slot                 calls a store; counts toward a breaker
//	               latency average
//	Breakers       per (region, store[, to]): consecutive fail_fast now, or the call                  retries
//	               unavailable answers
//	WithinDeadline the deadline and AnswerGrace           unavailable after deadline + grace        cancels work that has already left
//
// None of them knows a store's internals, the history or the regions of
// package nodes: a sentence that names a region for a person gets a place
// function from the lab.
package guard
