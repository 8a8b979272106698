package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"

	"github.com/gorilla/websocket"
)

// The hub is the thing under test here, so its input channel is the event
// source: the tests feed it lab.Events directly, and watch real WebSocket
// viewers on a real HTTP server.

type hubFixture struct {
	hub    *hub
	events chan lab.Event
	srv    *httptest.Server
	wsURL  string
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startHub runs a hub behind /ws on an httptest server. Cleanup order:
// viewers (registered later), then the hub, then the server.
func startHub(t *testing.T, cfg hubConfig) *hubFixture {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	events := make(chan lab.Event)
	h := newHub(events, cfg)
	go h.run()
	mux := http.NewServeMux()
	snapshot := func() lab.State { return testState(0) }
	mux.Handle("GET /ws", newWSHandler(h, snapshot, cfg.Logger))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(h.close)
	return &hubFixture{hub: h, events: events, srv: srv, wsURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"}
}

func testState(version int64) lab.State {
	return lab.State{
		Version:    version,
		Regions:    []lab.RegionState{{Name: "us-east-1", Up: true}, {Name: "eu-west-1", Up: true}, {Name: "ap-southeast-1", Up: true}},
		Replicated: inventory.QuorumState{N: 3, W: 1, R: 1},
	}
}

func stateEvent(version int64) lab.Event {
	st := testState(version)
	return lab.Event{Type: lab.EventState, State: &st}
}

func faultEvent(id int) lab.Event {
	st := testState(int64(id))
	return lab.Event{Type: lab.EventFault, State: &st, Fault: &inventory.Fault{ID: id, Kind: inventory.FaultCut, Detail: "test"}}
}

// dial connects a viewer and registers its Close.
func (f *hubFixture) dial(t *testing.T) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(f.wsURL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", f.wsURL, err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (f *hubFixture) emit(t *testing.T, ev lab.Event) {
	t.Helper()
	select {
	case f.events <- ev:
	case <-time.After(10 * time.Second):
		t.Fatal("the hub did not take an event within 10 s")
	}
}

// readFrame reads one frame; the deadline only guards against a hang.
func readFrame(c *websocket.Conn) (frame, error) {
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var f frame
	_, b, err := c.ReadMessage()
	if err != nil {
		return f, err
	}
	return f, json.Unmarshal(b, &f)
}

// readUntil reads frames until match accepts one.
func readUntil(c *websocket.Conn, match func(frame) bool) (frame, error) {
	for {
		f, err := readFrame(c)
		if err != nil {
			return f, err
		}
		if match(f) {
			return f, nil
		}
	}
}

func isFault(id int) func(frame) bool {
	return func(f frame) bool { return f.Type == frameFault && f.Fault != nil && f.Fault.ID == id }
}

// waitClients polls until the hub counts n viewers.
func waitClients(t *testing.T, h *hub, n int) {
	t.Helper()
	for range 2000 {
		if h.clients() == n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("hub has %d viewers, want %d", h.clients(), n)
}

func TestViewerGetsStateAtConnect(t *testing.T) {
	f := startHub(t, hubConfig{Fragments: stateFragments})
	c := f.dial(t)
	first, err := readFrame(c)
	if err != nil {
		t.Fatal(err)
	}
	if first.Type != frameState || first.State == nil || len(first.State.Regions) != 3 {
		t.Fatalf("first frame = %+v, want the state", first)
	}
	frag, err := readFrame(c)
	if err != nil {
		t.Fatal(err)
	}
	if frag.Type != frameFragment || frag.ID != "counters" || !strings.Contains(frag.HTML, `id="counters"`) {
		t.Fatalf("second frame = %+v, want the counters fragment", frag)
	}
}

// TestFirstMessageIsAState reads the first message as a script written
// against API.md would ("GET /ws: State at connect"): the raw message
// decoded as a State, and also as a typed frame, as the page reads it.
func TestFirstMessageIsAState(t *testing.T) {
	f := startHub(t, hubConfig{})
	f.emit(t, stateEvent(7))
	c := f.dial(t)
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var st lab.State
	if err := json.Unmarshal(b, &st); err != nil || len(st.Regions) != 3 || st.Replicated.N != 3 || st.Version != 7 {
		t.Fatalf("first message %s is not the State (err %v)", b, err)
	}
	var fr frame
	if err := json.Unmarshal(b, &fr); err != nil || fr.Type != frameState || fr.State == nil || fr.State.Version != 7 {
		t.Fatalf("first message %s is not a state frame (err %v)", b, err)
	}
}

func TestLateViewerGetsNewestState(t *testing.T) {
	f := startHub(t, hubConfig{})
	f.emit(t, stateEvent(7))
	// The snapshot the handler takes says version 0; the hub knows 7.
	c := f.dial(t)
	first, err := readFrame(c)
	if err != nil {
		t.Fatal(err)
	}
	if first.State == nil || first.State.Version != 7 {
		t.Fatalf("first state frame has version %v, want 7", first.State)
	}
}

func TestTwoHundredViewersAllReceiveAChange(t *testing.T) {
	const viewers = 200
	f := startHub(t, hubConfig{})
	conns := make([]*websocket.Conn, viewers)
	for i := range conns {
		conns[i] = f.dial(t)
	}
	waitClients(t, f.hub, viewers)
	f.emit(t, faultEvent(42))

	var wg sync.WaitGroup
	errs := make(chan error, viewers)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := readUntil(c, isFault(42)); err != nil {
				errs <- errors.New("viewer " + itoa(i) + ": " + err.Error())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestViewerThatStopsReadingIsDroppedWithoutDelayingOthers(t *testing.T) {
	const (
		fast   = 5
		events = 400
	)
	f := startHub(t, hubConfig{SendBuffer: 8})

	// The slow viewer asks for a tiny socket buffer and never reads.
	dialer := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		return conn, err
	}}
	slow, resp, err := dialer.Dial(f.wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = slow.Close() })

	conns := make([]*websocket.Conn, fast)
	for i := range conns {
		conns[i] = f.dial(t)
	}
	waitClients(t, f.hub, fast+1)

	// Large operation frames (64 KiB each, 25 MiB in all) overflow the slow
	// viewer's socket buffers, then its send buffer. The events go out in
	// lock step with the fast viewers: each is sent once every fast viewer
	// has the one before, so any delay the slow viewer caused would hold
	// up the whole run.
	big := strings.Repeat("x", 64<<10)
	got := make(chan int, fast)
	errs := make(chan error, fast)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := 1
			for next <= events {
				fr, err := readFrame(c)
				if err != nil {
					errs <- errors.New("fast viewer " + itoa(i) + ": " + err.Error())
					return
				}
				if fr.Type != frameOperation {
					continue
				}
				if fr.Outcome == nil || fr.Outcome.OpID != next {
					errs <- errors.New("fast viewer " + itoa(i) + " got an operation out of order")
					return
				}
				got <- next
				next++
			}
		}()
	}
	var worst time.Duration
	for id := 1; id <= events; id++ {
		st := testState(int64(id))
		start := time.Now()
		f.emit(t, lab.Event{Type: lab.EventOperation, State: &st,
			Operation: &inventory.Operation{ID: id, SKU: "IPHONE"},
			Outcome:   &inventory.Outcome{OpID: id, SKU: "IPHONE", Outcome: inventory.OK, Message: big}})
		for range fast {
			select {
			case <-got:
			case err := <-errs:
				t.Fatal(err)
			}
		}
		worst = max(worst, time.Since(start))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitClients(t, f.hub, fast)
	// Reported, not asserted: a test never asserts a wall-clock time.
	t.Logf("slowest delivery of one 64 KiB event to all %d fast viewers: %v", fast, worst)
}

func TestRefusedUpgradesAffectNobody(t *testing.T) {
	f := startHub(t, hubConfig{})
	viewer := f.dial(t)
	waitClients(t, f.hub, 1)

	cases := []struct {
		name   string
		do     func() (*http.Response, error)
		status int
	}{
		{"plain GET", func() (*http.Response, error) { return http.Get(f.srv.URL + "/ws") }, http.StatusBadRequest},
		{"upgrade without key", func() (*http.Response, error) {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/ws", nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			return http.DefaultClient.Do(req)
		}, http.StatusBadRequest},
		{"POST", func() (*http.Response, error) {
			return http.Post(f.srv.URL+"/ws", "application/json", strings.NewReader("{}"))
		}, http.StatusMethodNotAllowed},
		{"cross-origin upgrade", func() (*http.Response, error) {
			h := http.Header{"Origin": []string{"http://evil.example"}}
			c, resp, err := websocket.DefaultDialer.Dial(f.wsURL, h)
			if err == nil {
				_ = c.Close()
				return resp, errors.New("a cross-origin upgrade was accepted")
			}
			if resp == nil {
				return nil, err
			}
			return resp, nil
		}, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.do()
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != http.StatusMethodNotAllowed {
				var e struct{ Error string }
				body, _ := io.ReadAll(resp.Body)
				if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
					t.Fatalf("body %q is not a JSON error sentence", body)
				}
			}
		})
	}
	if n := f.hub.clients(); n != 1 {
		t.Fatalf("hub has %d viewers after refused upgrades, want 1", n)
	}
	f.emit(t, faultEvent(9))
	if _, err := readUntil(viewer, isFault(9)); err != nil {
		t.Fatalf("the existing viewer stopped receiving: %v", err)
	}
}

