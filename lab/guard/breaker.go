package guard

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"caplab/lab/inventory"
)

// Breaker states as State and the API spell them.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
)

// BreakerSettings configures the circuit breakers. The zero value means the
// defaults.
type BreakerSettings struct {
	// Threshold is how many consecutive unavailable answers open a breaker
	// (default 3).
	Threshold uint32
	// Cooldown is how long a breaker stays open before it lets one trial
	// call through (half-open); default 5s.
	Cooldown time.Duration
	// OnChange, if set, is told every state change (from and to are
	// "closed", "open" or "half-open"), in order, after the breaker's own
	// lock is released: it may call back into Breakers. It runs on the
	// goroutine whose call caused the change. Reset reports no changes.
	OnChange func(region string, store inventory.Store, from, to string)
}

func (s BreakerSettings) withDefaults() BreakerSettings {
	if s.Threshold == 0 {
		s.Threshold = 3
	}
	if s.Cooldown <= 0 {
		s.Cooldown = 5 * time.Second
	}
	return s
}

// Breakers holds one circuit breaker per (region, store), in front of every
// request a region's gateway sends to a store, and one per (region, store,
// destination) for a store that calls several groups (the geo store:
// ExecutePath). A breaker opens after
// Threshold consecutive unavailable answers; while open, calls fail fast
// without reaching the store; after Cooldown it lets one trial call through
// (half-open) and closes on its success or opens again on its failure.
//
// Breakers is safe for concurrent use.
type Breakers struct {
	settings BreakerSettings
	regions  []string

	mu       sync.Mutex
	gen      uint64 // bumped by Reset; changes of older breakers are not reported
	breakers map[breakerKey]*gobreaker.CircuitBreaker[inventory.Outcome]
	// known is the lab's own regions' breakers of the current generation,
	// never mutated once published: the hot path looks its breaker up
	// without a lock.
	known atomic.Pointer[map[breakerKey]*gobreaker.CircuitBreaker[inventory.Outcome]]

	changesMu sync.Mutex
	changes   []breakerChange
	queued    atomic.Int64 // len(changes), read without the lock
	flushing  bool
}

// breakerKey names a breaker: to is "" for the (region, store) breaker, or
// the destination group's region of a path.
type breakerKey struct {
	region string
	store  inventory.Store
	to     string
}

// name is how messages and change reports spell the breaker's store: the
// store, or store>to for a path ("geo>eu-west-1").
func (k breakerKey) name() inventory.Store {
	if k.to == "" {
		return k.store
	}
	return k.store + ">" + inventory.Store(k.to)
}

type breakerChange struct {
	gen      uint64
	key      breakerKey
	from, to string
}

// errCountsAsFailure marks an unavailable answer for gobreaker.
var errCountsAsFailure = errors.New("store unavailable")

// NewBreakers returns closed breakers for every region and store. Breakers
// for other regions are made, closed, on first use.
func NewBreakers(regions []string, s BreakerSettings) *Breakers {
	b := &Breakers{settings: s.withDefaults(), regions: append([]string(nil), regions...)}
	b.breakers = b.fresh(0)
	b.known.Store(new(maps.Clone(b.breakers)))
	return b
}

func (b *Breakers) fresh(gen uint64) map[breakerKey]*gobreaker.CircuitBreaker[inventory.Outcome] {
	m := make(map[breakerKey]*gobreaker.CircuitBreaker[inventory.Outcome], len(b.regions)*len(inventory.Stores))
	for _, r := range b.regions {
		for _, s := range inventory.Stores {
			m[breakerKey{r, s, ""}] = b.newBreaker(gen, breakerKey{r, s, ""})
		}
	}
	return m
}

func (b *Breakers) newBreaker(gen uint64, key breakerKey) *gobreaker.CircuitBreaker[inventory.Outcome] {
	threshold := b.settings.Threshold
	return gobreaker.NewCircuitBreaker[inventory.Outcome](gobreaker.Settings{
		Name:        key.region + "/" + string(key.name()),
		MaxRequests: 1,
		Timeout:     b.settings.Cooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			// Called under the breaker's lock: queue it, report it in flush.
			b.changesMu.Lock()
			b.changes = append(b.changes, breakerChange{gen, key, breakerStateName(from), breakerStateName(to)})
			b.queued.Store(int64(len(b.changes)))
			b.changesMu.Unlock()
		},
	})
}

