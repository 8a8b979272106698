package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"caplab/lab/inventory"
	"caplab/lab/load"

	"github.com/gorilla/websocket"
)

// TestLoadAPIRefusesBadConfigs: every bad config is a 4xx naming the
// field, and nothing starts.
func TestLoadAPIRefusesBadConfigs(t *testing.T) {
	f := newAPI(t)
	cases := []struct {
		body   string
		status int
		field  string
	}{
		{`{"rate":0.0001,"ratePerRegion":{"us-east-1":-5}}`, 400, "ratePerRegion"},
		{`{"rate":-1}`, 400, "rate"},
		{`{"rate":1e9}`, 400, "rate"},
		{`{"rate":100000,"readsPerBuy":1000}`, 400, "operations a second"},
		{`{"ratePerRegion":{"mars-north-1":5}}`, 400, "mars-north-1"},
		{`{"stores":["consensus","nosql"]}`, 400, "nosql"},
		{`{"readsPerBuy":-1}`, 400, "readsPerBuy"},
		{`{"readsPerBuy":5000}`, 400, "readsPerBuy"},
		{`{"zipf":0.5}`, 400, "zipf"},
		{`{"skus":1000000000}`, 400, "skus"},
		{`{"duration":"forever"}`, 400, "duration"},
		{`{"duration":"100h"}`, 400, "duration"},
		{`{"doorbuster":"no spaces"}`, 400, "doorbuster"},
		{`{"consistency":"eventual"}`, 400, "consistency"},
		{`{"rate":"fast"}`, 400, "rate"},
		{`[1,2]`, 400, "JSON object"},
	}
	for _, c := range cases {
		resp, body := f.call(t, "POST", "/api/load", c.body, nil)
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.field) {
			t.Errorf("POST %s: %d %s, want %d naming %q", c.body, resp.StatusCode, body, c.status, c.field)
		}
	}
	resp, _ := f.call(t, "POST", "/api/load", `{}`, map[string]string{"Authorization": ""})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /api/load without the token: %d, want 401", resp.StatusCode)
	}
	resp, body := f.call(t, "GET", "/api/load", "", nil)
	var st load.Status
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != 200 || st.State != load.StateIdle {
		t.Fatalf("GET /api/load after refused starts: %d %s, want idle", resp.StatusCode, body)
	}
}

// TestLoadAPIRun: POST starts a load on every store, a second POST is a
// 409, the WebSocket carries a "load" frame once a second, DELETE answers
// the final status with counts that add up.
func TestLoadAPIRun(t *testing.T) {
	f := newAPI(t)
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, body := f.call(t, "POST", "/api/load", `{"rate":10,"readsPerBuy":3,"skus":30,"duration":"30s"}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("POST /api/load: %d %s", resp.StatusCode, body)
	}
	resp, body = f.call(t, "POST", "/api/load", `{}`, nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "stop it first") {
		t.Errorf("second POST: %d %s, want 409", resp.StatusCode, body)
	}
	// Three samples, a second apart.
	var times []float64
	for len(times) < 3 {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, b, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("reading /ws: %v (samples so far at %v)", err, times)
		}
		var fr struct {
			Type string       `json:"type"`
			Load *load.Status `json:"load"`
		}
		if err := json.Unmarshal(b, &fr); err != nil {
			t.Fatal(err)
		}
		if fr.Type != frameLoad || fr.Load.State != load.StateRunning || len(fr.Load.Latest) == 0 {
			continue
		}
		if n, want := len(fr.Load.Latest), len(inventory.Stores)*3; n != want {
			t.Fatalf("a frame carries %d samples, want one per (store, region) = %d", n, want)
		}
		times = append(times, fr.Load.Latest[0].T)
	}
	if times[1]-times[0] != 1 || times[2]-times[1] != 1 {
		t.Errorf("samples at %v, want a second apart", times)
	}
	resp, body = f.call(t, "GET", "/api/load", "", nil)
	var st load.Status
	if err := json.Unmarshal(body, &st); err != nil || st.State != load.StateRunning || len(st.Samples) < 6 {
		t.Fatalf("GET /api/load while running: %d, state %s, %d samples", resp.StatusCode, st.State, len(st.Samples))
	}
	resp, body = f.call(t, "DELETE", "/api/load", "", nil)
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != 200 || st.State != load.StateStopped {
		t.Fatalf("DELETE /api/load: %d %s", resp.StatusCode, body)
	}
	for _, s := range st.Stores {
		for _, r := range s.Regions {
			var n int64
			for _, v := range r.Outcomes {
				n += v
			}
			if n != r.Offered || r.Offered == 0 {
				t.Errorf("%s/%s: offered %d, outcomes %v", s.Store, r.Region, r.Offered, r.Outcomes)
			}
		}
	}
}
