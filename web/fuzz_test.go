package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lessons"

	"github.com/gorilla/websocket"
)

// Fuzz targets for every JSON body the API decodes and for the WebSocket.
// Each runs against a real lab behind a real Server (one per target). Their
// seeds — the API table test's refused requests for that route
// (refusedRequests) plus valid bodies — run in the normal suite; .ci/run
// fuzzes each for a few seconds (go test -fuzz=FuzzX -fuzztime=5s ./web).
//
// What must hold for any input: no 500 and no panic; an error answer is
// {"error": sentence} of a readable length (inventory.Echo); a refused request
// (4xx) records no operation and no fault.

// fuzzAPI is a real lab with the built-in lessons, a poll open (so votes
// reach the session) and a signed viewer cookie.
type fuzzAPI struct {
	*apiFixture
	viewer string
}

func newFuzzAPI(f *testing.F) *fuzzAPI {
	f.Helper()
	cat, errs := lessons.LoadCatalog("")
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	l := startLab(f, lab.Config{LatencyScale: 0.02})
	s := New(l, Options{Token: testToken, Logger: quietLogger(), Lessons: LessonsFrom(cat, lessons.LabOf(l))})
	f.Cleanup(s.Close)
	srv := httptest.NewServer(s.Handler())
	f.Cleanup(srv.Close)
	if err := s.session.set("last-iphone", 1); err != nil { // a step that asks
		f.Fatal(err)
	}
	c := s.viewerCookieFor(&http.Request{})
	return &fuzzAPI{apiFixture: &apiFixture{lab: l, srv: srv, s: s}, viewer: c.Value}
}

// recorded counts the operations and faults in the lab's history.
func (fa *fuzzAPI) recorded() int {
	h := fa.lab.History("")
	return len(h.Operations) + len(h.Faults)
}

// checkAnswer asserts the properties every answer must have.
func checkAnswer(t *testing.T, what string, resp *http.Response, body []byte, recordedBefore, recordedAfter int) {
	t.Helper()
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("%s: status %d: %s", what, resp.StatusCode, body)
	}
	if !json.Valid(body) {
		t.Fatalf("%s: status %d, the answer is not JSON: %.300s", what, resp.StatusCode, body)
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusConflict {
			if e.Error == "" {
				t.Fatalf("%s: status %d without an error sentence: %.300s", what, resp.StatusCode, body)
			}
		}
		if len(e.Error) > 700 {
			t.Fatalf("%s: an error of %d bytes repeats too much input: %.300s…", what, len(e.Error), e.Error)
		}
		if resp.StatusCode < 500 && resp.StatusCode != http.StatusConflict && recordedAfter != recordedBefore {
			t.Fatalf("%s: refused (%d) but the history grew from %d to %d records", what, resp.StatusCode, recordedBefore, recordedAfter)
		}
	}
}

// fuzzBody fuzzes the body of one route. seeds are valid bodies; the
// table test's refused bodies for the route are added too.
func fuzzBody(f *testing.F, method, path string, match func(apiCase) bool, seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	for _, c := range refusedRequests() {
		if c.hdr == nil && c.method == method && match(c) {
			f.Add(c.body)
		}
	}
	f.Add("")
	f.Add("null")
	f.Add(`{"` + strings.Repeat("a", 100) + `":1e308}`)
	fa := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, body string) {
		before := fa.recorded()
		resp, b := fa.call(t, method, path, body, map[string]string{"Origin": fa.srv.URL, "Cookie": viewerCookie + "=" + fa.viewer})
		checkAnswer(t, method+" "+path, resp, b, before, fa.recorded())
	})
}

func pathIs(p string) func(apiCase) bool { return func(c apiCase) bool { return c.path == p } }

func FuzzPartitionBody(f *testing.F) {
	fuzzBody(f, "POST", "/api/network/partition", pathIs("/api/network/partition"),
		`{"groups":[["us-east-1","eu-west-1"],["ap-southeast-1"]]}`,
		`{"groups":[["us-east-1","eu-west-1","ap-southeast-1"]]}`)
}

func FuzzLinkBody(f *testing.F) {
	fuzzBody(f, "POST", "/api/network/link", pathIs("/api/network/link"),
		`{"from":"us-east-1","to":"eu-west-1","state":"cut","oneWay":true}`,
		`{"from":"us-east-1","to":"eu-west-1","state":"up"}`)
}

func FuzzLatencyBody(f *testing.F) {
	fuzzBody(f, "POST", "/api/network/latency", pathIs("/api/network/latency"),
		`{"from":"us-east-1","to":"eu-west-1","rttMs":120}`,
		`{"from":"eu-west-1","to":"ap-southeast-1","rttMs":0.5,"oneWay":true}`)
}

