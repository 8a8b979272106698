package history

// Test hooks (package history_test).

// MaxGapsPerKey is how many gaps the ledger keeps per (store, SKU).
const MaxGapsPerKey = maxGapsPerKey

// LimitGapKeys lets g track only n more (store, SKU)s one by one.
func LimitGapKeys(g *Gaps, n int64) { g.maxKeys = g.keys.Load() + n }

// GapKeys is how many (store, SKU)s g tracks.
func GapKeys(g *Gaps) int64 { return g.keys.Load() }
