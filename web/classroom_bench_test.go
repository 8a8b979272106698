package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"caplab/lab"
	"caplab/lab/load"
	"caplab/lessons"
)

// The classroom benchmarks (issue 19): a real lab behind a real Server on
// loopback, a load the lab generates itself (POST /api/load), and a
// classroom watching it from a child process (this test binary again, as
// TestClassroomViewers), so that the lab's CPU is measured apart from the
// viewers' (both share the machine's two cores):
//
//   - WebSocket viewers that connect as the page does (/ws?delta=1&panels=,
//     offering permessage-deflate as browsers do) or as a plain client
//     (/ws, no compression), counting the bytes that cross the socket and
//     the frames by type;
//   - polling viewers that GET /api/state once a second each (at random
//     phases) and time every answer.
//
// The driver marks phases (idle, load, …) and, in each, cuts a link and
// heals it again every 2 s through POST /api/network/link, timing the
// answer: the control plane under the load.
//
//	go test ./web -run '^$' -bench Classroom -benchtime 1x -v
//
// -classroom.scale sets the lab's latency scale (1, real round trips, by
// default: the lab as caplab runs it).
var classroomScale = flag.Float64("classroom.scale", 1, "latency scale of the classroom benchmarks' lab")

const (
	classroomEnvURL   = "CAPLAB_CLASSROOM_URL"   // the viewer process: the lab's base URL
	classroomEnvWS    = "CAPLAB_CLASSROOM_WS"    // how many WebSocket viewers
	classroomEnvQuery = "CAPLAB_CLASSROOM_QUERY" // their /ws query ("plain": none, and no compression)
	classroomEnvPoll  = "CAPLAB_CLASSROOM_POLL"  // how many polling viewers
)

// classroomPhase is what the viewer process saw in one phase.
type classroomPhase struct {
	Name     string  `json:"name"`
	Seconds  float64 `json:"seconds"`
	Viewers  int     `json:"viewers"`
	Lost     int     `json:"lost"` // viewers whose connection ended during the phase
	WireKBps struct {
		Mean, Max float64
	} `json:"wireKBps"` // per viewer: bytes read from the socket
	PayloadKBps float64                       `json:"payloadKBps"` // per viewer, mean: message bytes after inflating
	FramesPS    float64                       `json:"framesPS"`    // per viewer, mean
	ByType      map[string]classroomTypeCount `json:"byType"`      // per viewer per second
	CPUCores    float64                       `json:"cpuCores"`    // the viewer process
	Polls       int                           `json:"polls"`
	PollErrors  int                           `json:"pollErrors"`
	PollP50Ms   float64                       `json:"pollP50Ms"`
	PollP99Ms   float64                       `json:"pollP99Ms"`
	PollMaxMs   float64                       `json:"pollMaxMs"`
}

type classroomTypeCount struct {
	FramesPS float64 `json:"framesPS"`
	KBps     float64 `json:"kBps"`
}

// classroom is a lab, its Server and the driver's HTTP client.
type classroom struct {
	lab    *lab.Lab
	srv    *httptest.Server
	client *http.Client
}

func newClassroom(b *testing.B) *classroom {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	l, err := lab.New(ctx, lab.Config{LatencyScale: *classroomScale, DataDir: b.TempDir(), Logger: quietLogger()})
	if err != nil {
		b.Fatalf("lab: %v", err)
	}
	b.Cleanup(func() { _ = l.Close() })
	s := New(l, Options{Token: testToken, Logger: quietLogger()})
	b.Cleanup(s.Close)
	srv := httptest.NewServer(s.Handler())
	b.Cleanup(srv.Close)
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(client.CloseIdleConnections)
	return &classroom{lab: l, srv: srv, client: client}
}

// call sends one request with the token; it returns the status, the body
// and how long the answer took.
func (c *classroom) call(method, path, body string) (int, []byte, time.Duration, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.srv.URL+path, rd)
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	start := time.Now()
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, time.Since(start), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, time.Since(start), err
}

