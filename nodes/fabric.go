package nodes

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrBadOperation is wrapped by every fabric or cluster error caused by the
// caller's input (unknown region, overlapping groups, absurd latency …).
// Nothing is changed when it is returned.
var ErrBadOperation = errors.New("bad operation")

// MaxRTTMs bounds a link's round-trip time.
const MaxRTTMs = 5000

// Fabric is the network between regions: one link per ordered pair. Every
// byte between two regions crosses it. Operations validate their whole input
// before they change anything, so a bad call changes nothing.
type Fabric struct {
	regions  []string
	scale    float64
	onChange func()
	speed    float64 // SetSpeed's factor (speed.go); 0 means 1. Guarded by mu.
	// push, when the regions run on agents (remote.go), hands the changed
	// rules to the agents that enforce them and returns once they have
	// them in force (or are out of reach); nil on one machine.
	push func()

	mu    sync.Mutex // serialises operations; links have their own locks for the data path
	links map[[2]string]*link
}

func newFabric(regions []string, scale float64, onChange func()) *Fabric {
	f := &Fabric{regions: regions, scale: scale, onChange: onChange, links: map[[2]string]*link{}}
	for _, a := range regions {
		for _, b := range regions {
			if a == b {
				continue
			}
			rtt, measured := ModelRTT(a, b)
			f.links[[2]string{a, b}] = newLink(a, b, rtt, measured, scale)
		}
	}
	return f
}

func (f *Fabric) link(from, to string) *link { return f.links[[2]string{from, to}] }

func (f *Fabric) changed() {
	if f.push != nil {
		f.push()
	}
	if f.onChange != nil {
		f.onChange()
	}
}

func (f *Fabric) checkRegion(name string) error {
	if slices.Contains(f.regions, name) {
		return nil
	}
	return fmt.Errorf("%w: region %q is not in this lab (regions: %s)", ErrBadOperation, name, strings.Join(f.regions, ", "))
}

func (f *Fabric) checkPair(from, to string) error {
	if err := f.checkRegion(from); err != nil {
		return err
	}
	if err := f.checkRegion(to); err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("%w: a link joins two different regions (got %s twice)", ErrBadOperation, from)
	}
	return nil
}

// pairs returns the links from→to, and to→from unless oneWay.
func (f *Fabric) pairs(from, to string, oneWay bool) []*link {
	ls := []*link{f.link(from, to)}
	if !oneWay {
		ls = append(ls, f.link(to, from))
	}
	return ls
}

// SetLink cuts (up=false) or heals (up=true) the link between two regions,
// both ways, or only from → to when oneWay.
func (f *Fabric) SetLink(from, to string, up, oneWay bool) error {
	if err := f.checkPair(from, to); err != nil {
		return fmt.Errorf("nodes: set link: %w", err)
	}
	f.mu.Lock()
	changed := false
	for _, l := range f.pairs(from, to, oneWay) {
		changed = l.setUp(up) || changed
	}
	f.mu.Unlock()
	if changed {
		f.changed()
	}
	return nil
}

// Cut cuts the link between two regions (both ways unless oneWay).
func (f *Fabric) Cut(from, to string, oneWay bool) error { return f.SetLink(from, to, false, oneWay) }

// Heal brings the link between two regions back up (both ways unless oneWay).
func (f *Fabric) Heal(from, to string, oneWay bool) error { return f.SetLink(from, to, true, oneWay) }

// HealAll brings every link up; latencies are kept.
func (f *Fabric) HealAll() {
	f.mu.Lock()
	changed := false
	for _, l := range f.links {
		changed = l.setUp(true) || changed
	}
	f.mu.Unlock()
	if changed {
		f.changed()
	}
}

// Partition splits the regions into groups: every link between two groups
// is cut both ways, every link inside a group is up. Every region must be in
// exactly one group.
func (f *Fabric) Partition(groups [][]string) error {
	groupOf, err := f.groupIndex(groups)
	if err != nil {
		return fmt.Errorf("nodes: partition: %w", err)
	}
	f.apply(func(from, to string) bool { return groupOf[from] == groupOf[to] })
	return nil
}

