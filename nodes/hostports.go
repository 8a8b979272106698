package nodes

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// The loopback ports of a host. Every consensus member advertises the
// same address on every host — 127.0.0.1:<its port>, chosen by the lab —
// because etcd keeps one peer URL per member in its data. So each agent
// listens, on its host's loopback, on every member's port: its own
// member's is the peer proxy (proxy.go); every other is a forwarder that
// tunnels the connection, over TLS, to that member's agent, whose proxy
// serves it. A member's traffic to another thus leaves its host only
// inside an authenticated connection, and the rules of the link it
// crosses are applied at the proxy of the member that listens — which
// sees both directions of the exchange — exactly as on one machine.
//
// Agents sharing a host (or a lab running regions itself besides remote
// ones) share its loopback: a port another agent of the same lab already
// holds needs no second listener. An agent that cannot take a port asks
// what holds it (whoamiPath through it) and reports it as shared when the
// answer is the right region of the same lab, held when it is not; it
// keeps trying, and takes over the port when its holder goes away.

// Port states in agentStatus.
const (
	portServing = "serving" // this agent listens on it
	portShared  = "shared"  // another agent of the same lab on this host does
	portPending = "pending" // not known yet: what holds it does not answer (yet)
	portHeld    = "held"    // something else holds it
)

// keepEvery is how often an agent retries the ports it does not hold.
const keepEvery = 500 * time.Millisecond

// portKeeper holds an agent's loopback ports.
type portKeeper struct {
	ar *agentRegion

	mu    sync.Mutex
	ports map[string]*hostPort // by region

	conns  sync.WaitGroup
	connMu sync.Mutex
	active map[net.Conn]struct{}
	stop   chan struct{}
	done   chan struct{}
}

type hostPort struct {
	region, addr string
	ln           net.Listener // ours, once taken
	state        string
	detail       string
	probed       time.Time // when what holds it last answered as a sibling
}

// reprobeEvery is how often a shared port's holder is asked again.
const reprobeEvery = 5 * time.Second

func newPortKeeper(ar *agentRegion) *portKeeper {
	k := &portKeeper{ar: ar, ports: map[string]*hostPort{}, active: map[net.Conn]struct{}{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, sr := range ar.specCopy().Regions {
		k.ports[sr.Name] = &hostPort{region: sr.Name, addr: sr.Peer, state: portPending}
	}
	k.keep()
	go k.run()
	return k
}

func (k *portKeeper) run() {
	defer close(k.done)
	for {
		every := keepEvery
		if k.pending() {
			every = keepEvery / 5 // at start a sibling may not be laid out yet
		}
		select {
		case <-k.stop:
			return
		case <-time.After(every):
			k.keep()
		}
	}
}

// pending reports a port whose holder has not answered yet.
func (k *portKeeper) pending() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range k.ports {
		if p.state == portPending {
			return true
		}
	}
	return false
}

// keep tries to take every port not held yet.
func (k *portKeeper) keep() {
	k.mu.Lock()
	var todo []*hostPort
	for _, p := range k.ports {
		if p.ln == nil {
			todo = append(todo, p)
		}
	}
	k.mu.Unlock()
	for _, p := range todo {
		k.mu.Lock()
		probe := p.state != portShared || time.Since(p.probed) >= reprobeEvery
		k.mu.Unlock()
		state, detail, ln := k.take(p.region, p.addr, probe)
		k.mu.Lock()
		select {
		case <-k.stop:
			if ln != nil {
				_ = ln.Close()
			}
			k.mu.Unlock()
			return
		default:
		}
		if state != "" {
			p.state, p.detail = state, detail
			if state == portShared {
				p.probed = time.Now()
			}
		}
		p.ln = ln
		k.mu.Unlock()
		if ln != nil {
			k.serve(p.region, ln)
		}
	}
}

// take listens on a region's port, or finds out what holds it (when
// probe; "" leaves the state as it was).
func (k *portKeeper) take(region, addr string, probe bool) (state, detail string, ln net.Listener) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return portServing, "", ln
	}
	if !addrInUse(err) {
		return portHeld, err.Error(), nil
	}
	if !probe {
		return "", "", nil
	}
	want := whoami(k.ar.specCopy().Lab, region)
	cli := http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cli.Get("http://" + addr + whoamiPath)
	if err != nil {
		return portPending, "taken, and what holds it does not answer: " + err.Error(), nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	got := strings.TrimSpace(string(body))
	switch {
	case resp.StatusCode == http.StatusOK && got == want:
		return portShared, "", nil
	case resp.StatusCode == http.StatusBadGateway:
		return portPending, "taken by an agent of this lab that cannot reach " + region + "'s agent yet", nil
	default:
		return portHeld, fmt.Sprintf("another program holds %s (it answered %d %.60q)", addr, resp.StatusCode, got), nil
	}
}

