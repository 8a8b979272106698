package web

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/guard"
	"caplab/lab/inventory"
	"caplab/nodes"
)

// The hot-path benchmark: consensus buys through the whole HTTP API (auth,
// JSON, the handler, the lab, the live stream's subscribers) at latency
// scale 0, against the same lab called in-process in the same run, then
// the same HTTP load with 4× and 16× the clients to show what admission
// control does with the excess.
//
//	go test ./web -run '^$' -bench HTTPBuys -benchtime 1x -v
//
// Clients are closed-loop: each sends its next buy as soon as the last one
// is answered, on a random SKU of 100 and its own region (client i buys
// from region i mod 3). A client answered 503 with Retry-After waits what
// the header says, as a well-behaved HTTP client does. The buyers run in a
// child process with a hand-written HTTP/1.1 client (as wrk is), so that
// they take as little as possible of the cores the lab runs on;
// -hot.client=nethttp uses Go's http.Client instead. Every phase reports
// the CPU per ok buy of the lab's process and of the buyers' process.

const (
	hotSKUs     = 100
	hotPhase    = 5 * time.Second
	hotWarmup   = 500 * time.Millisecond
	hotInitial  = 1_000_000
	hotDeadline = time.Second // lab.Config{LatencyScale: 0}'s request deadline
)

type hotResult struct {
	clients          int
	okPerSec         float64
	admitted         []time.Duration // every answer that was not overloaded
	overloaded       []time.Duration // overloaded answers, as the client saw them
	overloadedServer []time.Duration // overloaded answers, the Outcome's latencyMs (the lab's own time)
	kinds            map[string]int
	transportErrors  int
	// CPU seconds over the whole phase (warm-up included) of this process
	// (the lab, its etcd servers, the web server, and in-process buyers)
	// and of the buyer process, when there is one.
	serverCPU, clientCPU float64
}

// cpuPerBuy is the CPU of the lab's process and of the buyers' process per
// answered ok buy of the phase, in µs.
func (r hotResult) cpuPerBuy() (server, client float64) {
	n := r.okPerSec * (hotWarmup + hotPhase).Seconds()
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	return r.serverCPU / n * 1e6, r.clientCPU / n * 1e6
}

// processCPU is this process's user + system CPU time so far, in seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func pctMs(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return math.NaN()
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return float64(s[max(0, i)].Microseconds()) / 1000
}

// hotLoad runs clients closed-loop buyers for hotWarmup + hotPhase and
// counts what came back after the warm-up. buy returns the outcome and,
// for an answer to honour, how long to wait before the next request.
func hotLoad(clients int, buy func(client int, sku string) (kind string, serverMs float64, wait time.Duration, err error)) hotResult {
	return hotLoadFor(clients, hotPhase, buy)
}

