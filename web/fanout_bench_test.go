package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"caplab/lab"
)

// The fan-out benchmarks measure the live stream end to end on loopback: a
// real lab drives real changes, the real Server fans them out, and real
// WebSocket viewers receive them. The viewers run in a child process (this
// test binary again, as TestFanoutViewers), so the server's CPU time and
// memory are measured apart from theirs; both processes share the machine.
//
// A change is a link cut or heal. Its marker is the fault id the lab gives
// it: the fault frame carries it. The state frame that reflects it is the
// first one with the version the lab published with the fault (or newer)
// and the link in the new state. Delays run from the driver's clock just
// before the change (lab call or HTTP request) to the viewer's clock when
// the frame is read: both are the same machine's wall clock.
//
//	go test ./web -run '^$' -bench Fanout -benchtime 1x

const (
	fanoutEnvWS      = "CAPLAB_FANOUT_WS"      // the viewer process: the /ws URL
	fanoutEnvViewers = "CAPLAB_FANOUT_VIEWERS" // the viewer process: how many viewers
	fanoutLinkA      = "us-east-1"
	fanoutLinkB      = "eu-west-1"
)

// fanoutMark is one change as the driver saw it.
type fanoutMark struct {
	ID      int   `json:"id"`      // fault id
	SentNs  int64 `json:"sentNs"`  // wall clock just before the change
	Version int64 `json:"version"` // State.Version published with the fault
	Cut     bool  `json:"cut"`     // the change cut the link (else healed it)
}

// fanoutResult is what the viewer process reports.
type fanoutResult struct {
	Viewers, Lost                 int     // connected; disconnected before the end
	FaultP50, FaultP99, FaultMax  float64 // ms, change → fault frame, over viewers × changes
	FaultMissed                   int     // (viewer, change) pairs with no fault frame
	StateP50, StateP99, StateMax  float64 // ms, change → the state frame reflecting it
	StateMissed, StateSuperseded  int     // no such frame; the next change came first (coalesced)
	Frames, Bytes                 int64   // received by all viewers
	WindowS, CPUSeconds, MaxRSSMB float64 // the viewer process
	FirstFrameP99, ConnectSeconds float64 // ms to the first frame after dialing; s to connect all
	Samples, StateSamples         int
}

func BenchmarkFanout1000Viewers(b *testing.B) {
	f := newFanoutLab(b)
	// Baseline: the same changes with nobody watching.
	idle := f.drive(b, 30, 100*time.Millisecond, f.labChange)
	child := startFanoutViewers(b, f.wsURL, 1000)
	run := f.drive(b, 100, 100*time.Millisecond, f.labChange) // 10 changes a second for 10 s
	res := child.finish(b, run.marks)

	b.ReportMetric(res.FaultP50, "p50-ms")
	b.ReportMetric(res.FaultP99, "p99-ms")
	b.ReportMetric(res.FaultMax, "max-ms")
	b.ReportMetric(res.StateP99, "state-p99-ms")
	b.ReportMetric(run.cpuCores, "server-cpu-cores")
	b.ReportMetric(idle.cpuCores, "server-cpu-cores-0-viewers")
	b.ReportMetric(res.CPUSeconds/res.WindowS, "viewers-cpu-cores")
	b.ReportMetric(run.maxRSSMB, "server-rss-MB")
	b.ReportMetric(idle.maxRSSMB, "server-rss-MB-0-viewers")
	b.ReportMetric(float64(res.Frames)/res.WindowS, "frames/s")
	b.ReportMetric(float64(res.Lost), "viewers-lost")
	b.ReportMetric(float64(res.FaultMissed), "missed")
	b.Logf("1000 viewers: %+v", res)
}

func BenchmarkFanoutAPIToFrame100Viewers(b *testing.B) {
	f := newFanoutLab(b)
	child := startFanoutViewers(b, f.wsURL, 100)
	run := f.drive(b, 50, 100*time.Millisecond, f.apiChange)
	res := child.finish(b, run.marks)

	b.ReportMetric(res.FaultP50, "p50-ms")
	b.ReportMetric(res.FaultP99, "p99-ms")
	b.ReportMetric(res.StateP50, "state-p50-ms")
	b.ReportMetric(res.StateP99, "state-p99-ms")
	b.ReportMetric(percentile(run.requestMs, 0.5), "http-p50-ms")
	b.ReportMetric(run.cpuCores, "server-cpu-cores")
	b.ReportMetric(float64(res.FaultMissed), "missed")
	b.Logf("100 viewers, API → frame: %+v", res)
}