// control cuts and heals a link every 2 s until stop is closed, and
// returns how long each answer took, in ms.
func (c *classroom) control(b *testing.B, stop <-chan struct{}) []float64 {
	var ms []float64
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for k := 0; ; k++ {
		select {
		case <-stop:
			if k%2 == 1 { // leave the link up
				_, _, _, _ = c.call("POST", "/api/network/link", `{"from":"us-east-1","to":"eu-west-1","state":"up"}`)
			}
			return ms
		case <-t.C:
		}
		state := "cut"
		if k%2 == 1 {
			state = "up"
		}
		code, body, took, err := c.call("POST", "/api/network/link", fmt.Sprintf(`{"from":"us-east-1","to":"eu-west-1","state":%q}`, state))
		if err != nil || code != 200 {
			b.Errorf("%s the link: %d %s %v", state, code, body, err)
		}
		ms = append(ms, float64(took.Microseconds())/1000)
	}
}

// runLoad starts a load and waits until it has ended; it returns the
// final status and the lab process's CPU cores while it ran (stocking
// and checking apart). running, if not nil, is called when the arrivals
// begin, and its result when they end (a phase of the benchmark).
func (c *classroom) runLoad(b *testing.B, cfg string, running func() func()) (load.Status, float64) {
	b.Helper()
	code, body, _, err := c.call("POST", "/api/load", cfg)
	if err != nil || code != 200 {
		b.Fatalf("POST /api/load %s: %d %s %v", cfg, code, body, err)
	}
	var cpu0 time.Duration
	var wall0 time.Time
	var cpuCores float64
	var ended func()
	var st load.Status
	for {
		time.Sleep(100 * time.Millisecond)
		_, body, _, err := c.call("GET", "/api/load?samples=0", "")
		if err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(body, &st); err != nil {
			b.Fatalf("GET /api/load: %v", err)
		}
		if st.State == load.StateRunning && wall0.IsZero() {
			cpu0, wall0 = cpuTime(), time.Now()
			if running != nil {
				ended = running()
			}
		}
		if st.State != load.StateRunning && st.State != load.StateStocking && !wall0.IsZero() && cpuCores == 0 {
			cpuCores = (cpuTime() - cpu0).Seconds() / time.Since(wall0).Seconds()
			if ended != nil {
				ended()
			}
		}
		if st.State == load.StateFailed {
			b.Fatalf("the load failed: %s", st.Reason)
		}
		if st.State == load.StateFinished || st.State == load.StateStopped {
			break
		}
	}
	return st, cpuCores
}

// reportLoad reports a load's figures per store under a prefix.
func reportLoad(b *testing.B, prefix string, st load.Status) {
	for _, s := range st.Stores {
		worstP99, worstAvail := 0.0, 100.0
		for _, f := range s.Regions {
			worstP99, worstAvail = max(worstP99, f.P99Ms), min(worstAvail, f.Availability)
		}
		slo := 0.0
		if s.SLOMet {
			slo = 1
		}
		b.ReportMetric(float64(s.Sold), prefix+"-"+s.Store+"-sold")
		b.ReportMetric(worstP99, prefix+"-"+s.Store+"-p99-ms")
		b.ReportMetric(worstAvail, prefix+"-"+s.Store+"-avail-%")
		b.ReportMetric(slo, prefix+"-"+s.Store+"-slo-met")
		b.Logf("%s %s: %s", prefix, s.Store, s.Verdict)
	}
}

// ---- the viewer process

type classroomViewers struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

// startClassroom runs this test binary as TestClassroomViewers with ws
// WebSocket viewers (query: their /ws query, "plain" for none) and poll
// polling viewers, and waits until they are connected.
func startClassroom(b *testing.B, base string, ws int, query string, poll int) *classroomViewers {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestClassroomViewers$", "-test.count=1")
	cmd.Env = append(os.Environ(), classroomEnvURL+"="+base, classroomEnvWS+"="+strconv.Itoa(ws),
		classroomEnvQuery+"="+query, classroomEnvPoll+"="+strconv.Itoa(poll))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	v := &classroomViewers{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
	v.lines.Buffer(make([]byte, 64<<10), 1<<20)
	b.Cleanup(func() {
		_ = stdin.Close()
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // our own child, by its pid
			_ = cmd.Wait()
		}
	})
	for v.lines.Scan() {
		if v.lines.Text() == "CLASSROOM-READY" {
			return v
		}
	}
	b.Fatal("the viewer process ended before its viewers were connected")
	return nil
}

