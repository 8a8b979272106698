package history

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"caplab/lab/inventory"
)

// Recording gaps. Whatever bounds recording — an operation a caller left
// out (WithOpRecording: a load's unchecked SKUs, its spent budget), the
// History's cap, the geo store's call log cap — an unrecorded write on a
// (store, SKU) makes that SKU's recorded history one no store could have
// produced from the moment the write was called: a recorded buy that came
// after it answers a count the recorded buys before it do not explain.
// The lab therefore keeps, per (store, SKU), the gaps in its record: from
// the earliest call of an unrecorded write that may have applied to when
// the last of them returned. The checker judges a SKU's history up to its
// first gap and, after a gap that ended, from a clean restock on
// (package check). Gaps are noted at the call, before the write can reach a
// store, so a check never sees a recorded answer shaped by a write it does
// not know of.

// maxGapKeys bounds the (store, SKU)s whose gaps the lab tracks one by
// one: ~120 bytes each (the load's largest catalogue, 100,000 SKUs in
// three stores, is 300,000). Past it one store-wide gap stands for the
// rest.
const maxGapKeys = 1 << 19

// maxGapsPerKey bounds the gaps kept per (store, SKU); past it the two
// newest merge (a larger gap only judges less).
const maxGapsPerKey = 16

// gapKey names one (store, SKU); sku "" is the store-wide entry.
type gapKey struct {
	store inventory.Store
	sku   string
}

// gapState is one gap as the ledger keeps it. Its times are the
// operations' own (with their monotonic readings), so that an export,
// which keeps the wall clock only, compares them with the operations'
// times exactly as the lab does.
type gapState struct {
	id       int64
	from     time.Time
	lastRet  time.Time
	writes   int32
	inflight int32
	mayLand  bool // an unrecorded write answered unavailable
	reason   inventory.GapReason
}

// keyGaps is one (store, SKU)'s entry.
type keyGaps struct {
	gaps      []gapState // oldest first; the last is the one writes join
	recorded  bool       // the key has recorded operations (its gaps matter)
	dirty     bool       // changed since the recorders last heard of it
	lastStock time.Time  // latest call of a recorded stock; zero: none
}

type gapShard struct {
	mu sync.Mutex
	m  map[gapKey]*keyGaps
}

// Gaps is the lab's ledger of gaps since the last reset.
type Gaps struct {
	seed    maphash.Seed
	shards  [64]gapShard
	keys    atomic.Int64
	maxKeys int64 // maxGapKeys (tests set less)
	ids     atomic.Int64
	// emit hands a gap of a key with recorded operations to the lab's
	// recorders (the audit log); called outside every lock.
	emit func(inventory.RecordingGap)
}

// NewGaps returns an empty ledger; emit, if not nil, hears of every gap
// of a key with recorded operations as it begins or changes.
func NewGaps(emit func(inventory.RecordingGap)) *Gaps {
	g := &Gaps{seed: maphash.MakeSeed(), emit: emit, maxKeys: maxGapKeys}
	for i := range g.shards {
		g.shards[i].m = map[gapKey]*keyGaps{}
	}
	return g
}

func (g *Gaps) shard(k gapKey) *gapShard {
	return &g.shards[maphash.String(g.seed, k.sku)%uint64(len(g.shards))]
}

// entry returns k's entry, creating it; past maxGapKeys it returns the
// store-wide entry instead (and whether it did). Under s.mu.
func (g *Gaps) entry(s *gapShard, k gapKey) (*keyGaps, bool) {
	if e := s.m[k]; e != nil {
		return e, false
	}
	if k.sku != "" && g.keys.Load() >= g.maxKeys {
		return nil, true
	}
	e := &keyGaps{}
	s.m[k] = e
	g.keys.Add(1)
	return e, false
}

// GapToken is what begin hands to end.
type GapToken struct {
	k  gapKey
	id int64
}