// fanoutLab is a real lab behind a real Server on loopback.
type fanoutLab struct {
	lab    *lab.Lab
	srv    *httptest.Server
	wsURL  string
	client *http.Client
}

func newFanoutLab(b *testing.B) *fanoutLab {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Latency scale 1 and the default Raft timing: the lab as `caplab` runs it.
	l, err := lab.New(ctx, lab.Config{LatencyScale: 1, DataDir: b.TempDir(), Logger: quietLogger()})
	if err != nil {
		b.Fatalf("lab: %v", err)
	}
	b.Cleanup(func() { _ = l.Close() })
	s := New(l, Options{Token: testToken, Logger: quietLogger()})
	b.Cleanup(s.Close)
	srv := httptest.NewServer(s.Handler())
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(client.CloseIdleConnections)
	return &fanoutLab{lab: l, srv: srv, wsURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", client: client}
}

// labChange cuts (k even) or heals the link through the lab.
func (f *fanoutLab) labChange(k int) error {
	return f.lab.Faults().SetLink(fanoutLinkA, fanoutLinkB, k%2 == 1, false)
}

// apiChange does the same with POST /api/network/link.
func (f *fanoutLab) apiChange(k int) error {
	state := "cut"
	if k%2 == 1 {
		state = "up"
	}
	body := fmt.Sprintf(`{"from":%q,"to":%q,"state":%q,"oneWay":false}`, fanoutLinkA, fanoutLinkB, state)
	req, err := http.NewRequest("POST", f.srv.URL+"/api/network/link", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("POST /api/network/link: %s", resp.Status)
	}
	return nil
}

type fanoutRun struct {
	marks     []fanoutMark
	cpuCores  float64   // this process's CPU time / wall time over the run
	maxRSSMB  float64   // this process's largest RSS seen during the run
	requestMs []float64 // how long each change call took
}

// drive makes n changes, one every interval, and records each one's fault
// id and published version from the lab's own event stream.
func (f *fanoutLab) drive(b *testing.B, n int, every time.Duration, change func(k int) error) fanoutRun {
	b.Helper()
	events, unsub := f.lab.Subscribe()
	defer unsub()
	rss := sampleRSS()
	cpu0, wall0 := cpuTime(), time.Now()
	var run fanoutRun
	tick := time.NewTicker(every)
	defer tick.Stop()
	for k := range n {
		<-tick.C
		sent := time.Now()
		if err := change(k); err != nil {
			b.Fatalf("change %d: %v", k, err)
		}
		run.requestMs = append(run.requestMs, float64(time.Since(sent).Microseconds())/1000)
		timeout := time.After(10 * time.Second)
	wait:
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					b.Fatal("the lab closed its event stream")
				}
				if ev.Type == lab.EventFault && ev.Fault != nil && ev.State != nil {
					run.marks = append(run.marks, fanoutMark{ID: ev.Fault.ID, SentNs: sent.UnixNano(), Version: ev.State.Version, Cut: k%2 == 0})
					break wait
				}
			case <-timeout:
				b.Fatalf("change %d: no fault event within 10 s", k)
			}
		}
	}
	run.cpuCores = (cpuTime() - cpu0).Seconds() / time.Since(wall0).Seconds()
	run.maxRSSMB = rss()
	// leave the link up for whoever comes next
	if n%2 == 1 {
		_ = f.lab.Faults().SetLink(fanoutLinkA, fanoutLinkB, true, false)
	}
	return run
}

// cpuTime is this process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssMB is this process's resident set size now (VmRSS), in MB.
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// sampleRSS samples rssMB every 200 ms until the returned func is called;
// that returns the largest sample.
func sampleRSS() func() float64 {
	stop, done := make(chan struct{}), make(chan float64)
	go func() {
		peak := rssMB()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				peak = max(peak, rssMB())
			case <-stop:
				done <- max(peak, rssMB())
				return
			}
		}
	}()
	return func() float64 { close(stop); return <-done }
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// ---- the viewer process