func FuzzBridgeBody(f *testing.F) {
	fuzzBody(f, "POST", "/api/network/bridge", pathIs("/api/network/bridge"), `{"via":"eu-west-1"}`)
}

func FuzzHealBody(f *testing.F) { // the decoder of every action without fields
	fuzzBody(f, "POST", "/api/network/heal", func(c apiCase) bool { return c.body == "{}" || c.path == "/api/network/heal" }, `{}`, `{"extra":true}`)
}

func FuzzStockBody(f *testing.F) {
	fuzzBody(f, "PUT", "/api/stores/consensus/skus/FUZZ", func(c apiCase) bool { return strings.Contains(c.path, "/skus/") },
		`{"region":"us-east-1","quantity":10}`, `{"region":"ap-southeast-1","quantity":0}`)
}

func FuzzBuyBody(f *testing.F) {
	fuzzBody(f, "POST", "/api/stores/consensus/skus/FUZZ/buy", func(c apiCase) bool { return strings.HasSuffix(c.path, "/buy") },
		`{"region":"eu-west-1","qty":1}`, `{"region":"us-east-1","qty":1000}`)
}

func FuzzQuorumBody(f *testing.F) {
	fuzzBody(f, "PUT", "/api/stores/replicated/config", func(c apiCase) bool { return strings.HasSuffix(c.path, "/config") },
		`{"w":2,"r":2}`, `{"w":1,"r":3}`)
}

func FuzzSetLessonBody(f *testing.F) {
	fuzzBody(f, "PUT", "/api/lesson", pathIs("/api/lesson"),
		`{"lesson":"last-iphone","step":1}`, `{"lesson":"","step":0}`, `{"lesson":"last-iphone","step":99}`)
}

func FuzzVoteBody(f *testing.F) {
	fuzzBody(f, "POST", "/api/poll/vote", pathIs("/api/poll/vote"),
		`{"option":"unavailable"}`, `{"option":"ok"}`, `{"option":null}`)
}

// FuzzWebSocket opens /ws with a fuzzed Origin and sends one fuzzed frame
// (text or binary) — the browser only ever sends keep-alives. Whatever
// comes, the server answers the upgrade with 101 or a JSON refusal, never
// panics, and keeps serving: afterwards a new viewer connects and gets its
// first frame.
func FuzzWebSocket(f *testing.F) {
	f.Add("", []byte("ping"), false)
	f.Add("", []byte(`{"type":"state"}`), false)
	f.Add("http://evil.example", []byte("x"), false)
	f.Add("null", []byte{0xff, 0xfe, 0}, true)
	f.Add("", []byte(strings.Repeat("a", 5000)), false) // past the read limit
	f.Add("", []byte{}, true)
	fa := newFuzzAPI(f)
	wsURL := "ws" + strings.TrimPrefix(fa.srv.URL, "http") + "/ws"
	f.Fuzz(func(t *testing.T, origin string, frame []byte, binary bool) {
		if origin == "self" {
			origin = fa.srv.URL
		}
		hdr := http.Header{}
		if origin != "" {
			hdr.Set("Origin", origin)
		}
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		conn, resp, err := d.Dial(wsURL, hdr)
		if err != nil {
			if resp == nil {
				return // the client refused to send such a header
			}
			// 403: an Origin the lab refuses. 400: one that is no valid
			// header value at all, refused by net/http before the lab sees it.
			if resp.StatusCode != http.StatusForbidden && (resp.StatusCode != http.StatusBadRequest || validHeaderValue(origin)) {
				t.Fatalf("upgrade with Origin %q: %v, status %d", origin, err, resp.StatusCode)
			}
		} else {
			kind := websocket.TextMessage
			if binary {
				kind = websocket.BinaryMessage
			}
			_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
			_ = conn.WriteMessage(kind, frame)
			_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					break
				}
			}
			_ = conn.Close()
		}
		// Still serving.
		c2, _, err := d.Dial(wsURL, nil)
		if err != nil {
			t.Fatalf("after Origin %q and a %d-byte frame, a new viewer cannot connect: %v", origin, len(frame), err)
		}
		defer c2.Close()
		_ = c2.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, b, err := c2.ReadMessage(); err != nil || !json.Valid(b) {
			t.Fatalf("after Origin %q and a %d-byte frame, a new viewer gets no frame: %v", origin, len(frame), err)
		}
	})
}

// validHeaderValue reports whether v may stand in an HTTP header field:
// no control characters but tab (RFC 9110, what net/http's server checks).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