// Begin notes an unrecorded write on (store, sku) called at call (before
// it reaches the store) and returns the token to end it with.
func (g *Gaps) Begin(store inventory.Store, sku string, call time.Time, why inventory.GapReason) GapToken {
	k := gapKey{store, sku}
	s := g.shard(k)
	s.mu.Lock()
	e, full := g.entry(s, k)
	if full {
		s.mu.Unlock()
		return g.Begin(store, "", call, inventory.GapTooManySKUs)
	}
	at := call
	var cur *gapState
	if n := len(e.gaps); n > 0 {
		cur = &e.gaps[n-1]
	}
	// widened: the cut this key's recorded gaps make moves earlier or
	// starts to matter; recorders hear of that at once (anything else
	// reaches them before the key's next recorded operation).
	widened := false
	switch {
	case cur != nil && cur.inflight == 0 && !cur.mayLand && cur.writes == 0:
		// It changed nothing; it starts again here.
		cur.from, cur.reason = at, why
		widened = true
	case cur != nil && (cur.inflight > 0 || cur.mayLand || !e.lastStock.After(cur.lastRet)):
		// Still going, or no recorded stock since could have ended it.
		if at.Before(cur.from) {
			cur.from, widened = at, true
		}
	default:
		if len(e.gaps) == maxGapsPerKey { // merge the two newest
			last := e.gaps[len(e.gaps)-1]
			e.gaps = e.gaps[:len(e.gaps)-1]
			p := &e.gaps[len(e.gaps)-1]
			p.lastRet, p.writes = later(p.lastRet, last.lastRet), p.writes+last.writes
			p.inflight, p.mayLand = p.inflight+last.inflight, p.mayLand || last.mayLand
		}
		e.gaps = append(e.gaps, gapState{id: g.ids.Add(1), from: at, lastRet: at, reason: why})
		widened = true
	}
	cur = &e.gaps[len(e.gaps)-1]
	cur.inflight++
	e.dirty = true
	tok := GapToken{k: k, id: cur.id}
	var out []inventory.RecordingGap
	if widened && e.recorded {
		out, e.dirty = g.export(k, e), false
	}
	s.mu.Unlock()
	g.send(out)
	return tok
}

// End notes that the write begun with t returned at ret; wrote: it may
// have applied; mayLand: it answered unavailable and may apply later.
func (g *Gaps) End(t GapToken, ret time.Time, wrote, mayLand bool) {
	s := g.shard(t.k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[t.k]
	if e == nil {
		return // a reset came in between (it cannot: Reset waits for operations)
	}
	// Its gap, or the older one it was merged into (gaps are in ID order,
	// and a merge folds a gap into the one before it).
	i := 0
	for j, x := range e.gaps {
		if x.id <= t.id {
			i = j
		}
	}
	gs := &e.gaps[i]
	gs.inflight--
	gs.lastRet = later(gs.lastRet, ret)
	if wrote {
		gs.writes++
	}
	gs.mayLand = gs.mayLand || mayLand
	e.dirty = true
}

// RecordedBegin notes a recorded operation on (store, sku) called at call:
// the key's gaps matter from now on, and a stock may end a gap. If the
// gaps changed since the recorders last heard of them, they hear now —
// before the operation itself is recorded.
func (g *Gaps) RecordedBegin(store inventory.Store, sku string, op inventory.Op, call time.Time) {
	k := gapKey{store, sku}
	s := g.shard(k)
	s.mu.Lock()
	e, full := g.entry(s, k)
	if full {
		s.mu.Unlock()
		return // the store-wide gap stands for this key
	}
	e.recorded = true
	if op == inventory.OpStock {
		e.lastStock = later(e.lastStock, call)
	}
	var out []inventory.RecordingGap
	if e.dirty && len(e.gaps) > 0 {
		out, e.dirty = g.export(k, e), false
	}
	s.mu.Unlock()
	g.send(out)
}

func (g *Gaps) send(gaps []inventory.RecordingGap) {
	if g.emit == nil {
		return
	}
	for _, x := range gaps {
		g.emit(x)
	}
}

// export turns e's gaps into RecordingGaps. Under the shard's lock.
func (g *Gaps) export(k gapKey, e *keyGaps) []inventory.RecordingGap {
	out := make([]inventory.RecordingGap, 0, len(e.gaps))
	for _, gs := range e.gaps {
		r := inventory.RecordingGap{ID: gs.id, Store: k.store, SKU: k.sku, Reason: gs.reason, From: gs.from, Writes: int(gs.writes)}
		if gs.inflight == 0 && !gs.mayLand {
			r.To = gs.lastRet
		}
		out = append(out, r)
	}
	return out
}

// Snapshot returns the gaps that bear on store's SKU sku ("" = every SKU
// with recorded operations), store-wide gaps included.
func (g *Gaps) Snapshot(store inventory.Store, sku string) []inventory.RecordingGap {
	var out []inventory.RecordingGap
	add := func(k gapKey) {
		s := g.shard(k)
		s.mu.Lock()
		if e := s.m[k]; e != nil {
			out = append(out, g.export(k, e)...)
		}
		s.mu.Unlock()
	}
	add(gapKey{store, ""})
	if sku != "" {
		add(gapKey{store, sku})
		return out
	}
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if k.store == store && k.sku != "" && e.recorded {
				out = append(out, g.export(k, e)...)
			}
		}
		s.mu.Unlock()
	}
	return out
}