func TestSameOriginUpgradeIsAccepted(t *testing.T) {
	f := startHub(t, hubConfig{})
	h := http.Header{"Origin": []string{f.srv.URL}}
	c, resp, err := websocket.DefaultDialer.Dial(f.wsURL, h)
	if err != nil {
		t.Fatalf("same-origin upgrade refused: %v", err)
	}
	_ = resp.Body.Close()
	_ = c.Close()
}

func TestOversizedClientFrameEndsOnlyThatConnection(t *testing.T) {
	f := startHub(t, hubConfig{})
	good := f.dial(t)
	bad := f.dial(t)
	waitClients(t, f.hub, 2)

	// A keep-alive is fine.
	if err := good.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if err := bad.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", maxClientFrame+1))); err != nil {
		t.Fatal(err)
	}
	if _, err := readUntil(bad, func(frame) bool { return false }); err == nil {
		t.Fatal("the oversized frame did not end the connection")
	} else if ce := (*websocket.CloseError)(nil); errors.As(err, &ce) && ce.Code != websocket.CloseMessageTooBig {
		t.Logf("closed with %v", ce)
	}
	waitClients(t, f.hub, 1)
	f.emit(t, faultEvent(5))
	if _, err := readUntil(good, isFault(5)); err != nil {
		t.Fatalf("the other viewer stopped receiving: %v", err)
	}
}

