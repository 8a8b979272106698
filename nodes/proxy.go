package nodes

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxPeerBody bounds one peer POST (a raft message batch or a snapshot).
const maxPeerBody = 256 << 20

// peerProxy stands in front of one consensus member's peer listener. etcd
// names the sending member on every peer request (X-Server-From), so the
// proxy can put each exchange on the link it crosses:
//
//   - stream GET /raft/stream/{msgappv2,message}/<from>: the listener's
//     messages flow back to the requester in the response body, on link
//     listener → requester;
//   - pipeline and snapshot POSTs (/raft, /raft/snapshot): the message flows
//     in the request body, on link requester → listener; the small response
//     comes back after the reverse link's delay.
//
// A request whose data link is cut is refused by closing the connection;
// cutting a link closes every exchange on it. Bytes are never dropped inside
// a stream. Requests without a known sender (version probes at start-up)
// pass through undelayed and uncounted.
type peerProxy struct {
	region string
	target atomic.Value // string: host:port of the member's real peer listener
	fabric *Fabric
	sender func(memberID string) (region string, ok bool)
	whoami string // an agent's: what GET whoamiPath answers (hostports.go)

	transport *http.Transport
	srv       *http.Server
	ln        net.Listener
	handlers  sync.WaitGroup
	closeOnce sync.Once

	activeMu sync.Mutex
	active   map[*flow]struct{} // every exchange in progress, to drop on a crash
	closed   bool               // under activeMu: no new handler counts once set
}

func newPeerProxy(region, target string, ln net.Listener, f *Fabric, sender func(string) (string, bool)) *peerProxy {
	p := &peerProxy{
		region: region, fabric: f, sender: sender, ln: ln, active: map[*flow]struct{}{},
		transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
	p.target.Store(target)
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	return p
}

func (p *peerProxy) serve() { _ = p.srv.Serve(p.ln) }

// serveOn serves one more listener (an agent's loopback port, besides the
// connections its peers tunnel in); close closes it too.
func (p *peerProxy) serveOn(ln net.Listener) { _ = p.srv.Serve(ln) }

// setTarget points the proxy at a member that moved to another port.
func (p *peerProxy) setTarget(hostport string) { p.target.Store(hostport) }

// close stops accepting, closes every connection and waits for handlers.
func (p *peerProxy) close() {
	p.closeOnce.Do(func() {
		p.activeMu.Lock()
		p.closed = true // handlers.Add never races handlers.Wait below
		p.activeMu.Unlock()
		_ = p.srv.Close()
		p.handlers.Wait()
		p.transport.CloseIdleConnections()
	})
}

// dropAll ends every exchange in progress and idle upstream connection:
// the member behind the proxy crashed, and its listener should find no
// connection left to wait for as it closes.
func (p *peerProxy) dropAll() {
	p.activeMu.Lock()
	for f := range p.active {
		f.cancel()
	}
	p.activeMu.Unlock()
	p.transport.CloseIdleConnections()
}

func (p *peerProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.activeMu.Lock()
	if p.closed {
		p.activeMu.Unlock()
		panic(http.ErrAbortHandler)
	}
	p.handlers.Add(1)
	p.activeMu.Unlock()
	defer p.handlers.Done()
	if p.whoami != "" && r.URL.Path == whoamiPath {
		_, _ = io.WriteString(w, p.whoami)
		return
	}
	from, known := p.sender(r.Header.Get("X-Server-From"))
	if !known || from == p.region {
		p.exchange(w, r, nil, nil)
		return
	}
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/raft/stream/") {
		p.exchange(w, r, p.fabric.link(p.region, from), p.fabric.link(from, p.region))
		return
	}
	p.exchange(w, r, p.fabric.link(from, p.region), p.fabric.link(p.region, from))
}

// exchange forwards one request. data is the link the payload crosses
// (nil: unattributed); control is the opposite direction, which only adds
// its delay (the request of a stream, the response of a POST).
func (p *peerProxy) exchange(w http.ResponseWriter, r *http.Request, data, control *link) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	self := &flow{cancel: cancel}
	p.activeMu.Lock()
	p.active[self] = struct{}{}
	p.activeMu.Unlock()
	defer func() {
		p.activeMu.Lock()
		delete(p.active, self)
		p.activeMu.Unlock()
	}()
	if data != nil {
		fl := &flow{cancel: cancel}
		if !data.attach(fl) {
			panic(http.ErrAbortHandler) // cut: the connection just closes
		}
		defer data.detach(fl)
	}
	stream := r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/raft/stream/")

	var body []byte
	if r.Body != nil && r.Method != http.MethodGet {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, maxPeerBody))
		if err != nil {
			panic(http.ErrAbortHandler)
		}
	}
	// The request crosses to the listener: a stream's request after the
	// control link's delay, a POST's message after the data link's.
	switch {
	case data == nil:
	case stream:
		if sleepUntil(ctx, time.Now().Add(control.oneWay())) != nil {
			panic(http.ErrAbortHandler)
		}
	default:
		if sleepUntil(ctx, data.due(time.Now())) != nil {
			panic(http.ErrAbortHandler)
		}
	}

	out := r.Clone(ctx)
	out.URL.Scheme = "http"
	out.URL.Host = p.target.Load().(string)
	out.RequestURI = ""
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	if r.Method == http.MethodGet {
		out.Body = nil
		out.ContentLength = 0
	}
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		panic(http.ErrAbortHandler) // member down: like a refused connection
	}
	defer resp.Body.Close()
	if data != nil && !stream {
		data.count(len(body))
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}

	if stream && data != nil {
		if resp.StatusCode == http.StatusOK {
			data.streamOpened(self)
			defer data.streamClosed(self)
		}
		w.WriteHeader(resp.StatusCode)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		err := pump(ctx, data, w, func() { _ = rc.Flush() }, resp.Body)
		_ = resp.Body.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			panic(http.ErrAbortHandler)
		}
		return
	}
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerBody))
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if control != nil && sleepUntil(ctx, time.Now().Add(control.oneWay())) != nil {
		panic(http.ErrAbortHandler)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(respBody)
}

