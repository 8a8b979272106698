package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"caplab/lab/inventory"
)

// TestEveryMutationRefusesBadBodies: every mutating route reads its body
// as decode does — one JSON object, at most 64 KiB — including those that
// take nothing ({} or empty): "hello", "{}{}", "[]" are 400 and 1.1 MB is
// 413, each with a sentence, and the lab is left as it was (clocks,
// recording, links, regions). POST /api/clocks/reset and POST
// /api/recording/start once answered 200 to all of them.
func TestEveryMutationRefusesBadBodies(t *testing.T) {
	f := newAPI(t)
	if resp, b := f.call(t, "POST", "/api/regions/eu-west-1/clock", `{"offsetMs":5000}`, nil); resp.StatusCode != 200 {
		t.Fatalf("set a clock: %d %s", resp.StatusCode, b)
	}
	if resp, b := f.call(t, "PUT", "/api/stores/consensus/skus/IPHONE", `{"region":"us-east-1","quantity":2}`, nil); resp.StatusCode != 200 {
		t.Fatalf("stock: %d %s", resp.StatusCode, b)
	}
	before := func() string {
		st := f.lab.State()
		var clocks []string
		for _, r := range st.Regions {
			clocks = append(clocks, r.Name+"="+inventory.EchoNumber(r.Clock.OffsetMs))
		}
		return shape(st) + " clocks " + strings.Join(clocks, ",")
	}
	was, recorded := before(), f.lab.Recorder().Status().Actions
	if recorded == 0 {
		t.Fatal("the stock was not recorded")
	}
	routes := [][2]string{
		{"POST", "/api/clocks/reset"},
		{"POST", "/api/recording/start"},
		{"POST", "/api/network/heal"},
		{"POST", "/api/regions/us-east-1/crash"},
		{"POST", "/api/regions/us-east-1/restart"},
		{"POST", "/api/regions/us-east-1/lead"},
		{"POST", "/api/reset"},
		{"DELETE", "/api/load"},
		{"POST", "/api/poll/reveal"},
		{"POST", "/api/poll/next"},
		{"POST", "/api/lessons/last-iphone/steps/0/run"},
		{"PUT", "/api/lesson"},
		{"POST", "/api/regions/us-east-1/clock"},
		{"POST", "/api/regions/us-east-1/pause"},
		{"POST", "/api/network/partition"},
		{"POST", "/api/network/bridge"},
		{"POST", "/api/network/link"},
		{"POST", "/api/network/latency"},
		{"PUT", "/api/stores/replicated/config"},
		{"POST", "/api/load"},
	}
	bodies := []struct {
		body, says string
		status     int
	}{
		{"hello", "not valid JSON", 400},
		{"{}{}", "exactly one", 400},
		{"[]", "JSON object", 400},
		{`{"pad":"` + strings.Repeat("x", 1100<<10) + `"}`, "64 KiB", 413},
	}
	for _, r := range routes {
		for _, b := range bodies {
			resp, body := f.call(t, r[0], r[1], b.body, nil)
			if resp.StatusCode != b.status {
				t.Errorf("%s %s with %.12q…: %d %s, want %d", r[0], r[1], b.body, resp.StatusCode, body, b.status)
				continue
			}
			if msg := errorOf(t, body); !strings.Contains(msg, b.says) {
				t.Errorf("%s %s with %.12q…: %q does not say %q", r[0], r[1], b.body, msg, b.says)
			}
		}
	}
	if now := before(); now != was {
		t.Errorf("refused bodies changed the lab:\nbefore %s\nafter  %s", was, now)
	}
	if n := f.lab.Recorder().Status().Actions; n != recorded {
		t.Errorf("refused bodies changed the recording: %d actions, want %d", n, recorded)
	}
	// The same routes still work with an empty body or {}.
	for _, r := range [][2]string{{"POST", "/api/clocks/reset"}, {"POST", "/api/recording/start"}} {
		if resp, b := f.call(t, r[0], r[1], "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s with no body: %d %s", r[0], r[1], resp.StatusCode, b)
		}
		if resp, b := f.call(t, r[0], r[1], "{}", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s {}: %d %s", r[0], r[1], resp.StatusCode, b)
		}
	}
}

// TestHandlerPanicAnswers500: a handler that panics (a bug, such as the
// recorder's nil map once was) answers 500 with a sentence instead of a
// closed connection, and the server keeps serving.
func TestHandlerPanicAnswers500(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) {
		panic("assignment to entry in nil map") // as the recorder once did
	})
	mux.HandleFunc("GET /fine", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]bool{"ok": true}) })
	srv := httptest.NewServer(recoverPanics(mux, quietLogger()))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/boom")
	if err != nil {
		t.Fatalf("GET /boom: %v (want a 500 answer, not a closed connection)", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(errorOf(t, body), "hit a bug answering GET") {
		t.Fatalf("GET /boom: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get(srv.URL + "/fine")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /fine after a panic: %v %v", resp, err)
	}
	resp.Body.Close()
}