func (b *Breakers) breaker(key breakerKey) *gobreaker.CircuitBreaker[inventory.Outcome] {
	if cb, ok := (*b.known.Load())[key]; ok {
		return cb
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cb, ok := b.breakers[key]
	if !ok {
		cb = b.newBreaker(b.gen, key)
		b.breakers[key] = cb
	}
	return cb
}

// flush reports queued state changes to OnChange, in order. One goroutine
// flushes at a time; a flush started from inside OnChange returns at once
// and its changes are reported by the flush already running.
func (b *Breakers) flush() {
	if b.queued.Load() == 0 { // nothing queued: the common case takes no lock
		return
	}
	b.changesMu.Lock()
	if b.flushing {
		b.changesMu.Unlock()
		return
	}
	b.flushing = true
	defer func() {
		b.changesMu.Lock()
		b.flushing = false
		b.changesMu.Unlock()
	}()
	for len(b.changes) > 0 {
		batch := b.changes
		b.changes = nil
		b.queued.Store(0)
		b.changesMu.Unlock()
		b.mu.Lock()
		gen := b.gen
		b.mu.Unlock()
		for _, c := range batch {
			if c.gen == gen && b.settings.OnChange != nil {
				b.settings.OnChange(c.key.region, c.key.name(), c.from, c.to)
			}
		}
		b.changesMu.Lock()
	}
	b.changesMu.Unlock()
}

// Execute runs fn through the breaker of (region, store) and returns its
// outcome. An Unavailable outcome counts as a failure, every other outcome
// as a success. When the breaker is open — or half-open with its one trial
// call still running — Execute does not call fn and returns at once a
// fail_fast Outcome with Store, Region, Message and LatencyMs set (the
// caller fills in SKU, Op and the rest).
func (b *Breakers) Execute(region string, store inventory.Store, fn func() inventory.Outcome) inventory.Outcome {
	return b.execute(breakerKey{region, store, ""}, fn)
}

// ExecutePath is Execute through the breaker of the path from region's
// gateway to the group in region to (to == region: the (region, store)
// breaker itself). A store that calls several groups for one operation
// guards each call this way, so that one unreachable group does not fail
// the calls to the others.
func (b *Breakers) ExecutePath(region string, store inventory.Store, to string, fn func() inventory.Outcome) inventory.Outcome {
	if to == region {
		to = ""
	}
	return b.execute(breakerKey{region, store, to}, fn)
}

func (b *Breakers) execute(key breakerKey, fn func() inventory.Outcome) inventory.Outcome {
	region := key.region
	start := time.Now()
	defer b.flush()
	out, err := b.breaker(key).Execute(func() (inventory.Outcome, error) {
		o := fn()
		if o.Outcome == inventory.Unavailable {
			return o, errCountsAsFailure
		}
		return o, nil
	})
	var why string
	switch {
	case errors.Is(err, gobreaker.ErrOpenState):
		why = fmt.Sprintf("the circuit breaker for %s in %s is open after %d failed calls.", key.name(), region, b.settings.Threshold)
	case errors.Is(err, gobreaker.ErrTooManyRequests):
		why = fmt.Sprintf("the circuit breaker for %s in %s is half-open and already trying one call.", key.name(), region)
	default:
		return out
	}
	return inventory.Outcome{
		Outcome:    inventory.FailFast,
		Store:      key.name(),
		Region:     region,
		LatencyMs:  float64(time.Since(start).Microseconds()) / 1000,
		AnsweredBy: []string{},
		Message:    "Service temporarily unavailable — retry later: " + why,
	}
}

// State returns the state of the breaker of (region, store): "closed",
// "open" or "half-open". An open breaker whose cooldown has passed turns
// half-open when asked (and OnChange hears of it).
func (b *Breakers) State(region string, store inventory.Store) string {
	s := b.breaker(breakerKey{region, store, ""}).State()
	b.flush()
	return breakerStateName(s)
}

// States returns the state of region's breaker for every store.
func (b *Breakers) States(region string) map[inventory.Store]string {
	m := make(map[inventory.Store]string, len(inventory.Stores))
	for _, s := range inventory.Stores {
		m[s] = b.State(region, s)
	}
	return m
}

// Reset replaces every breaker with a fresh, closed one. Changes of the old
// breakers that were not reported yet are dropped, and the reset itself is
// not reported to OnChange.
func (b *Breakers) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
	b.breakers = b.fresh(b.gen)
	b.known.Store(new(maps.Clone(b.breakers)))
}

func breakerStateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	default:
		return BreakerClosed
	}
}
