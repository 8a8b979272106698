package web

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// BenchmarkBuyDrift answers whether the work per buy grows with the
// history while a Server (no viewers) is attached to the lab: in-process
// consensus buys, 64 closed-loop clients over 100 SKUs at scale 0, in
// consecutive phases of one run; it reports each phase's rate and the
// last/first ratio. With -drift.profile DIR it writes a CPU profile of the
// first and of the last phase (DIR/cpu-first.out, DIR/cpu-last.out).
//
//	go test ./web -run '^$' -bench BuyDrift -benchtime 1x -v [-drift.phases 6] [-drift.http] [-drift.profile /tmp/drift]
var (
	driftProfile = flag.String("drift.profile", "", "directory for CPU profiles of BenchmarkBuyDrift's first and last phase")
	driftPhases  = flag.Int("drift.phases", 6, "phases of BenchmarkBuyDrift (at least 2)")
	driftHTTP    = flag.Bool("drift.http", false, "BenchmarkBuyDrift buys through the HTTP API (clients in the same process) instead of in-process")
)

const driftPhase = 3 * time.Second

func BenchmarkBuyDrift(b *testing.B) {
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
	buy := func(c int, sku string) (string, float64, time.Duration, error) {
		o, err := l.Buy(context.Background(), inventory.Consensus, sku, regions[c%len(regions)], 1)
		var wait time.Duration
		switch o.Outcome {
		case inventory.Unavailable, inventory.FailFast, inventory.Overloaded:
			wait = time.Second
		}
		return string(o.Outcome), o.LatencyMs, wait, err
	}
	if *driftHTTP {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		var unexpected atomic.Int64
		httpBuy, closeAll := newHTTPBuyer("http://"+ln.Addr().String(), regions, 64, &unexpected)
		defer closeAll()
		buy = httpBuy
	}
	rates := make([]float64, 0, *driftPhases)
	for p := range max(2, *driftPhases) {
		var f *os.File
		if *driftProfile != "" && (p == 0 || p == *driftPhases-1) {
			name := "cpu-first.out"
			if p > 0 {
				name = "cpu-last.out"
			}
			if f, err = os.Create(filepath.Join(*driftProfile, name)); err != nil {
				b.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				b.Fatal(err)
			}
		}
		r := hotLoadFor(64, driftPhase, buy)
		if f != nil {
			pprof.StopCPUProfile()
			_ = f.Close()
		}
		rates = append(rates, r.okPerSec)
		if p == 0 || p == *driftPhases-1 {
			// What one check of the verdict worker costs at this history
			// length (the worker did one per 400 ms of activity before it
			// learnt to skip checks no viewer sees).
			t0 := time.Now()
			renderVerdict(l, "SKU1")
			ms := float64(time.Since(t0).Microseconds()) / 1000
			b.ReportMetric(ms, fmt.Sprintf("verdict-ms-after-phase%d", p+1))
			b.Logf("after phase %d: one verdict check %.1f ms", p+1, ms)
		}
		b.ReportMetric(r.okPerSec, fmt.Sprintf("buys/s-phase%d", p+1))
	}
	b.ReportMetric(rates[len(rates)-1]/rates[0], "last/first")
	b.Logf("buys/s by phase: %.0f; last/first %.2f", rates, rates[len(rates)-1]/rates[0])
}
