package nodes

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The lab's side of regions on other hosts: one control connection per
// agent (agent.go), kept alive, and called again when it drops.
//
// What the lab knows of a remote region is what its agent last reported.
// When the connection drops the lab dials again at once and then every
// reconnectEvery: an agent whose host refuses the connection is not
// running — its region crashed (kill -9 of the agent is exactly that) —
// while one that does not answer is out of reach, and its region is shown
// stale: as last reported, marked so. An agent that comes back is given
// its layout and the link rules again and, unless the lab crashed the
// region on purpose, told to start its servers: a restarted agent resumes
// its region from its data.

// reconnectEvery is how often the lab calls an agent it lost.
const reconnectEvery = 500 * time.Millisecond

// agentState is the lab's view of one agent.
type agentState int

const (
	agentConnected agentState = iota
	agentStale                // lost, and not known to be down: out of reach
	agentDown                 // its host refuses connections: the agent is not running
	agentRefused              // it answers, but refuses this lab or is of another version
)

func (s agentState) String() string {
	return [...]string{"connected", "out of reach", "down", "refused"}[s]
}

// agentLink is one remote region's agent as the lab holds it.
type agentLink struct {
	rs     *remoteSet
	region string
	addr   string

	mu      sync.Mutex
	cc      *ctlConn
	state   agentState
	since   time.Time
	why     string
	status  *agentStatus
	boot    string
	base    map[[2]string]linkCount // counters of the agent's earlier runs
	zbase   map[[2]string]linkCount
	wantUp  bool   // the lab wants the region running (Crash clears it)
	acked   uint64 // newest link table it has in force
	started bool   // the region was started by this lab
	untold  bool   // a change of state not logged yet
}

func (l *agentLink) conn() *ctlConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cc
}

// setState records a change of the lab's view, and logs it (a nil log
// defers the message to the next change that has one: a dropped
// connection is told as what the next call finds — down, or out of reach).
func (l *agentLink) setState(s agentState, why string, log *slog.Logger) {
	l.mu.Lock()
	changed := l.state != s
	l.state, l.why = s, why
	if changed {
		l.since = time.Now()
	}
	tell := log != nil && (changed || l.untold)
	l.untold = log == nil && (changed || l.untold)
	l.mu.Unlock()
	if !tell {
		return
	}
	if s == agentConnected {
		log.Warn("the agent of a region is back", "region", l.region, "agent", l.addr)
	} else {
		log.Warn("lost the agent of a region", "region", l.region, "agent", l.addr, "state", s.String(), "why", why)
	}
}

// onStatus takes a status report. A new run of the agent (its counters
// start at zero again) adds the last counts of the one before to the base.
func (l *agentLink) onStatus(st *agentStatus) {
	l.mu.Lock()
	if l.status != nil && st.Boot == l.boot && st.Seq < l.status.Seq {
		l.mu.Unlock() // an older report overtaken by an answer's
		return
	}
	if l.boot != "" && st.Boot != l.boot && l.status != nil {
		for _, c := range l.status.Links {
			k := [2]string{c.From, c.To}
			b := l.base[k]
			b.Bytes, b.Messages = b.Bytes+c.Bytes, b.Messages+c.Messages
			l.base[k] = b
		}
		for _, c := range l.status.ZoneLinks {
			k := [2]string{c.From, c.To}
			b := l.zbase[k]
			b.Bytes, b.Messages = b.Bytes+c.Bytes, b.Messages+c.Messages
			l.zbase[k] = b
		}
	}
	structural := l.status == nil || !sameAgentStructure(l.status, st)
	l.boot, l.status = st.Boot, st
	l.mu.Unlock()
	if structural {
		l.rs.c.changed()
	}
}

// ctlConn is the lab's end of a control connection.
type ctlConn struct {
	conn *tls.Conn

	wmu sync.Mutex

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan *message

	done      chan struct{}
	closeOnce sync.Once
	onStatus  atomic.Pointer[func(*agentStatus)]
}

func newCtlConn(c *tls.Conn) *ctlConn {
	return &ctlConn{conn: c, pending: map[uint64]chan *message{}, done: make(chan struct{})}
}