// replicaProxy carries the replicated store's traffic from one region to
// another region's replica: a TCP proxy listening for region from and
// dialling region to's replica. A TCP connection needs both directions, so
// it lives only while both links are up; cutting either closes it.
//
// The outside endpoints (endpoints.go) use the same proxy in front of a
// member's or a replica's client port; with from == to it is a plain
// local relay that crosses no link.
type replicaProxy struct {
	from, to string
	target   atomic.Value // string: host:port of region to's replica
	fabric   *Fabric
	ln       net.Listener
	// dial, when set, reaches the server instead of target, and the
	// proxy applies no link: a lab's endpoint into a region on an agent,
	// which applies them itself (remote.go).
	dial func(ctx context.Context) (net.Conn, error)

	conns     sync.WaitGroup
	done      chan struct{}
	closeOnce sync.Once

	activeMu sync.Mutex
	active   map[*flow]struct{}
	closed   bool // under activeMu: no new connection counts once set
}

func newReplicaProxy(from, to, target string, ln net.Listener, f *Fabric) *replicaProxy {
	p := &replicaProxy{from: from, to: to, fabric: f, ln: ln, done: make(chan struct{}), active: map[*flow]struct{}{}}
	p.target.Store(target)
	return p
}

func (p *replicaProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.accept(c) {
			return
		}
	}
}

// accept carries one connection (from serve, or tunnelled to an agent);
// false, and the connection closed, once the proxy is closed.
func (p *replicaProxy) accept(c net.Conn) bool {
	p.activeMu.Lock()
	if p.closed {
		p.activeMu.Unlock()
		_ = c.Close()
		return false
	}
	p.conns.Add(1)
	p.activeMu.Unlock()
	go func() {
		defer p.conns.Done()
		p.carry(c)
	}()
	return true
}

func (p *replicaProxy) carry(c net.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	go func() { // the proxy closing ends every connection
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	fl := &flow{cancel: cancel}
	p.activeMu.Lock()
	p.active[fl] = struct{}{}
	p.activeMu.Unlock()
	defer func() {
		p.activeMu.Lock()
		delete(p.active, fl)
		p.activeMu.Unlock()
	}()
	local := p.from == p.to || p.dial != nil // a client in the server's own region crosses no link
	var fwd, back *link
	if !local {
		fwd, back = p.fabric.link(p.from, p.to), p.fabric.link(p.to, p.from)
		if !fwd.attach(fl) {
			_ = c.Close()
			return
		}
		defer fwd.detach(fl)
		if !back.attach(fl) {
			_ = c.Close()
			return
		}
		defer back.detach(fl)
	}
	var up net.Conn
	var err error
	if p.dial != nil {
		dctx, dcancel := context.WithTimeout(ctx, tunnelDialTimeout)
		up, err = p.dial(dctx)
		dcancel()
	} else {
		up, err = (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", p.target.Load().(string))
	}
	if err != nil {
		_ = c.Close()
		return
	}
	context.AfterFunc(ctx, func() { _ = up.Close() })
	carry := func(l *link, dst io.Writer, src io.Reader) {
		if local {
			_, _ = io.Copy(dst, src)
			return
		}
		_ = pump(ctx, l, dst, nil, src)
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		carry(fwd, up, c)
		cancel()
	}()
	carry(back, c, up)
	cancel()
	<-finished
}

// setTarget points the proxy at a replica that moved to another port.
func (p *replicaProxy) setTarget(hostport string) { p.target.Store(hostport) }

// dropAll ends every connection in progress (the replica behind it crashed).
func (p *replicaProxy) dropAll() {
	p.activeMu.Lock()
	defer p.activeMu.Unlock()
	for f := range p.active {
		f.cancel()
	}
}

func (p *replicaProxy) close() {
	p.closeOnce.Do(func() {
		p.activeMu.Lock()
		p.closed = true
		p.activeMu.Unlock()
		close(p.done)
		if p.ln != nil {
			_ = p.ln.Close()
		}
		p.conns.Wait()
	})
}