// phase starts a phase of the given name (ending the one before).
func (v *classroomViewers) phase(b *testing.B, name string) {
	if _, err := fmt.Fprintf(v.stdin, "phase %s\n", name); err != nil {
		b.Fatal(err)
	}
}

// finish ends the last phase and returns every phase's figures.
func (v *classroomViewers) finish(b *testing.B) []classroomPhase {
	b.Helper()
	_ = v.stdin.Close()
	for v.lines.Scan() {
		if rest, ok := strings.CutPrefix(v.lines.Text(), "CLASSROOM-RESULT "); ok {
			var out []classroomPhase
			if err := json.Unmarshal([]byte(rest), &out); err != nil {
				b.Fatalf("viewer result: %v", err)
			}
			if err := v.cmd.Wait(); err != nil {
				b.Fatalf("viewer process: %v", err)
			}
			return out
		}
	}
	b.Fatal("the viewer process ended without a result")
	return nil
}

// countingConn counts the bytes read from a connection: what crossed
// the wire, deflated or not.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// classroomViewer is one WebSocket viewer of the viewer process.
type classroomViewer struct {
	conn          *websocket.Conn
	wire, payload atomic.Int64
	frames        atomic.Int64
	ended         atomic.Bool
	mu            sync.Mutex
	byType        map[string][2]int64 // frames, bytes
	done          chan struct{}
}

func (v *classroomViewer) read() {
	defer close(v.done)
	for {
		_, msg, err := v.conn.ReadMessage()
		if err != nil {
			v.ended.Store(true)
			return
		}
		v.payload.Add(int64(len(msg)))
		v.frames.Add(1)
		typ := "?"
		if i := bytes.Index(msg, []byte(`"type":"`)); i >= 0 {
			if j := bytes.IndexByte(msg[i+8:], '"'); j >= 0 {
				typ = string(msg[i+8 : i+8+j])
			}
		}
		if typ == frameFragment {
			if i := bytes.Index(msg, []byte(`"id":"`)); i >= 0 {
				if j := bytes.IndexByte(msg[i+6:], '"'); j >= 0 {
					typ += ":" + string(msg[i+6:i+6+j])
				}
			}
		}
		v.mu.Lock()
		c := v.byType[typ]
		v.byType[typ] = [2]int64{c[0] + 1, c[1] + int64(len(msg))}
		v.mu.Unlock()
	}
}

// viewerTotals is a snapshot of one viewer's counters.
type viewerTotals struct {
	wire, payload, frames int64
	byType                map[string][2]int64
	ended                 bool
}

func (v *classroomViewer) totals() viewerTotals {
	v.mu.Lock()
	bt := make(map[string][2]int64, len(v.byType))
	for k, c := range v.byType {
		bt[k] = c
	}
	v.mu.Unlock()
	return viewerTotals{wire: v.wire.Load(), payload: v.payload.Load(), frames: v.frames.Load(), byType: bt, ended: v.ended.Load()}
}

