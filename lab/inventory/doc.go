// Package inventory holds the names and rules every part of caplab shares
// about the one thing the lab keeps: a SKU's stock. It names the stores,
// operations, outcomes, fault kinds and versions, and the records a verdict
// is computed from (operations, the geo store's calls into its regional
// groups, recording gaps). It holds the rules of input — a SKU is 1 to 64
// letters, digits, '.', '_' or '-' (SKUPattern); a buy asks for 1 to 1,000
// units; a stock level is 0 to 1,000,000; a pause lasts at most a minute —
// and the replicated store's quorum arithmetic, last-writer-wins merge and
// hybrid logical clock. It also holds Echo, which every error message uses
// to repeat what a person typed, and the sentinel errors callers branch on.
//
// It does no I/O, starts no goroutine and imports only the standard
// library, so the web API, lessons, the load generator, the history and the
// checker can all use it without reaching the lab.
package inventory