// hotLoadFor is hotLoad with a measured phase of the given length.
func hotLoadFor(clients int, phase time.Duration, buy func(client int, sku string) (kind string, serverMs float64, wait time.Duration, err error)) hotResult {
	res := hotResult{clients: clients, kinds: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	measureFrom := start.Add(hotWarmup)
	end := measureFrom.Add(phase)
	var ok atomic.Int64
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			var adm, over, overSrv []time.Duration
			kinds := map[string]int{}
			errs := 0
			for {
				t := time.Now()
				if !t.Before(end) {
					break
				}
				kind, serverMs, wait, err := buy(c, "SKU"+strconv.Itoa(rng.IntN(hotSKUs)))
				d := time.Since(t)
				if t.After(measureFrom) && t.Add(d).Before(end) {
					switch {
					case err != nil:
						errs++
					case kind == "overloaded":
						over = append(over, d)
						overSrv = append(overSrv, time.Duration(serverMs*float64(time.Millisecond)))
						kinds[kind]++
					default:
						adm = append(adm, d)
						kinds[kind]++
						if kind == "ok" {
							ok.Add(1)
						}
					}
				}
				if wait > 0 {
					time.Sleep(min(wait, time.Until(end)))
				}
			}
			mu.Lock()
			res.admitted = append(res.admitted, adm...)
			res.overloaded = append(res.overloaded, over...)
			res.overloadedServer = append(res.overloadedServer, overSrv...)
			for k, n := range kinds {
				res.kinds[k] += n
			}
			res.transportErrors += errs
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.okPerSec = float64(ok.Load()) / phase.Seconds()
	return res
}

func BenchmarkHTTPBuys(b *testing.B) {
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
	// A plain http.Server as main runs it (httptest's server takes a lock
	// on every connection state change, which would dominate here).
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

	// In process, a client waits after a 503-class outcome what the API's
	// Retry-After would tell it (1 s), like the HTTP clients.
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
	// The HTTP clients run in a child process (this test binary as
	// TestHotBuyClients), so that their CPU does not come out of the
	// server's two cores as goroutines of the same Go runtime; -hot.sameproc
	// runs them here as well, for the comparison.
	overHTTP := func(n int, sameProc bool) hotResult {
		cpu := processCPU()
		var r hotResult
		if sameProc {
			buy, closeAll := hotBuyer(*hotClient, base, regions, n, &unexpected)
			r = hotLoad(n, buy)
			closeAll()
		} else {
			r = runHotClients(b, base, regions, n, &unexpected)
		}
		r.serverCPU = processCPU() - cpu
		return r
	}
	pool := nodes.MemberPoolSize // the pool's full size; the lab's default is 1
	setPool := func(n int) { l.Cluster().SetMemberPool(n) }

	report := func(name string, r hotResult) {
		b.ReportMetric(r.okPerSec, "buys/s-"+name)
		b.ReportMetric(pctMs(r.admitted, 50), "p50-ms-"+name)
		b.ReportMetric(pctMs(r.admitted, 99), "p99-ms-"+name)
		srvCPU, cliCPU := r.cpuPerBuy()
		b.ReportMetric(srvCPU, "cpu-µs/buy-"+name)
		b.Logf("%s: %d clients, %.0f ok buys/s, admitted p50 %.1f ms p99 %.1f ms, overloaded %d (p99 %.2f ms at the client, %.3f ms in the lab), outcomes %v, transport errors %d; CPU per ok buy: lab process %.0f µs, buyer process %.0f µs (%.2f + %.2f cores)",
			name, r.clients, r.okPerSec, pctMs(r.admitted, 50), pctMs(r.admitted, 99), len(r.overloaded), pctMs(r.overloaded, 99), pctMs(r.overloadedServer, 99), r.kinds, r.transportErrors,
			srvCPU, cliCPU, r.serverCPU/(hotWarmup+hotPhase).Seconds(), r.clientCPU/(hotWarmup+hotPhase).Seconds())
	}

	// Side by side in one lab: one etcd client per region (before) and the
	// pool, in process and over HTTP, in the order A B B A so that a
	// drift in the machine's load favours neither; each figure is the
	// median of its two phases.
	var proc, http64 hotResult
	profiledPhases := map[string]bool{}
	type pair struct{ proc, http []float64 }
	by := map[int]*pair{1: {}, pool: {}}
	for _, n := range []int{1, pool, pool, 1} {
		setPool(n)
		suffix := "-pool" + strconv.Itoa(n)
		cpu := processCPU()
		profiled(b, *hotProfile, "cpu-inproc.out", profiledPhases, func() { proc = hotLoad(64, inProcess) })
		proc.serverCPU = processCPU() - cpu
		report("inproc64"+suffix, proc)
		profiled(b, *hotProfile, "cpu-http.out", profiledPhases, func() { http64 = overHTTP(64, false) })
		report("http64"+suffix, http64)
		by[n].proc = append(by[n].proc, proc.okPerSec)
		by[n].http = append(by[n].http, http64.okPerSec)
	}
	for _, n := range []int{1, pool} {
		suffix := "-pool" + strconv.Itoa(n)
		p, h := median(by[n].proc), median(by[n].http)
		b.ReportMetric(p, "median-buys/s-inproc64"+suffix)
		b.ReportMetric(h, "median-buys/s-http64"+suffix)
		b.ReportMetric(h/p, "ratio-http/inproc"+suffix)
		b.Logf("pool of %d: in-process %.0f buys/s, HTTP %.0f buys/s (medians of %v and %v), ratio %.2f", n, p, h, by[n].proc, by[n].http, h/p)
	}
	b.ReportMetric(median(by[pool].http)/median(by[1].http), "http64-pool/1conn")
	setPool(1) // the overload phases run as the lab does by default
	for _, n := range []int{256, 1024, -1024} {
		name := "http" + strconv.Itoa(n)
		if n < 0 {
			n, name = -n, "http"+strconv.Itoa(-n)+"-sameproc"
		}
		r := overHTTP(n, name != "http"+strconv.Itoa(n))
		report(name, r)
		b.ReportMetric(r.okPerSec/median(by[1].http), "goodput-"+name+"/http64")
		if len(r.overloaded) > 0 {
			b.ReportMetric(pctMs(r.overloaded, 99), "p99-ms-overloaded-"+name)
			b.ReportMetric(pctMs(r.overloadedServer, 99), "p99-ms-overloaded-lab-"+name)
		}
		if p := pctMs(r.admitted, 99); p >= float64(hotDeadline.Milliseconds()) && !strings.HasSuffix(name, "-sameproc") {
			b.Errorf("%s: p99 of admitted buys %.0f ms reached the deadline", name, p)
		}
		open := 0
		for _, reg := range l.State().Regions {
			if reg.Breakers[inventory.Consensus] != guard.BreakerClosed {
				open++
			}
		}
		b.ReportMetric(float64(r.kinds["fail_fast"]), "fail_fast-"+name)
		switch {
		case strings.HasSuffix(name, "-sameproc"):
			// the old set-up, for the comparison: reported, not judged
			b.Logf("%s: %d breakers open after the phase, %d fail_fast answers", name, open, r.kinds["fail_fast"])
		case open > 0 || r.kinds["fail_fast"] > 0:
			b.Errorf("%s: a breaker opened (%d open after the phase, %d fail_fast answers)", name, open, r.kinds["fail_fast"])
		}
	}
	if n := unexpected.Load(); n > 0 {
		b.Errorf("%d answers were not an Outcome", n)
	}
}

// newHTTPBuyer makes n HTTP clients, each its own Transport with its own
// connection, as separate shoppers are (one shared Transport's pool lock
// would be the benchmark's own bottleneck), and a buy function for
// hotLoad that counts answers that are not an Outcome in unexpected.
func newHTTPBuyer(base string, regions []string, n int, unexpected *atomic.Int64) (buy func(int, string) (string, float64, time.Duration, error), closeAll func()) {
	clients := make([]*http.Client, n)
	for i := range clients {
		clients[i] = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute}}
	}
	closeAll = func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}
	buy = func(c int, sku string) (string, float64, time.Duration, error) {
		body, _ := json.Marshal(map[string]any{"region": regions[c%len(regions)], "qty": 1})
		req, _ := http.NewRequest(http.MethodPost, base+"/api/stores/consensus/skus/"+sku+"/buy", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := clients[c].Do(req)
		if err != nil {
			return "", 0, 0, err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", 0, 0, err
		}
		retryAfter, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return hotAnswer(resp.StatusCode, retryAfter, raw, unexpected)
	}
	return buy, closeAll
}