func TestCloseDisconnectsViewersAndIsSafeTwice(t *testing.T) {
	f := startHub(t, hubConfig{})
	c := f.dial(t)
	waitClients(t, f.hub, 1)
	f.hub.close()
	f.hub.close()
	if _, err := readUntil(c, func(frame) bool { return false }); err == nil {
		t.Fatal("viewer still connected after close")
	}
	// A new viewer is turned away cleanly.
	c2, resp, err := websocket.DefaultDialer.Dial(f.wsURL, nil)
	if err == nil {
		_ = resp.Body.Close()
		defer c2.Close()
		if _, err := readUntil(c2, func(frame) bool { return false }); err == nil {
			t.Fatal("a viewer joined a stopped hub")
		}
	}
}

// --- coalescing, in a synctest bubble: the hub's timers run on the
// bubble's fake clock, so the counts are exact. The viewer here is a client
// without a connection: the hub only ever touches its send buffer.

func bubbleHub(t *testing.T, interval time.Duration) (*hub, chan lab.Event, *client) {
	t.Helper()
	events := make(chan lab.Event)
	h := newHub(events, hubConfig{Logger: quietLogger(), Interval: interval, SendBuffer: 100000})
	go h.run()
	t.Cleanup(h.close)
	c := &client{send: make(chan *wire, 100000)}
	h.register <- c
	return h, events, c
}