// TestClassroomViewers is the viewer process of the classroom benchmarks;
// it skips unless CAPLAB_CLASSROOM_URL is set.
func TestClassroomViewers(t *testing.T) {
	base := os.Getenv(classroomEnvURL)
	if base == "" {
		t.Skip("the viewer process of BenchmarkClassroom*; runs only when " + classroomEnvURL + " is set")
	}
	nWS, _ := strconv.Atoi(os.Getenv(classroomEnvWS))
	nPoll, _ := strconv.Atoi(os.Getenv(classroomEnvPoll))
	query := os.Getenv(classroomEnvQuery)
	plain := query == "plain"
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	if !plain && query != "" {
		wsURL += "?" + query
	}

	viewers := make([]*classroomViewer, nWS)
	for i := range viewers {
		v := &classroomViewer{byType: map[string][2]int64{}, done: make(chan struct{})}
		d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 16 << 10, EnableCompression: !plain,
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return countingConn{Conn: c, n: &v.wire}, nil
			}}
		conn, resp, err := d.Dial(wsURL, nil)
		if err != nil {
			t.Fatalf("viewer %d: %v", i, err)
		}
		_ = resp.Body.Close()
		v.conn = conn
		viewers[i] = v
		go v.read()
		defer func() { _ = conn.Close(); <-v.done }()
	}

	type pollSample struct {
		ms    float64
		phase int
		err   bool
	}
	var (
		pollMu  sync.Mutex
		polls   []pollSample
		phaseNo atomic.Int64
	)
	stop := make(chan struct{})
	var pollers sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: nPoll + 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for range nPoll {
		pollers.Go(func() {
			next := time.Now().Add(time.Duration(rand.Int64N(int64(time.Second))))
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Until(next)):
				}
				next = next.Add(time.Second)
				start := time.Now()
				resp, err := client.Get(base + "/api/state")
				bad := err != nil
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					bad = err != nil || resp.StatusCode != 200
				}
				s := pollSample{ms: float64(time.Since(start).Microseconds()) / 1000, phase: int(phaseNo.Load()), err: bad}
				pollMu.Lock()
				polls = append(polls, s)
				pollMu.Unlock()
			}
		})
	}
	fmt.Println("CLASSROOM-READY")

	type mark struct {
		name string
		at   time.Time
		cpu  time.Duration
		tot  []viewerTotals
	}
	snap := func(name string) mark {
		m := mark{name: name, at: time.Now(), cpu: cpuTime()}
		for _, v := range viewers {
			m.tot = append(m.tot, v.totals())
		}
		return m
	}
	marks := []mark{snap("connected")}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if name, ok := strings.CutPrefix(in.Text(), "phase "); ok {
			marks = append(marks, snap(name))
			phaseNo.Add(1)
		}
	}
	marks = append(marks, snap("end"))
	close(stop)
	pollers.Wait()

	var out []classroomPhase
	for p := 1; p+1 < len(marks); p++ {
		a, z := marks[p], marks[p+1]
		secs := z.at.Sub(a.at).Seconds()
		ph := classroomPhase{Name: a.name, Seconds: secs, Viewers: nWS, ByType: map[string]classroomTypeCount{},
			CPUCores: (z.cpu - a.cpu).Seconds() / secs}
		var sumWire float64
		for i := range viewers {
			t0, t1 := a.tot[i], z.tot[i]
			if t1.ended && !t0.ended {
				ph.Lost++
			}
			kbps := float64(t1.wire-t0.wire) / secs / 1000
			sumWire += kbps
			ph.WireKBps.Max = max(ph.WireKBps.Max, kbps)
			ph.PayloadKBps += float64(t1.payload-t0.payload) / secs / 1000 / float64(nWS)
			ph.FramesPS += float64(t1.frames-t0.frames) / secs / float64(nWS)
			for k, c := range t1.byType {
				tc := ph.ByType[k]
				tc.FramesPS += float64(c[0]-t0.byType[k][0]) / secs / float64(nWS)
				tc.KBps += float64(c[1]-t0.byType[k][1]) / secs / 1000 / float64(nWS)
				ph.ByType[k] = tc
			}
		}
		if nWS > 0 {
			ph.WireKBps.Mean = sumWire / float64(nWS)
		}
		var ms []float64
		for _, s := range polls {
			if s.phase != p {
				continue
			}
			ph.Polls++
			if s.err {
				ph.PollErrors++
			}
			ms = append(ms, s.ms)
		}
		ph.PollP50Ms, ph.PollP99Ms, ph.PollMaxMs = percentile(ms, 0.5), percentile(ms, 0.99), percentile(ms, 1)
		out = append(out, ph)
	}
	b, _ := json.Marshal(out)
	fmt.Println("CLASSROOM-RESULT " + string(b))
}

// ---- the benchmarks

// watchLoad is issue 19's "modest load" that 50 phones watched.
const watchLoad = `{"rate":50,"readsPerBuy":40,"skus":1000,"stock":1000000,"duration":"15s","stores":["consensus"]}`

// classroomLoad replaces the load of BenchmarkClassroomWatch, e.g. a
// small one that leaves the cores free, so that the lab's CPU with and
// without viewers tells what the viewers cost.
var classroomLoad = flag.String("classroom.load", watchLoad, "BenchmarkClassroomWatch: the load's config (POST /api/load body)")