// fanoutViewers is the child process that holds the viewers.
type fanoutViewers struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

// startFanoutViewers runs this test binary as TestFanoutViewers with n
// viewers on wsURL and waits until every viewer has its first frame.
func startFanoutViewers(b *testing.B, wsURL string, n int) *fanoutViewers {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFanoutViewers$", "-test.count=1")
	cmd.Env = append(os.Environ(), fanoutEnvWS+"="+wsURL, fanoutEnvViewers+"="+strconv.Itoa(n))
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
	v := &fanoutViewers{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
	v.lines.Buffer(make([]byte, 64<<10), 1<<20)
	b.Cleanup(func() {
		_ = stdin.Close()
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // our own child, by its pid
			_ = cmd.Wait()
		}
	})
	if _, ok := v.expect("FANOUT-READY"); !ok {
		b.Fatal("the viewer process ended before its viewers were connected")
	}
	return v
}

// expect reads the child's stdout until a line starting with prefix.
func (v *fanoutViewers) expect(prefix string) (string, bool) {
	for v.lines.Scan() {
		if rest, ok := strings.CutPrefix(v.lines.Text(), prefix); ok {
			return strings.TrimSpace(rest), true
		}
	}
	return "", false
}

// finish gives the child the marks, waits for its result and its exit.
func (v *fanoutViewers) finish(b *testing.B, marks []fanoutMark) fanoutResult {
	b.Helper()
	time.Sleep(500 * time.Millisecond) // let the last frames arrive: the marks' window is over
	enc := json.NewEncoder(v.stdin)
	for _, m := range marks {
		if err := enc.Encode(m); err != nil {
			b.Fatal(err)
		}
	}
	_ = v.stdin.Close()
	line, ok := v.expect("FANOUT-RESULT")
	if !ok {
		b.Fatal("the viewer process ended without a result")
	}
	var res fanoutResult
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		b.Fatalf("viewer result %q: %v", line, err)
	}
	if err := v.cmd.Wait(); err != nil {
		b.Fatalf("viewer process: %v", err)
	}
	return res
}

// TestFanoutViewers is the viewer process of the fan-out benchmarks; it
// skips unless CAPLAB_FANOUT_WS is set. It connects the viewers, says
// FANOUT-READY, reads the driver's marks (JSON lines) from stdin until EOF,
// and prints FANOUT-RESULT with the delays.
func TestFanoutViewers(t *testing.T) {
	wsURL := os.Getenv(fanoutEnvWS)
	if wsURL == "" {
		t.Skip("the viewer process of BenchmarkFanout*; runs only when " + fanoutEnvWS + " is set")
	}
	n, err := strconv.Atoi(os.Getenv(fanoutEnvViewers))
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a count", fanoutEnvViewers, os.Getenv(fanoutEnvViewers))
	}
	cut := []byte(fmt.Sprintf(`{"from":%q,"to":%q,"state":"cut"`, fanoutLinkA, fanoutLinkB))

	start := time.Now()
	viewers := make([]*fanoutViewer, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	errs := make(chan error, n)
	for i := range viewers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			v, err := dialViewer(wsURL, cut)
			if err != nil {
				errs <- err
				return
			}
			viewers[i] = v
		})
	}
	wg.Wait()
	close(errs)
	for _, v := range viewers {
		if v != nil {
			defer v.conn.Close() // a failed test still closes every viewer
		}
	}
	for err := range errs {
		t.Fatalf("dial: %v", err)
	}
	for _, v := range viewers {
		<-v.first
	}
	connect := time.Since(start)
	cpu0, wall0 := cpuTime(), time.Now()
	rss := sampleRSS()
	fmt.Println("FANOUT-READY")

	var marks []fanoutMark
	dec := json.NewDecoder(os.Stdin)
	for {
		var m fanoutMark
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("marks: %v", err)
		}
		marks = append(marks, m)
	}
	res := fanoutResult{Viewers: n, ConnectSeconds: connect.Seconds()}
	res.WindowS = time.Since(wall0).Seconds()
	res.CPUSeconds = (cpuTime() - cpu0).Seconds()
	res.MaxRSSMB = rss()
	for _, v := range viewers {
		_ = v.conn.Close()
		<-v.done
	}

	var faultMs, stateMs, firstMs []float64
	for _, v := range viewers {
		if v.lostEarly {
			res.Lost++
		}
		res.Frames += v.frames
		res.Bytes += v.bytes
		firstMs = append(firstMs, v.firstMs)
		for k, m := range marks {
			if at, ok := v.faults[m.ID]; ok {
				faultMs = append(faultMs, float64(at-m.SentNs)/1e6)
			} else {
				res.FaultMissed++
			}
			// the first state frame at or after the version, with the link as the change left it
			found := false
			for _, s := range v.states {
				if s.version < m.Version {
					continue
				}
				if k+1 < len(marks) && s.version >= marks[k+1].Version {
					res.StateSuperseded++
					found = true
					break
				}
				if s.cut == m.Cut {
					stateMs = append(stateMs, float64(s.at-m.SentNs)/1e6)
					found = true
					break
				}
			}
			if !found {
				res.StateMissed++
			}
		}
	}
	res.Samples, res.StateSamples = len(faultMs), len(stateMs)
	res.FaultP50, res.FaultP99, res.FaultMax = percentile(faultMs, 0.5), percentile(faultMs, 0.99), percentile(faultMs, 1)
	res.StateP50, res.StateP99, res.StateMax = percentile(stateMs, 0.5), percentile(stateMs, 0.99), percentile(stateMs, 1)
	res.FirstFrameP99 = percentile(firstMs, 0.99)
	out, _ := json.Marshal(res)
	fmt.Println("FANOUT-RESULT " + string(out))
}