func drain(t *testing.T, c *client) []frame {
	t.Helper()
	var out []frame
	for {
		select {
		case w := <-c.send:
			var f frame
			if err := json.Unmarshal(w.data, &f); err != nil {
				t.Fatal(err)
			}
			out = append(out, f)
		default:
			return out
		}
	}
}

func TestStateFramesAreCoalesced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, events, c := bubbleHub(t, 50*time.Millisecond)
		for v := int64(1); v <= 1000; v++ {
			events <- stateEvent(v)
		}
		synctest.Wait()
		time.Sleep(260 * time.Millisecond) // running totals only: SummaryInterval
		synctest.Wait()
		got := drain(t, c)
		var versions []int64
		for _, f := range got {
			if f.Type == frameState {
				versions = append(versions, f.State.Version)
			}
		}
		// The first change goes out at once; the 999 that follow within
		// the interval become one frame with the newest state.
		if len(versions) != 2 || versions[0] != 1 || versions[1] != 1000 {
			t.Fatalf("state frames carried versions %v, want [1 1000]", versions)
		}
	})
}

// shapeEvent is a State whose shape changes with v: the leader moves.
func shapeEvent(v int64) lab.Event {
	st := testState(v)
	st.Regions[v%3].Consensus.Role = "leader"
	return lab.Event{Type: lab.EventState, State: &st}
}

func TestStateFramesAtMostTwentyPerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, events, c := bubbleHub(t, 50*time.Millisecond)
		for v := int64(1); v <= 1000; v++ { // one change of shape per millisecond for a second
			events <- shapeEvent(v)
			time.Sleep(time.Millisecond)
		}
		time.Sleep(60 * time.Millisecond)
		synctest.Wait()
		n, last := 0, int64(0)
		for _, f := range drain(t, c) {
			if f.Type == frameState {
				n++
				last = f.State.Version
			}
		}
		if n > 21 || n < 19 {
			t.Fatalf("%d state frames in one second, want about 20", n)
		}
		if last != 1000 {
			t.Fatalf("last state frame has version %d, want 1000", last)
		}
	})
}

// TestRunningTotalsAtMostFourPerSecond: when only running totals change
// (a load: counters, traffic, indexes), state frames go out at most every
// SummaryInterval (250 ms); a change of shape among them still goes out
// within Interval (50 ms) of the last frame.
func TestRunningTotalsAtMostFourPerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, events, c := bubbleHub(t, 50*time.Millisecond)
		for v := int64(1); v <= 2000; v++ { // totals change every millisecond for two seconds
			ev := stateEvent(v)
			if v == 1300 {
				ev = shapeEvent(v) // a crash, say: role "leader" appears
			}
			events <- ev
			time.Sleep(time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()
		var versions []int64
		for _, f := range drain(t, c) {
			if f.Type == frameState {
				versions = append(versions, f.State.Version)
			}
		}
		// 2 s at 4 a second, plus the change of shape and the last one.
		if n := len(versions); n < 8 || n > 11 {
			t.Fatalf("%d state frames in two seconds of running totals (versions %v), want about 9", n, versions)
		}
		shape := slices.IndexFunc(versions, func(v int64) bool { return v >= 1300 })
		if shape < 0 || versions[shape] > 1300+50 {
			t.Fatalf("the change of shape at version 1300 went out as version %v (versions %v), want within 50 ms", versions[max(shape, 0)], versions)
		}
		if versions[len(versions)-1] != 2000 {
			t.Fatalf("last state frame has version %d, want 2000", versions[len(versions)-1])
		}
	})
}

func TestOperationAndFaultFramesAreQueuedInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, events, c := bubbleHub(t, 50*time.Millisecond)
		for id := 1; id <= 100; id++ {
			st := testState(int64(id))
			if id%10 == 0 {
				events <- faultEvent(id)
				continue
			}
			events <- lab.Event{Type: lab.EventOperation, State: &st, Operation: &inventory.Operation{ID: id}, Outcome: &inventory.Outcome{OpID: id}}
		}
		events <- lab.Event{Type: lab.EventReset, State: &lab.State{Version: 101}}
		time.Sleep(60 * time.Millisecond)
		synctest.Wait()
		next := 1
		sawReset := false
		for _, f := range drain(t, c) {
			switch f.Type {
			case frameOperation:
				if f.Operation.ID != next {
					t.Fatalf("operation %d arrived when %d was due", f.Operation.ID, next)
				}
				next++
			case frameFault:
				if f.Fault.ID != next {
					t.Fatalf("fault %d arrived when %d was due", f.Fault.ID, next)
				}
				next++
			case frameReset:
				sawReset = true
			}
		}
		if next != 101 || !sawReset {
			t.Fatalf("got %d of 100 operations and faults, reset seen: %v", next-1, sawReset)
		}
	})
}

func TestFullSendBufferDropsTheViewer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		events := make(chan lab.Event)
		h := newHub(events, hubConfig{Logger: quietLogger(), SendBuffer: 4})
		go h.run()
		defer h.close()
		stuck := &client{send: make(chan *wire, 4)}
		ok := &client{send: make(chan *wire, 1000)}
		h.register <- stuck
		h.register <- ok
		for id := 1; id <= 10; id++ {
			events <- faultEvent(id)
		}
		synctest.Wait()
		if n := h.clients(); n != 1 {
			t.Fatalf("%d viewers left, want 1 (the stuck one dropped)", n)
		}
		// The hub closed the stuck viewer's buffer: its writer would end.
		for range stuck.send {
		}
		faults := 0
		for _, f := range drain(t, ok) {
			if f.Type == frameFault {
				faults++
			}
		}
		if faults != 10 {
			t.Fatalf("the other viewer got %d of 10 faults", faults)
		}
	})
}

// Past MaxViewers an upgrade is refused with 503 before it happens, and
// the viewers already connected are untouched.
func TestViewerCap(t *testing.T) {
	f := startHub(t, hubConfig{MaxViewers: 3})
	var conns []*websocket.Conn
	for range 3 {
		c := f.dial(t)
		if _, err := readFrame(c); err != nil { // the connect State: registered
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.hub.viewers.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	_, resp, err := websocket.DefaultDialer.Dial(f.wsURL, nil)
	if err == nil {
		t.Fatal("a fourth viewer was let in past MaxViewers=3")
	}
	if resp == nil || resp.StatusCode != 503 {
		t.Fatalf("refusal: %v %v, want 503", resp, err)
	}
	_ = resp.Body.Close()
	f.emit(t, faultEvent(7))
	for i, c := range conns {
		if _, err := readUntil(c, func(fr frame) bool { return fr.Type == "fault" }); err != nil {
			t.Fatalf("viewer %d lost its stream after the refusal: %v", i, err)
		}
	}
}

// TestLostEventsSendAResync: an event that says the lab lost events for the
// hub (Missed) makes the hub tell every viewer to read the history again,
// before the event's own frame; events without losses send no resync.
func TestLostEventsSendAResync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, events, c := bubbleHub(t, 50*time.Millisecond)
		st := testState(1)
		events <- lab.Event{Type: lab.EventOperation, State: &st, Operation: &inventory.Operation{ID: 1}, Outcome: &inventory.Outcome{OpID: 1}}
		events <- lab.Event{Type: lab.EventOperation, State: &st, Operation: &inventory.Operation{ID: 9}, Outcome: &inventory.Outcome{OpID: 9}, Missed: 7}
		synctest.Wait()
		var got []string
		for _, f := range drain(t, c) {
			switch f.Type {
			case frameOperation:
				got = append(got, fmt.Sprintf("operation %d", f.Operation.ID))
			case frameResync:
				got = append(got, fmt.Sprintf("resync %d", f.Missed))
			}
		}
		if want := []string{"operation 1", "resync 7", "operation 9"}; !slices.Equal(got, want) {
			t.Fatalf("frames %v, want %v", got, want)
		}
	})
}
