package nodes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The gate lets requests in while open; closing it refuses new ones at
// once, ends the context of those inside, and returns only once the last
// has left.
func TestRequestGateDrainsBeforeClose(t *testing.T) {
	g := newRequestGate("test", slog.New(slog.DiscardHandler))
	ctx, leave, ok := g.enter(context.Background())
	if !ok {
		t.Fatal("an open gate refused a request")
	}
	closed := make(chan struct{})
	go func() {
		g.close()
		close(closed)
	}()
	select {
	case <-ctx.Done(): // closing ends the request inside
	case <-time.After(10 * time.Second):
		t.Fatal("closing the gate did not end the context of the request inside")
	}
	select {
	case <-closed:
		t.Fatal("close returned while a request was still inside")
	default:
	}
	if _, _, ok := g.enter(context.Background()); ok {
		t.Fatal("a closing gate let a new request in")
	}
	leave()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("close did not return after the last request left")
	}
	g.close() // safe twice
	if _, err := g.unary(context.Background(), nil, nil, func(context.Context, any) (any, error) {
		t.Error("a closed gate called the handler")
		return nil, nil
	}); !errors.Is(err, rpctypes.ErrGRPCStopped) {
		t.Errorf("a closed gate answered %v, want %v", err, rpctypes.ErrGRPCStopped)
	}
}

// A region or zone crashed while its servers answer a stream of reads
// and writes from their own region's clients (no proxy in between) never
// takes the process down: etcd closes a server's storage while its gRPC
// server still serves, and a serializable Range on the closed bbolt file
// was a SIGSEGV (issue 19). After the crashes every server is back and
// answers.
func TestCrashUnderRequests(t *testing.T) {
	c := startCluster(t, fastTiming)
	ctx := ctxFor(t, 3*time.Minute)
	if err := c.WaitRegionalLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	type target struct {
		name string
		cli  *clientv3.Client
	}
	var targets []target
	for _, r := range c.Regions() {
		m, _ := c.MemberClient(r)
		rep, _ := c.ReplicaClient(r, r)
		g, _ := c.RegionalClient(r, r)
		targets = append(targets, target{r + " member", m}, target{r + " replica", rep}, target{r + " zones", g})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var answered atomic.Int64
	for _, tg := range targets {
		for w := range 3 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					rctx, cancel := context.WithTimeout(ctx, time.Second)
					var err error
					if w == 0 && i%4 == 0 {
						_, err = tg.cli.Put(rctx, "k", fmt.Sprint(i))
					} else {
						_, err = tg.cli.Get(rctx, "k", clientv3.WithSerializable())
					}
					cancel()
					if err == nil {
						answered.Add(1)
					}
				}
			})
		}
	}
	crashes := []string{"ap-southeast-1", "us-east-1b", "eu-west-1", "ap-southeast-1a", "us-east-1", "eu-west-1c"}
	for round := range 3 {
		for _, name := range crashes {
			before := answered.Load()
			eventually(t, 30*time.Second, "requests answered before crashing "+name, func() bool { return answered.Load() > before+20 })
			if err := c.Crash(name); err != nil {
				t.Fatalf("round %d: crash %s: %v", round, name, err)
			}
			if err := c.Restart(name); err != nil {
				t.Fatalf("round %d: restart %s: %v", round, name, err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRegionalLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		eventually(t, 30*time.Second, tg.name+" answers after the crashes", func() bool {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := tg.cli.Get(rctx, "k")
			return err == nil
		})
	}
	t.Logf("%d requests answered across %d crashes", answered.Load(), 3*len(crashes))
}