// hotAnswer reads a buy's answer for hotLoad: its outcome, the lab's own
// latency and, for a 503, the wait its Retry-After asks for. An answer that
// is not an Outcome is counted in unexpected.
func hotAnswer(status, retryAfter int, raw []byte, unexpected *atomic.Int64) (string, float64, time.Duration, error) {
	var o struct {
		Outcome   string  `json:"outcome"`
		LatencyMs float64 `json:"latencyMs"`
	}
	if err := json.Unmarshal(raw, &o); err != nil || o.Outcome == "" {
		unexpected.Add(1)
		return "", 0, 0, fmt.Errorf("status %d: %s", status, raw)
	}
	var wait time.Duration
	if status == http.StatusServiceUnavailable {
		wait = time.Duration(retryAfter) * time.Second
	}
	return o.Outcome, o.LatencyMs, wait, nil
}

// hotClient picks the shoppers' HTTP client (hotpath_client_test.go).
var hotClient = flag.String("hot.client", "raw", "BenchmarkHTTPBuys: the buyers' HTTP client, raw (hand-written HTTP/1.1, as wrk) or nethttp (Go's http.Client)")

// hotProfile, if set, is a directory for CPU profiles of the first
// in-process and the first HTTP phase (cpu-inproc.out, cpu-http.out), to
// compare what the HTTP path adds:
//
//	go tool pprof -top -diff_base DIR/cpu-inproc.out web.test DIR/cpu-http.out
var hotProfile = flag.String("hot.profile", "", "BenchmarkHTTPBuys: directory for CPU profiles of the first in-process and HTTP phases")

