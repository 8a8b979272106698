package guard

// Test hooks (package guard_test).

// MinInFlight is the floor of a gateway's adaptive limit.
const MinInFlight = minInFlight

// ForgetCut lets the slot's gateway cut its limit again at once, as if a
// target interval had passed since the last cut.
func ForgetCut(s *Slot) { s.cutAt.Store(0) }

// WithDefaults is s with its zero fields at their defaults.
func WithDefaults(s BreakerSettings) BreakerSettings { return s.withDefaults() }