// groupIndex validates groups and maps each region to its group.
func (f *Fabric) groupIndex(groups [][]string) (map[string]int, error) {
	if len(groups) == 0 {
		return nil, fmt.Errorf("%w: give at least one group of regions", ErrBadOperation)
	}
	groupOf := map[string]int{}
	for i, g := range groups {
		if len(g) == 0 {
			return nil, fmt.Errorf("%w: group %d is empty", ErrBadOperation, i+1)
		}
		for _, r := range g {
			if err := f.checkRegion(r); err != nil {
				return nil, err
			}
			if j, dup := groupOf[r]; dup {
				return nil, fmt.Errorf("%w: region %s is in group %d and group %d; each region belongs to exactly one group", ErrBadOperation, r, j+1, i+1)
			}
			groupOf[r] = i
		}
	}
	var missing []string
	for _, r := range f.regions {
		if _, ok := groupOf[r]; !ok {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: every region must be in a group; missing: %s", ErrBadOperation, strings.Join(missing, ", "))
	}
	return groupOf, nil
}

// apply sets every link to up(from, to), atomically with respect to other
// fabric operations.
func (f *Fabric) apply(up func(from, to string) bool) {
	f.mu.Lock()
	changed := false
	for k, l := range f.links {
		changed = l.setUp(up(k[0], k[1])) || changed
	}
	f.mu.Unlock()
	if changed {
		f.changed()
	}
}

// Isolate cuts every link to and from one region, and heals all others.
func (f *Fabric) Isolate(region string) error {
	if err := f.checkRegion(region); err != nil {
		return fmt.Errorf("nodes: isolate: %w", err)
	}
	f.apply(func(from, to string) bool { return from != region && to != region })
	return nil
}

// Bridge splits the other regions into two halves that can reach each
// other only through via: every link between the halves is cut both ways,
// every other link is up. With three regions it cuts exactly the one link
// that does not touch via.
func (f *Fabric) Bridge(via string) error {
	if err := f.checkRegion(via); err != nil {
		return fmt.Errorf("nodes: bridge: %w", err)
	}
	if len(f.regions) < 3 {
		return fmt.Errorf("nodes: bridge: %w: a bridge needs at least 3 regions (this lab has %d)", ErrBadOperation, len(f.regions))
	}
	side := map[string]int{}
	others := slices.DeleteFunc(slices.Clone(f.regions), func(r string) bool { return r == via })
	for i, r := range others {
		side[r] = 1
		if i >= len(others)/2 {
			side[r] = 2
		}
	}
	f.apply(func(from, to string) bool { return side[from] == 0 || side[to] == 0 || side[from] == side[to] })
	return nil
}

// MajoritiesRing arranges the regions in a ring where each sees a majority
// (itself and its nearest neighbours) but no two see the same majority
// (Jepsen's majorities-ring). It needs at least 4 regions.
func (f *Fabric) MajoritiesRing() error {
	n := len(f.regions)
	if n < 4 {
		return fmt.Errorf("nodes: majorities ring: %w: needs at least 4 regions (this lab has %d)", ErrBadOperation, n)
	}
	k := (n/2 + 1) / 2 // neighbours each side: 1 + 2k ≥ majority
	pos := map[string]int{}
	for i, r := range f.regions {
		pos[r] = i
	}
	f.apply(func(from, to string) bool {
		d := (pos[from] - pos[to] + n) % n
		return min(d, n-d) <= k
	})
	return nil
}

// SetRTT sets the round-trip time between two regions at latency scale 1:
// each direction gets half of it as one-way delay (× the latency scale).
// With oneWay only from → to changes, to rttMs/2.
func (f *Fabric) SetRTT(from, to string, rttMs float64, oneWay bool) error {
	if err := f.checkPair(from, to); err != nil {
		return fmt.Errorf("nodes: set latency: %w", err)
	}
	if !(rttMs >= 0 && rttMs <= MaxRTTMs) { // also catches NaN
		return fmt.Errorf("nodes: set latency: %w: round-trip time must be between 0 and %d ms (got %v)", ErrBadOperation, MaxRTTMs, rttMs)
	}
	f.mu.Lock()
	for _, l := range f.pairs(from, to, oneWay) {
		l.setRTT(rttMs, f.effectiveScale())
	}
	f.mu.Unlock()
	f.changed()
	return nil
}

// SetJitter adds uniform jitter in [0, j) (at scale 1, × the latency
// scale) to the one-way delay from → to (both ways unless oneWay). Chunks
// are never reordered by jitter.
func (f *Fabric) SetJitter(from, to string, j time.Duration, oneWay bool) error {
	if err := f.checkPair(from, to); err != nil {
		return fmt.Errorf("nodes: set jitter: %w", err)
	}
	if j < 0 || j > MaxRTTMs*time.Millisecond {
		return fmt.Errorf("nodes: set jitter: %w: jitter must be between 0 and %d ms (got %v)", ErrBadOperation, MaxRTTMs, j)
	}
	f.mu.Lock()
	for _, l := range f.pairs(from, to, oneWay) {
		l.setJitter(time.Duration(float64(j) * f.effectiveScale()))
	}
	f.mu.Unlock()
	f.changed()
	return nil
}

// Links returns the status of every ordered pair, in region order.
func (f *Fabric) Links() []LinkStatus {
	out := make([]LinkStatus, 0, len(f.links))
	for _, a := range f.regions {
		for _, b := range f.regions {
			if a != b {
				out = append(out, f.link(a, b).status())
			}
		}
	}
	return out
}

// Up reports whether the link from → to carries traffic now.
func (f *Fabric) Up(from, to string) bool {
	if from == to {
		return true
	}
	l := f.link(from, to)
	return l != nil && l.isUp()
}

// Scale is the latency scale every delay is multiplied by.
func (f *Fabric) Scale() float64 { return f.scale }

// closeAll ends every flow on every link (used on Close).
func (f *Fabric) closeAll() {
	for _, l := range f.links {
		l.dropFlows()
	}
}