// fanoutViewer is one WebSocket viewer in the viewer process. Its reader
// notes when each fault frame and each state frame arrived, looking only at
// the bytes it needs (the fault id; the state's version and the link).
type fanoutViewer struct {
	conn      *websocket.Conn
	first     chan struct{} // closed at the first frame, or when the reader ends
	firstOnce sync.Once
	done      chan struct{} // closed when the reader ends
	faults    map[int]int64 // fault id → arrival (unix ns)
	states    []stateSeen
	frames    int64
	bytes     int64
	firstMs   float64
	lostEarly bool // the connection ended before the driver was done
}

type stateSeen struct {
	version int64
	cut     bool
	at      int64
}

var (
	faultPrefix  = []byte(`{"type":"fault","fault":{"id":`)
	statePrefix  = []byte(`{"type":"state",`)
	versionField = []byte(`"version":`)
)

func dialViewer(wsURL string, cut []byte) (*fanoutViewer, error) {
	dialed := time.Now()
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 16 << 10}
	conn, resp, err := d.Dial(wsURL, nil)
	if err != nil {
		return nil, err
	}
	_ = resp.Body.Close()
	v := &fanoutViewer{conn: conn, first: make(chan struct{}), done: make(chan struct{}), faults: map[int]int64{}}
	go v.read(dialed, cut)
	return v, nil
}

func (v *fanoutViewer) read(dialed time.Time, cut []byte) {
	defer close(v.done)
	defer v.firstOnce.Do(func() { close(v.first) })
	for {
		_, msg, err := v.conn.ReadMessage()
		now := time.Now()
		if err != nil {
			// A close from our own side (the end of the run) shows as a use of
			// a closed connection; anything else means the server let go.
			v.lostEarly = !strings.Contains(err.Error(), "use of closed network connection")
			return
		}
		at := now.UnixNano()
		if v.frames == 0 {
			v.firstMs = float64(now.Sub(dialed).Microseconds()) / 1000
			v.firstOnce.Do(func() { close(v.first) })
		}
		v.frames++
		v.bytes += int64(len(msg))
		switch {
		case bytes.HasPrefix(msg, faultPrefix):
			if id, ok := leadingInt(msg[len(faultPrefix):]); ok {
				v.faults[int(id)] = at
			}
		case bytes.HasPrefix(msg, statePrefix):
			if i := bytes.LastIndex(msg, versionField); i >= 0 {
				if ver, ok := leadingInt(msg[i+len(versionField):]); ok {
					v.states = append(v.states, stateSeen{version: ver, cut: bytes.Contains(msg, cut), at: at})
				}
			}
		}
	}
}

// leadingInt parses the decimal digits at the start of b.
func leadingInt(b []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	return n, i > 0
}