// read dispatches replies and status reports until the connection ends.
func (cc *ctlConn) read() {
	defer cc.close()
	for {
		_ = cc.conn.SetReadDeadline(time.Now().Add(controlSilence))
		m, err := readFrame(cc.conn)
		if err != nil {
			return
		}
		switch {
		case m.Op == ctlStatus && m.Status != nil:
			if f := cc.onStatus.Load(); f != nil {
				(*f)(m.Status)
			}
		case m.Re != 0:
			cc.mu.Lock()
			ch := cc.pending[m.Re]
			delete(cc.pending, m.Re)
			cc.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}
}

// call sends a request and waits for its reply, ctx's end or the
// connection's.
func (cc *ctlConn) call(ctx context.Context, m *message) (*message, error) {
	ch := make(chan *message, 1)
	cc.mu.Lock()
	cc.next++
	m.ID = cc.next
	cc.pending[m.ID] = ch
	cc.mu.Unlock()
	defer func() {
		cc.mu.Lock()
		delete(cc.pending, m.ID)
		cc.mu.Unlock()
	}()
	cc.wmu.Lock()
	_ = cc.conn.SetWriteDeadline(time.Now().Add(controlWrite))
	err := writeFrame(cc.conn, m)
	cc.wmu.Unlock()
	if err != nil {
		cc.close()
		return nil, fmt.Errorf("the control connection failed: %w", err)
	}
	select {
	case r := <-ch:
		if r.Status != nil {
			if f := cc.onStatus.Load(); f != nil {
				(*f)(r.Status)
			}
		}
		if r.Err != "" {
			return r, remoteErr(r)
		}
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-cc.done:
		return nil, errors.New("the control connection closed")
	}
}

func (cc *ctlConn) close() {
	cc.closeOnce.Do(func() {
		close(cc.done)
		_ = cc.conn.Close()
	})
}

// remoteError is an agent's error, with the sentinel a caller branches on
// (ErrRegionDown …) when the agent's was one.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// errCodes name the sentinel errors an agent's replies carry.
var errCodes = map[string]error{
	"region-down": ErrRegionDown, "region-up": ErrRegionUp, "bad-operation": ErrBadOperation, "closed": ErrClosed,
}

// errCode is the code of err's sentinel, "" for none.
func errCode(err error) string {
	for code, s := range errCodes {
		if errors.Is(err, s) {
			return code
		}
	}
	return ""
}

func remoteErr(m *message) error {
	return &remoteError{msg: m.Err, sentinel: errCodes[m.Code]}
}

// refusedConn reports a dial refused by the host: nothing listens there.
func refusedConn(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// supervise keeps the control connection of one agent: keep-alives while
// it works, calls again when it drops, until the lab stops.
func (l *agentLink) supervise() {
	rs := l.rs
	defer rs.bg.Done()
	for {
		if cc := l.conn(); cc != nil {
			l.keepAlive(cc)
			l.mu.Lock()
			if l.cc == cc {
				l.cc = nil
			}
			l.mu.Unlock()
			select {
			case <-rs.stop:
				return
			default:
			}
			l.setState(agentStale, "the control connection dropped", nil) // logged once the next call tells why
		}
		if rs.closing.Load() { // the lab is telling its agents to stop: do not start one again
			<-rs.stop
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*tunnelDialTimeout)
		cc, h, err := rs.connect(ctx, l)
		if err == nil && rs.closing.Load() {
			cc.close()
			cancel()
			<-rs.stop
			return
		}
		if err == nil {
			err = rs.resync(ctx, l, cc, h)
			if err != nil {
				cc.close()
				l.setState(agentRefused, err.Error(), rs.log)
			}
		} else {
			switch {
			case refusedConn(err):
				l.setState(agentDown, err.Error(), rs.log)
			case errors.Is(err, errRefusedByAgent), errors.Is(err, errNotThisLab):
				l.setState(agentRefused, err.Error(), rs.log)
			default:
				l.setState(agentStale, err.Error(), rs.log)
			}
		}
		cancel()
		if err == nil {
			rs.redial(l.region) // before it is called connected: its clients' first calls must not find dead connections
			l.setState(agentConnected, "", rs.log)
			rs.c.changed()
			continue
		}
		rs.c.changed()
		select {
		case <-rs.stop:
			return
		case <-time.After(reconnectEvery):
		}
	}
}

// keepAlive pings the agent every second until the connection fails or
// the lab stops.
func (l *agentLink) keepAlive(cc *ctlConn) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-l.rs.stop:
			return
		case <-cc.done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), controlSilence)
			_, err := cc.call(ctx, &message{Op: ctlPing})
			cancel()
			if err != nil {
				cc.close()
				return
			}
		}
	}
}

// Errors of a control connection that the agent refused or that is not
// this lab's agent.
var (
	errRefusedByAgent = errors.New("refused by the agent")
	errNotThisLab     = errors.New("not an agent of this lab")
)

