package web

import (
	"context"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// BenchmarkHTTPBuysAB: only BenchmarkHTTPBuys's one-connection phases,
// HOT_AB_PHASES times each (default 4; in process, then over HTTP: 64
// buyers), one line per phase — for comparing two trees side by side
// (docs/benchmarks.md, "lab/ in rooms", third pass). It repeats
// BenchmarkHTTPBuys's set-up on purpose instead of sharing a helper: the
// file is meant to be copied into an older tree (with lab.X for
// inventory.X before issue 20), which has only what both trees have.
//
//	HOT_AB_PHASES=4 go test ./web -run '^$' -bench HTTPBuysAB -benchtime 1x -v
func BenchmarkHTTPBuysAB(b *testing.B) {
	phases, _ := strconv.Atoi(os.Getenv("HOT_AB_PHASES"))
	if phases == 0 {
		phases = 4
	}
	cfg := lab.Config{LatencyScale: 0, MaxRetries: 50, DataDir: b.TempDir(), Logger: quietLogger()}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	l, err := lab.New(ctx, cfg)
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	s := New(l, Options{Token: testToken, Logger: quietLogger()})
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	regions := l.Regions()
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := l.WaitLeader(wctx); err != nil {
		b.Fatal(err)
	}
	for i := range hotSKUs {
		o, err := l.Stock(context.Background(), inventory.Consensus, "SKU"+strconv.Itoa(i), regions[0], hotInitial)
		if err != nil || o.Outcome != inventory.OK {
			b.Fatalf("stock: %v %s", err, o.Message)
		}
	}
	l.Cluster().SetMemberPool(1)
	inProcess := func(c int, sku string) (string, float64, time.Duration, error) {
		o, err := l.Buy(context.Background(), inventory.Consensus, sku, regions[c%len(regions)], 1)
		var wait time.Duration
		switch o.Outcome {
		case inventory.Unavailable, inventory.FailFast, inventory.Overloaded:
			wait = time.Second
		}
		return string(o.Outcome), o.LatencyMs, wait, err
	}
	var unexpected atomic.Int64
	for i := range phases {
		cpu := processCPU()
		p := hotLoad(64, inProcess)
		p.serverCPU = processCPU() - cpu
		pc, _ := p.cpuPerBuy()
		cpu = processCPU()
		h := runHotClients(b, base, regions, 64, &unexpected)
		h.serverCPU = processCPU() - cpu
		hc, cc := h.cpuPerBuy()
		b.Logf("AB phase %d: inproc %.0f buys/s %.0f µs/buy; http %.0f buys/s %.0f µs/buy (buyer %.0f µs) %v", i, p.okPerSec, pc, h.okPerSec, hc, cc, h.kinds)
	}
}
