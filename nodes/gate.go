package nodes

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/server/v3/embed"
	"google.golang.org/grpc"
)

// A server's storage must not close under a request. etcd's handlers read
// the backend directly: a serializable Range that reaches a server after
// its raft loop has stopped and closed the bbolt file reads unmapped memory
// and the whole process dies (SIGSEGV in bbolt's Tx.Bucket, issue 19) —
// and etcd stops its raft loop and closes its storage (HardStop, or a stop
// of its own) while its gRPC server still serves; only embed's Close stops
// that, later.
//
// A requestGate stands between one server's gRPC API and etcd's handlers
// for that server's life (one gate per start). Every request passes it on
// the way in and out. When the server begins to stop, the gate closes: new
// requests are refused at once with etcd's own "server stopped"
// (Unavailable, which clients treat as a server going away), the requests
// inside have their contexts cancelled (a write waiting for raft, a
// linearizable read waiting for its read index, a watch, end at once), and
// the stop waits until the last one has left. It waits inside etcd's own
// stop sequence: guard attaches the gate to the server with GoAttach, and
// etcd closes its storage only after every attached goroutine has
// returned. So the order holds for every stop — a crash, Close, and a stop
// etcd makes on its own after a fatal error.

// gateWarnEvery is how often a stop still waiting for requests says so.
const gateWarnEvery = 5 * time.Second

type requestGate struct {
	name string
	log  *slog.Logger

	mu      sync.Mutex
	closed  bool
	next    uint64                        // id of the next request let in
	inside  map[uint64]context.CancelFunc // the requests inside, by id: closing cancels them
	drained chan struct{}                 // closed once the gate is closed and empty
}

func newRequestGate(name string, log *slog.Logger) *requestGate {
	return &requestGate{name: name, log: log, inside: map[uint64]context.CancelFunc{}, drained: make(chan struct{})}
}

// streamWorkers is how many goroutines of a server's gRPC server take the
// requests in turn (grpc.NumStreamWorkers; more at once get a goroutine of
// their own, as without workers). The gate's interceptor adds two frames
// to every request's stack, and on a new goroutine per request that made
// a serializable Range's stack grow, and be copied, once more: profiled,
// runtime.copystack under the Range was a third of the gated handler's
// CPU, 4–17 µs a request (6–30 % more CPU per Get than without the gate on
// the 2-core machine). Workers keep their grown stacks, and with them the
// gated server costs what the ungated one did (BenchmarkRequestGate:
// CPU ratio gated/ungated 1.00–1.05 for Gets, 0.96–1.00 for Puts).
const streamWorkers = 16

// serverOptions put the gate into a server's gRPC interceptor chains
// (embed.Config.GRPCAdditionalServerOptions; etcd's own interceptors run
// first, the gate last, right before the handler).
func (g *requestGate) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(g.unary), grpc.ChainStreamInterceptor(g.stream), grpc.NumStreamWorkers(streamWorkers)}
}

// guard ties the gate to a started server: the gate closes, and drains,
// when the server begins to stop and before etcd closes its storage.
func (g *requestGate) guard(e *embed.Etcd) {
	s := e.Server
	s.GoAttach(func() {
		<-s.StoppingNotify()
		g.close()
	})
	// GoAttach does nothing for a server already stopping (etcd may stop
	// one right after its start): close the gate here then.
	select {
	case <-s.StoppingNotify():
		g.close()
	default:
	}
}

// enter lets a request in, with a context that ends when the gate closes;
// leave must follow. It refuses once the gate is closed.
func (g *requestGate) enter(ctx context.Context) (_ context.Context, leave func(), ok bool) {
	ctx, cancel := context.WithCancel(ctx)
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		cancel()
		return nil, nil, false
	}
	id := g.next
	g.next++
	g.inside[id] = cancel
	g.mu.Unlock()
	return ctx, func() {
		cancel()
		g.mu.Lock()
		delete(g.inside, id)
		if g.closed && len(g.inside) == 0 {
			close(g.drained)
		}
		g.mu.Unlock()
	}, true
}

func (g *requestGate) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, leave, ok := g.enter(ctx)
	if !ok {
		return nil, rpctypes.ErrGRPCStopped
	}
	defer leave()
	return handler(ctx, req)
}

func (g *requestGate) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, leave, ok := g.enter(ss.Context())
	if !ok {
		return rpctypes.ErrGRPCStopped
	}
	defer leave()
	return handler(srv, gatedStream{ServerStream: ss, ctx: ctx})
}

// gatedStream is a stream whose context ends when the gate closes.
type gatedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s gatedStream) Context() context.Context { return s.ctx }

// close refuses new requests, ends the ones inside and returns once they
// have all left. Safe to call twice (both calls wait). A handler that does
// not end is waited for — storage closed under it would take the process
// down — and named in a warning every gateWarnEvery.
func (g *requestGate) close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		for _, cancel := range g.inside {
			cancel()
		}
		if len(g.inside) == 0 {
			close(g.drained)
		}
	}
	g.mu.Unlock()
	start := time.Now()
	t := time.NewTicker(gateWarnEvery)
	defer t.Stop()
	for {
		select {
		case <-g.drained:
			return
		case <-t.C:
			g.mu.Lock()
			n := len(g.inside)
			g.mu.Unlock()
			g.log.Warn("a stopping server waits for requests to end before its storage closes", "server", g.name, "requests", n, "after", time.Since(start).Round(time.Millisecond))
		}
	}
}