// connect dials an agent and opens a control connection: TLS, both proofs
// of the token, the versions and the region compared.
func (rs *remoteSet) connect(ctx context.Context, l *agentLink) (*ctlConn, *hello, error) {
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", l.addr)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach the agent of %s at %s: %w", l.region, l.addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	tc := tls.Client(raw, rs.id.clientConfig())
	fail := func(err error) (*ctlConn, *hello, error) {
		_ = tc.Close()
		return nil, nil, err
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return fail(fmt.Errorf("the agent of %s at %s: TLS: %w", l.region, l.addr, err))
	}
	if err := writeLine(tc, wireMagic, kindControl); err != nil {
		return fail(err)
	}
	if err := readAnswer(tc); err != nil {
		return fail(fmt.Errorf("the agent of %s at %s: %w", l.region, l.addr, err))
	}
	cs := tc.ConnectionState()
	own, err := proof(rs.key, "lab", cs)
	if err != nil {
		return fail(err)
	}
	if err := writeFrame(tc, &message{Hello: &hello{Proof: own, Version: rs.version, Region: l.region, Lab: rs.id.id}}); err != nil {
		return fail(err)
	}
	m, err := readFrameMax(tc, maxHello)
	if err != nil {
		return fail(fmt.Errorf("the agent of %s at %s closed the connection: %w", l.region, l.addr, err))
	}
	if m.Err != "" {
		return fail(fmt.Errorf("%w: the agent of %s at %s: %s", errRefusedByAgent, l.region, l.addr, m.Err))
	}
	h := m.Hello
	if h == nil || !checkProof(rs.key, "agent", cs, h.Proof) {
		return fail(fmt.Errorf("%w: what answers at %s for %s cannot prove it knows the lab's token", errNotThisLab, l.addr, l.region))
	}
	if d := versionDifference(rs.version, h.Version); d != "" {
		return fail(fmt.Errorf("%w: the agent of %s at %s runs another caplab (%s); run the same caplab on every host (this lab: %s)", errNotThisLab, l.region, l.addr, d, rs.version))
	}
	if h.Region != l.region {
		return fail(fmt.Errorf("%w: the agent at %s serves region %s, not %s: start it with --name %s, or give --remote %s=<its address>", errNotThisLab, l.addr, h.Region, l.region, l.region, h.Region))
	}
	if h.Lab != "" && h.Lab != rs.id.id {
		return fail(fmt.Errorf("%w: the agent of %s at %s belongs to lab %s, not this lab (%s)", errNotThisLab, l.region, l.addr, h.Lab, rs.id.id))
	}
	_ = tc.SetDeadline(time.Time{})
	cc := newCtlConn(tc)
	f := l.onStatus
	cc.onStatus.Store(&f)
	go cc.read()
	return cc, h, nil
}

// enroll gives an agent that belongs to no lab to this one.
func (rs *remoteSet) enroll(ctx context.Context, l *agentLink, cc *ctlConn, h *hello) error {
	cert, err := rs.id.issue(l.region, h.Key)
	if err != nil {
		return err
	}
	_, err = cc.call(ctx, &message{Op: ctlEnroll, Enroll: &enrollment{CA: rs.id.ca.Raw, Cert: cert, Lab: rs.id.id, Temporary: rs.temporary}})
	if err != nil {
		return fmt.Errorf("the agent of %s at %s did not join this lab: %w", l.region, l.addr, err)
	}
	return nil
}

// resync brings an agent that was lost, or restarted, back: its layout,
// the link rules in force, and its servers started if the lab wants the
// region up (a restarted agent resumes its region from its data).
func (rs *remoteSet) resync(ctx context.Context, l *agentLink, cc *ctlConn, h *hello) error {
	if h.Lab == "" {
		return fmt.Errorf("%w: the agent of %s at %s holds no data of this lab (it belongs to no lab): its region cannot rejoin its group; start it with the data directory it had", errNotThisLab, l.region, l.addr)
	}
	if err := rs.prepare(ctx, l, cc); err != nil {
		return err
	}
	if err := rs.pushTo(ctx, l, cc, rs.currentTable()); err != nil {
		return err
	}
	l.mu.Lock()
	want := l.wantUp
	l.mu.Unlock()
	if want {
		_, err := cc.call(ctx, &message{Op: ctlStart, Start: rs.startOrder(false, false)})
		if err != nil && !errors.Is(err, ErrRegionUp) {
			return fmt.Errorf("the agent of %s at %s could not start its region again: %w", l.region, l.addr, err)
		}
	}
	l.mu.Lock()
	l.cc = cc
	l.mu.Unlock()
	return nil
}