// BenchmarkClassroomWatch: the load above three times — nobody watching,
// 50 viewers connected as the page connects, 50 plain viewers — with the
// bytes and frames each viewer gets, and the load's figures and the lab
// process's CPU each time.
func BenchmarkClassroomWatch(b *testing.B) {
	c := newClassroom(b)
	watchLoad := *classroomLoad
	alone, cpu := c.runLoad(b, watchLoad, nil)
	reportLoad(b, "alone", alone)
	b.ReportMetric(cpu, "alone-lab-cpu-cores")
	for _, kind := range []struct{ name, query string }{{"page", "delta=1&panels="}, {"plain", "plain"}} {
		v := startClassroom(b, c.srv.URL, 50, kind.query, 0)
		st, cpu := c.runLoad(b, watchLoad, func() func() {
			v.phase(b, "load")
			return func() { v.phase(b, "after") }
		})
		phases := v.finish(b)
		reportLoad(b, kind.name, st)
		b.ReportMetric(cpu, kind.name+"-lab-cpu-cores")
		ph := phases[0]
		b.ReportMetric(ph.WireKBps.Mean, kind.name+"-wire-kB/s/viewer")
		b.ReportMetric(ph.WireKBps.Max, kind.name+"-wire-kB/s/viewer-max")
		b.ReportMetric(ph.PayloadKBps, kind.name+"-payload-kB/s/viewer")
		b.ReportMetric(ph.FramesPS, kind.name+"-frames/s/viewer")
		b.ReportMetric(float64(ph.Lost), kind.name+"-viewers-lost")
		byType, _ := json.Marshal(ph.ByType)
		b.Logf("%s viewers during the load: %.1f kB/s on the wire (max %.1f), %.1f kB/s of frames, %.1f frames/s; by type %s",
			kind.name, ph.WireKBps.Mean, ph.WireKBps.Max, ph.PayloadKBps, ph.FramesPS, byType)
	}
}

// controlDuring marks a phase in the viewer process and cuts and heals a
// link every second until the returned func is called; that returns how
// long each cut or heal took to answer, in ms.
func (c *classroom) controlDuring(b *testing.B, v *classroomViewers, name string) func() []float64 {
	v.phase(b, name)
	stop := make(chan struct{})
	got := make(chan []float64)
	go func() { got <- c.control(b, stop) }()
	return func() []float64 {
		close(stop)
		v.phase(b, "after "+name)
		return <-got
	}
}

// BenchmarkClassroomPoll: 100 polling viewers, idle for 10 s and then
// beside the default load (every store, 20 buys and 800 reads a second
// per region, 20 s); GET /api/state's p99 in each, and a cut or heal
// every second in each.
func BenchmarkClassroomPoll(b *testing.B) {
	classroomPoll(b, 100, 0, `{"duration":"20s"}`)
}

// BenchmarkClassroomHeavy: issue 19's heavy case — 200 polling viewers
// and 50 page viewers beside {"rate":200,"duration":"20s"} (74,000
// operations a second offered on two cores).
func BenchmarkClassroomHeavy(b *testing.B) {
	classroomPoll(b, 200, 50, `{"rate":200,"duration":"20s"}`)
}

// classroomPace false runs the loads with "pace":false: every arrival
// sent however busy the machine (the comparison for the pacer).
var classroomPace = flag.Bool("classroom.pace", true, "BenchmarkClassroomPoll/Heavy: pace the load (false: \"pace\":false)")

func classroomPoll(b *testing.B, polls, ws int, cfg string) {
	if !*classroomPace {
		cfg = strings.TrimSuffix(cfg, "}") + `,"pace":false}`
	}
	c := newClassroom(b)
	v := startClassroom(b, c.srv.URL, ws, "delta=1&panels=", polls)
	stopIdle := c.controlDuring(b, v, "idle")
	time.Sleep(10 * time.Second)
	idleCtl := stopIdle()
	var loadCtl []float64
	st, cpu := c.runLoad(b, cfg, func() func() {
		stop := c.controlDuring(b, v, "load")
		return func() { loadCtl = stop() }
	})
	phases := v.finish(b)
	idle, busy := phases[0], phases[2]
	b.ReportMetric(idle.PollP99Ms, "idle-state-p99-ms")
	b.ReportMetric(busy.PollP99Ms, "load-state-p99-ms")
	b.ReportMetric(busy.PollP99Ms/max(idle.PollP99Ms, 0.001), "state-p99-ratio")
	b.ReportMetric(busy.PollMaxMs, "load-state-max-ms")
	b.ReportMetric(float64(busy.PollErrors), "load-state-errors")
	b.ReportMetric(percentile(idleCtl, 1), "idle-cut-heal-max-ms")
	b.ReportMetric(percentile(loadCtl, 0.5), "load-cut-heal-p50-ms")
	b.ReportMetric(percentile(loadCtl, 1), "load-cut-heal-max-ms")
	b.ReportMetric(cpu, "load-lab-cpu-cores")
	if ws > 0 {
		b.ReportMetric(busy.WireKBps.Mean, "load-wire-kB/s/viewer")
	}
	reportLoad(b, "load", st)
	b.Logf("idle: %+v", idle)
	b.Logf("load: %+v", busy)
	b.Logf("cut/heal ms idle %v, under load %v", idleCtl, loadCtl)
}

