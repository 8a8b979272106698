package nodes

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// link is one ordered pair of regions (from → to). It owns its rules (up or
// cut, one-way delay, jitter) and its counters, and knows every connection
// that currently carries its bytes so that a cut can close them.
//
// Counters are atomics so the data path never takes the mutex for them;
// rules and the connection set are guarded by mu.
type link struct {
	from, to string

	bytes    atomic.Int64
	messages atomic.Int64

	mu       sync.Mutex
	up       bool
	rttMs    float64       // model round trip this direction contributes to (rttMs/2 one way), at scale 1
	scale    float64       // latency scale rttMs is multiplied by
	measured float64       // real round trip between the two hosts (ms), 0 on one machine (remote.go)
	delay    time.Duration // applied one-way delay = (rttMs × scale − measured)/2, at least 0
	jitter   time.Duration // applied jitter, uniform in [0, jitter)
	conns    map[*flow]struct{}
	streams  map[*flow]time.Time // raft streams carrying this link's data, by the time they opened
	upSince  time.Time           // last time the link came up (or was created)
	lastDue  time.Time           // release times never go backwards (jitter must not reorder)
	estimate bool                // rttMs estimated from distance, not measured
}

// flow is one connection (or one HTTP exchange) that carries bytes over a
// link. Cancelling it closes the connection.
type flow struct {
	cancel context.CancelFunc
}

func newLink(from, to string, rttMs float64, measured bool, scale float64) *link {
	l := &link{from: from, to: to, up: true, conns: map[*flow]struct{}{}, streams: map[*flow]time.Time{},
		upSince: time.Now(), estimate: !measured}
	l.setRTT(rttMs, scale)
	return l
}

func (l *link) setRTT(rttMs, scale float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rttMs, l.scale = rttMs, scale
	l.delay = addedDelay(rttMs, scale, l.measured)
}

// addedDelay is the one-way delay a link adds so that its round trip is
// the model's (rttMs × scale): all of it on one machine, only what is
// missing when the hosts are measuredMs apart already — nothing when the
// real round trip exceeds the model.
func addedDelay(rttMs, scale, measuredMs float64) time.Duration {
	return time.Duration(max(0, rttMs*scale-measuredMs) / 2 * float64(time.Millisecond))
}

// setMeasured records the real round trip between the link's two hosts
// and adds only what is missing to reach the model (remote.go).
func (l *link) setMeasured(ms float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.measured = ms
	l.delay = addedDelay(l.rttMs, l.scale, ms)
}

// setRule takes the rule a lab decided for this link (an agent's copy of
// it, agent.go): state, applied one-way delay and jitter, and the model
// and measured round trips for the agent's own reports.
func (l *link) setRule(r linkRule) (changed bool) {
	changed = l.setUp(r.Up)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rttMs, l.measured = r.RTTMs, r.MeasuredMs
	l.delay = time.Duration(r.DelayMs * float64(time.Millisecond))
	l.jitter = time.Duration(r.JitterMs * float64(time.Millisecond))
	return changed
}

func (l *link) setJitter(j time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.jitter = j
}

// isUp reports whether the link carries traffic now.
func (l *link) isUp() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up
}

// setUp changes the link's state. Cutting it closes every flow on it: a cut
// never drops bytes inside a stream (that desynchronises etcd's decoder), it
// ends the connection, and new ones are refused while cut.
func (l *link) setUp(up bool) (changed bool) {
	l.mu.Lock()
	changed = l.up != up
	l.up = up
	if changed && up {
		l.upSince = time.Now()
	}
	l.mu.Unlock()
	if !up {
		l.dropFlows()
	}
	return changed
}

// dropFlows ends every flow on the link (their connections close).
func (l *link) dropFlows() {
	l.mu.Lock()
	victims := make([]*flow, 0, len(l.conns))
	for f := range l.conns {
		victims = append(victims, f)
	}
	clear(l.conns)
	l.mu.Unlock()
	for _, f := range victims {
		f.cancel()
	}
}

// attach registers a flow on the link if it is up. The returned detach must
// be called when the flow ends.
func (l *link) attach(f *flow) (ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.up {
		return false
	}
	l.conns[f] = struct{}{}
	return true
}

func (l *link) detach(f *flow) {
	l.mu.Lock()
	delete(l.conns, f)
	l.mu.Unlock()
}

// due is the release time of a chunk that arrives now: arrival + delay
// (+ jitter), never earlier than the previous chunk's release.
func (l *link) due(arrival time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.delay
	if l.jitter > 0 {
		d += time.Duration(rand.Int64N(int64(l.jitter)))
	}
	t := arrival.Add(d)
	if t.Before(l.lastDue) {
		t = l.lastDue
	}
	l.lastDue = t
	return t
}

func (l *link) count(n int) {
	l.bytes.Add(int64(n))
	l.messages.Add(1)
}

// LinkStatus is one ordered pair of regions as a Snapshot shows it.
type LinkStatus struct {
	From, To  string
	Up        bool
	RTTMs     float64 // model round trip at scale 1 (twice this direction's one-way delay)
	DelayMs   float64 // one-way delay applied now (after the latency scale)
	Estimated bool    // RTT estimated from great-circle distance
	Bytes     int64   // bytes carried from → to
	Messages  int64   // chunks carried (≈ raft message batches, RPC frames)
	// MeasuredRTTMs is the real round trip between the hosts of two
	// regions on separate machines (caplab region), measured between
	// their agents; 0 on one machine. The delay adds only what is missing
	// to reach RTTMs × the latency scale.
	MeasuredRTTMs float64
	// OverModel: the measured round trip exceeds the model's (by more
	// than 1 ms and 5 %), so the link is slower than the lab says and
	// adds no delay.
	OverModel bool
}

func (l *link) status() LinkStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LinkStatus{
		From: l.from, To: l.to, Up: l.up,
		RTTMs: l.rttMs, DelayMs: float64(l.delay) / float64(time.Millisecond),
		Estimated: l.estimate,
		Bytes:     l.bytes.Load(), Messages: l.messages.Load(),
		MeasuredRTTMs: l.measured, OverModel: overModel(l.measured, l.rttMs*l.scale),
	}
}

// overModel reports a measured round trip that exceeds the model's by
// more than noise (1 ms and 5 %).
func overModel(measured, model float64) bool {
	return measured > 0 && measured-model > max(1, 0.05*model)
}

// oneWay is the link's current one-way delay (no jitter).
func (l *link) oneWay() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.delay
}

// streamOpened records a raft stream that carries this link's data.
func (l *link) streamOpened(f *flow) {
	l.mu.Lock()
	l.streams[f] = time.Now()
	l.mu.Unlock()
}

func (l *link) streamClosed(f *flow) {
	l.mu.Lock()
	delete(l.streams, f)
	l.mu.Unlock()
}

// freshStreams counts the raft streams opened since the link last came up:
// only those are known to work (a member notices a stream that broke only
// when it next writes to it, and loses that message).
func (l *link) freshStreams() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.streams {
		if !at.Before(l.upSince) {
			n++
		}
	}
	return n
}