// profiled runs phase under a CPU profile written to dir/name, when dir is
// set and name has not been written yet in this run.
func profiled(b *testing.B, dir, name string, done map[string]bool, phase func()) {
	if dir == "" || done[name] {
		phase()
		return
	}
	done[name] = true
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	defer pprof.StopCPUProfile()
	phase()
}

// hotBuyer makes the buyers of the client kind named.
func hotBuyer(kind, base string, regions []string, n int, unexpected *atomic.Int64) (func(int, string) (string, float64, time.Duration, error), func()) {
	if kind == "nethttp" {
		return newHTTPBuyer(base, regions, n, unexpected)
	}
	return newRawBuyer(base, regions, n, unexpected)
}

const (
	hotEnvClient  = "CAPLAB_HOT_CLIENT"
	hotEnvURL     = "CAPLAB_HOT_URL"
	hotEnvRegions = "CAPLAB_HOT_REGIONS"
	hotEnvClients = "CAPLAB_HOT_CLIENTS"
)

// hotWire is hotResult on the child's stdout (durations in µs).
type hotWire struct {
	OKPerSec         float64
	Admitted         []int64
	Overloaded       []int64
	OverloadedServer []int64
	Kinds            map[string]int
	TransportErrors  int
	Unexpected       int64
}

func toMicros(d []time.Duration) []int64 {
	out := make([]int64, len(d))
	for i, v := range d {
		out[i] = v.Microseconds()
	}
	return out
}

func fromMicros(v []int64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, us := range v {
		out[i] = time.Duration(us) * time.Microsecond
	}
	return out
}

// runHotClients runs n closed-loop HTTP buyers in a child process (this
// test binary as TestHotBuyClients) and returns what they counted.
func runHotClients(b *testing.B, base string, regions []string, n int, unexpected *atomic.Int64) hotResult {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHotBuyClients$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), hotEnvURL+"="+base, hotEnvRegions+"="+strings.Join(regions, ","), hotEnvClients+"="+strconv.Itoa(n), hotEnvClient+"="+*hotClient)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("the buyer process: %v\n%s", err, out)
	}
	childCPU := (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	for _, line := range strings.Split(string(out), "\n") {
		rest, ok := strings.CutPrefix(line, "HOT-RESULT ")
		if !ok {
			continue
		}
		var w hotWire
		if err := json.Unmarshal([]byte(rest), &w); err != nil {
			b.Fatalf("buyer result: %v", err)
		}
		unexpected.Add(w.Unexpected)
		return hotResult{clients: n, okPerSec: w.OKPerSec, admitted: fromMicros(w.Admitted), overloaded: fromMicros(w.Overloaded),
			overloadedServer: fromMicros(w.OverloadedServer), kinds: w.Kinds, transportErrors: w.TransportErrors, clientCPU: childCPU}
	}
	b.Fatalf("the buyer process printed no result:\n%s", out)
	return hotResult{}
}

// TestHotBuyClients is the buyer process of BenchmarkHTTPBuys; it skips
// unless CAPLAB_HOT_URL is set. It runs the closed-loop HTTP buyers for one
// phase and prints HOT-RESULT with what they counted.
func TestHotBuyClients(t *testing.T) {
	base := os.Getenv(hotEnvURL)
	if base == "" {
		t.Skip("the buyer process of BenchmarkHTTPBuys; runs only when " + hotEnvURL + " is set")
	}
	n, err := strconv.Atoi(os.Getenv(hotEnvClients))
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a count", hotEnvClients, os.Getenv(hotEnvClients))
	}
	regions := strings.Split(os.Getenv(hotEnvRegions), ",")
	var unexpected atomic.Int64
	buy, closeAll := hotBuyer(os.Getenv(hotEnvClient), base, regions, n, &unexpected)
	r := hotLoad(n, buy)
	closeAll()
	raw, _ := json.Marshal(hotWire{OKPerSec: r.okPerSec, Admitted: toMicros(r.admitted), Overloaded: toMicros(r.overloaded),
		OverloadedServer: toMicros(r.overloadedServer), Kinds: r.kinds, TransportErrors: r.transportErrors, Unexpected: unexpected.Load()})
	fmt.Printf("HOT-RESULT %s\n", raw)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