var classroomRuns = flag.Int("classroom.runs", 5, "BenchmarkClassroomLesson: how many times to run the lesson")

// BenchmarkClassroomLesson runs the built-in Black Friday lesson from the
// page's routes (PUT /api/lesson, POST …/steps/N/run: the presenter's n
// key) -classroom.runs times on one lab, as a class would, with 50 page
// viewers watching (the lesson tab open; -classroom.viewers changes the
// count). It reports how many runs met every expectation, and logs each
// failure with the load's outcomes per region at that moment.
func BenchmarkClassroomLesson(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	l, err := lab.New(ctx, lab.Config{LatencyScale: *classroomScale, DataDir: b.TempDir(), Logger: quietLogger()})
	if err != nil {
		b.Fatalf("lab: %v", err)
	}
	b.Cleanup(func() { _ = l.Close() })
	cat, errs := lessons.LoadCatalog("")
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	s := New(l, Options{Token: testToken, Logger: quietLogger(), Lessons: LessonsFrom(cat, lessons.LabOf(l))})
	b.Cleanup(s.Close)
	srv := httptest.NewServer(s.Handler())
	b.Cleanup(srv.Close)
	c := &classroom{lab: l, srv: srv, client: &http.Client{Timeout: 5 * time.Minute}}
	lesson, _ := cat.Lookup("black-friday")
	v := startClassroom(b, srv.URL, *classroomWatchers, "delta=1&panels=", 0)
	v.phase(b, "lesson")
	passed := 0
	for run := range *classroomRuns {
		ok := true
		for step := range lesson.Steps {
			if code, body, _, err := c.call("PUT", "/api/lesson", fmt.Sprintf(`{"lesson":"black-friday","step":%d}`, step)); err != nil || code != 200 {
				b.Fatalf("run %d step %d: PUT /api/lesson: %d %s %v", run, step, code, body, err)
			}
			code, body, took, err := c.call("POST", fmt.Sprintf("/api/lessons/black-friday/steps/%d/run", step), "{}")
			if err != nil || code != 200 {
				b.Fatalf("run %d step %d: %d %s %v", run, step, code, body, err)
			}
			var res struct {
				Report string `json:"report"`
				Failed bool   `json:"failed"`
			}
			_ = json.Unmarshal(body, &res)
			if res.Failed {
				ok = false
				_, st, _, _ := c.call("GET", "/api/load", "")
				var status load.Status
				_ = json.Unmarshal(st, &status)
				var mix []string
				for _, smp := range status.Samples {
					if smp.T >= status.ElapsedS-7 {
						mix = append(mix, fmt.Sprintf("%s/%s@%.0fs %v p99 %.0f", smp.Store, smp.Region, smp.T, smp.Outcomes, smp.P99Ms))
					}
				}
				b.Logf("run %d step %d FAILED after %v: %s\n  last samples: %s", run+1, step+1, took.Round(time.Millisecond), res.Report, strings.Join(mix, "; "))
				_, _, _, _ = c.call("DELETE", "/api/load", "")
				break
			}
		}
		if ok {
			passed++
			b.Logf("run %d passed", run+1)
		}
	}
	phases := v.finish(b)
	b.ReportMetric(float64(passed), "runs-passed")
	b.ReportMetric(float64(*classroomRuns), "runs")
	if len(phases) > 0 {
		b.ReportMetric(phases[0].WireKBps.Mean, "wire-kB/s/viewer")
		b.ReportMetric(float64(phases[0].Lost), "viewers-lost")
	}
}

var classroomWatchers = flag.Int("classroom.viewers", 50, "BenchmarkClassroomLesson: page viewers watching")