// All returns every gap that bears on a recorded key (every store), for
// an export; flush also marks them heard, and emits the ones the recorders
// have not heard of yet.
func (g *Gaps) All(flush bool) []inventory.RecordingGap {
	var out, unheard []inventory.RecordingGap
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if len(e.gaps) == 0 || (!e.recorded && k.sku != "") {
				continue
			}
			x := g.export(k, e)
			out = append(out, x...)
			if flush && e.dirty {
				unheard = append(unheard, x...)
				e.dirty = false
			}
		}
		s.mu.Unlock()
	}
	g.send(unheard)
	slices.SortFunc(out, func(a, b inventory.RecordingGap) int { return a.From.Compare(b.From) })
	return out
}

// Resumed notes, for every store, a store-wide gap at start: the stores
// hold what an earlier run wrote, which this history does not (New, on a
// resumed lab, before any operation). It ended at once: nothing of the
// earlier run is still in flight in this process.
func (g *Gaps) Resumed(stores []inventory.Store, start time.Time) {
	for _, s := range stores {
		g.End(g.Begin(s, "", start, inventory.GapResumed), start, true, false)
		// Only this run's History lacks the earlier run: an audit log
		// that spans both holds it (and knows a killed run by its
		// missing stop record), so the gap is not sent to recorders.
		k := gapKey{s, ""}
		sh := g.shard(k)
		sh.mu.Lock()
		sh.m[k].dirty = false
		sh.mu.Unlock()
	}
}

// Clear forgets every gap (Reset, with no operation in flight).
func (g *Gaps) Clear() {
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
	}
	g.keys.Store(0)
}

// later is the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// MayWrite reports whether an operation that answered op.Outcome may have
// changed its store: stocks and buys that applied or may yet apply. The
// geo store's buys move units between regions before they know whether
// they sell, so every answer but overloaded (which reached no store)
// counts there.
func MayWrite(op inventory.Operation) (wrote, mayLand bool) {
	if op.Op != inventory.OpStock && op.Op != inventory.OpBuy {
		return false, false
	}
	if op.Store == inventory.Geo {
		return op.Outcome != inventory.Overloaded, op.Outcome == inventory.Unavailable
	}
	return op.Outcome == inventory.OK || op.Outcome == inventory.Unavailable, op.Outcome == inventory.Unavailable
}