// serve serves a port it took: the region's own through its peer proxy,
// another region's by forwarding to that region's agent.
func (k *portKeeper) serve(region string, ln net.Listener) {
	if region == k.ar.self {
		go k.ar.proxy.serveOn(ln)
		return
	}
	k.conns.Add(1)
	go func() {
		defer k.conns.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !k.track(c, true) {
				return
			}
			k.conns.Add(1)
			go func() {
				defer k.conns.Done()
				defer k.track(c, false)
				k.forward(c, region)
			}()
		}
	}()
}

// track records a forwarded connection (to close it on close); false
// once the keeper is closed.
func (k *portKeeper) track(c net.Conn, add bool) bool {
	k.connMu.Lock()
	defer k.connMu.Unlock()
	if !add {
		delete(k.active, c)
		return true
	}
	select {
	case <-k.stop:
		_ = c.Close()
		return false
	default:
	}
	k.active[c] = struct{}{}
	return true
}

// forward tunnels one local connection to region's agent. A peer that
// cannot be reached is a connection closed at once, as etcd would see a
// host that is down; a whoami that cannot be forwarded is answered 502.
func (k *portKeeper) forward(c net.Conn, region string) {
	ctx, cancel := context.WithTimeout(context.Background(), tunnelDialTimeout)
	up, err := k.ar.dial(ctx, region, kindPeer, region)
	cancel()
	if err != nil {
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if req, rerr := http.ReadRequest(bufio.NewReader(c)); rerr == nil && req.URL.Path == whoamiPath {
			_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		}
		_ = c.Close()
		return
	}
	splice(c, up)
}

// states reports every port, in region order.
func (k *portKeeper) states() []portState {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]portState, 0, len(k.ports))
	for _, p := range k.ports {
		out = append(out, portState{Region: p.region, Addr: p.addr, State: p.state, Detail: p.detail})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Region < out[j].Region })
	return out
}

// close releases every port and ends the forwarded connections.
func (k *portKeeper) close() {
	k.mu.Lock()
	select {
	case <-k.stop:
		k.mu.Unlock()
		return
	default:
	}
	close(k.stop)
	for _, p := range k.ports {
		if p.ln != nil {
			_ = p.ln.Close()
		}
	}
	k.mu.Unlock()
	<-k.done
	k.connMu.Lock()
	for c := range k.active {
		_ = c.Close()
	}
	k.connMu.Unlock()
	k.conns.Wait()
}

// dialAgent opens a connection of kind to region's agent at addr and
// returns it once the agent took it. The agent's certificate must be
// signed by the lab (pool) and name the region.
func dialAgent(ctx context.Context, addr string, cfg *tls.Config, pool *x509.CertPool, region, kind string, args ...string) (net.Conn, error) {
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s's agent at %s: %w", region, addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	tc := tls.Client(raw, cfg)
	fail := func(err error) (net.Conn, error) {
		_ = tc.Close()
		return nil, err
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return fail(fmt.Errorf("%s's agent at %s: TLS: %w", region, addr, err))
	}
	if err := verifyAgent(pool, tc.ConnectionState(), region); err != nil {
		return fail(fmt.Errorf("%s at %s is not region %s's agent of this lab: %w", kind, addr, region, err))
	}
	if err := writeLine(tc, append([]string{wireMagic, kind}, args...)...); err != nil {
		return fail(fmt.Errorf("%s's agent at %s: %w", region, addr, err))
	}
	if err := readAnswer(tc); err != nil {
		return fail(fmt.Errorf("%s's agent at %s: %w", region, addr, err))
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

// splice copies both ways between two connections until either ends,
// then closes both.
func splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	_ = a.Close()
	_ = b.Close()
	<-done
}

// connListener is a net.Listener of connections handed to it (those other
// agents tunnel in), for an http.Server.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		_ = c.Close()
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// connSet holds connections to close at once when their owner stops.
type connSet struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// add takes connections in; false, and they are closed, once closed.
func (s *connSet) add(cs ...net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		for _, c := range cs {
			_ = c.Close()
		}
		return false
	}
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	for _, c := range cs {
		s.conns[c] = struct{}{}
	}
	return true
}

func (s *connSet) remove(cs ...net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		delete(s.conns, c)
	}
}

// closeAll closes every connection held, and any added later.
func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	clear(s.conns)
}
