package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/check"
	"caplab/lab/history"
	"caplab/lab/inventory"

	"github.com/gorilla/websocket"
)

const testToken = "t0ken-for-tests"

type apiFixture struct {
	lab *lab.Lab
	srv *httptest.Server
	s   *Server
}

// startLab starts a real lab for one test — real etcd, fast Raft timing
// (50/500 ms), a temporary data dir, quiet — and closes it at the end.
func startLab(t testing.TB, cfg lab.Config) *lab.Lab {
	t.Helper()
	cfg.DataDir, cfg.TickMs, cfg.ElectionMs, cfg.Logger = t.TempDir(), 50, 500, quietLogger()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second) // 15 etcd servers on a busy 2-core machine: see nodes.Config.ReadyTimeout
	defer cancel()
	l, err := lab.New(ctx, cfg)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// newAPI starts a real lab (real etcd, small latency scale, fast Raft
// timing) behind a Server on an httptest server. Cleanup closes the HTTP
// server, then the Server, then the lab.
func newAPI(t testing.TB) *apiFixture {
	t.Helper()
	l := startLab(t, lab.Config{LatencyScale: 0.02})
	s := New(l, Options{Token: testToken, Logger: quietLogger(), JoinURL: "http://lab.example/"})
	t.Cleanup(s.Close)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &apiFixture{lab: l, srv: srv, s: s}
}

// call sends one request; hdr may set or (with "") delete headers.
func (f *apiFixture) call(t *testing.T, method, path, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// shape is the part of State a refused request must leave alone: links,
// regions up/down, the quorum. Counters, traffic and versions move anyway.
func shape(st lab.State) string {
	var b strings.Builder
	for _, r := range st.Regions {
		fmt.Fprintf(&b, "%s up=%v; ", r.Name, r.Up)
	}
	for _, l := range st.Links {
		fmt.Fprintf(&b, "%s>%s %s %.0f; ", l.From, l.To, l.State, l.RTTMs)
	}
	fmt.Fprintf(&b, "q=%+v gc=%v", st.Replicated, st.Consensus.GroupCommit)
	return b.String()
}

func errorOf(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("answer %q is not {\"error\": sentence}", body)
	}
	return e.Error
}

// apiCase is one refused request of the API table test; the fuzz targets
// (fuzz_test.go) take their seeds from these too.
type apiCase struct {
	name, method, path, body string
	hdr                      map[string]string
	status                   int
	says                     string // the error sentence contains this
}

// refusedRequests is the API table test's list of refused requests.
func refusedRequests() []apiCase {
	noAuth := map[string]string{"Authorization": ""}
	all := "us-east-1, eu-west-1, ap-southeast-1"
	sku := "/api/stores/consensus/skus/IPHONE"
	return []apiCase{
		// unknown names
		{"crash unknown region", "POST", "/api/regions/eu-west-2/crash", "{}", nil, 404, "\"eu-west-2\" is not in this lab (regions: " + all + ")"},
		{"restart unknown region", "POST", "/api/regions/mars-1/restart", "{}", nil, 404, "regions: " + all},
		{"lead unknown region", "POST", "/api/regions/mars-1/lead", "{}", nil, 404, "regions: " + all},
		{"link unknown region", "POST", "/api/network/link", `{"from":"us-east-1","to":"mars-1","state":"cut"}`, nil, 404, "mars-1"},
		{"latency unknown region", "POST", "/api/network/latency", `{"from":"mars-1","to":"us-east-1","rttMs":5}`, nil, 404, "mars-1"},
		{"partition unknown region", "POST", "/api/network/partition", `{"groups":[["us-east-1","eu-west-1"],["ap-southeast-1","mars-1"]]}`, nil, 404, "mars-1"},
		{"buy unknown region", "POST", sku + "/buy", `{"region":"mars-1","qty":1}`, nil, 404, "regions: " + all},
		{"stock unknown region", "PUT", sku, `{"region":"mars-1","quantity":1}`, nil, 404, "regions: " + all},
		{"read unknown region", "GET", sku + "?region=mars-1", "", nil, 404, "regions: " + all},
		{"buy unknown store", "POST", "/api/stores/mongo/skus/IPHONE/buy", `{"region":"us-east-1","qty":1}`, nil, 404, "stores: consensus, replicated"},
		{"stock unknown store", "PUT", "/api/stores/mongo/skus/IPHONE", `{"region":"us-east-1","quantity":1}`, nil, 404, "stores: consensus, replicated"},
		{"read unknown store", "GET", "/api/stores/mongo/skus/IPHONE?region=us-east-1", "", nil, 404, "stores: consensus, replicated"},
		{"config unknown store", "PUT", "/api/stores/mongo/config", `{"w":1,"r":1}`, nil, 404, "stores: consensus, replicated"},
		{"check unknown store", "GET", "/api/check?store=mongo&sku=IPHONE", "", nil, 404, "stores: consensus, replicated"},
		// SKUs
		{"buy bad sku", "POST", "/api/stores/consensus/skus/" + url.PathEscape("I PHONE") + "/buy", `{"region":"us-east-1","qty":1}`, nil, 400, "SKU"},
		{"stock long sku", "PUT", "/api/stores/consensus/skus/" + strings.Repeat("A", 65), `{"region":"us-east-1","quantity":1}`, nil, 400, "1 to 64"},
		{"read bad sku", "GET", "/api/stores/consensus/skus/" + url.PathEscape("a/b?") + "?region=us-east-1", "", nil, 0, ""},
		{"check without sku", "GET", "/api/check?store=consensus", "", nil, 400, "SKU"},
		{"history bad sku", "GET", "/api/history?sku=" + url.QueryEscape("no spaces"), "", nil, 400, "SKU"},
		{"history last 0", "GET", "/api/history?sku=IPHONE&last=0", "", nil, 400, "last must be a whole number from 1 to 100000"},
		{"history last word", "GET", "/api/history?last=all", "", nil, 400, `got "all"`},
		{"history last huge", "GET", "/api/history?last=100001", "", nil, 400, "from 1 to 100000"},
		// quantities
		{"qty 0", "POST", sku + "/buy", `{"region":"us-east-1","qty":0}`, nil, 400, "1 to 1000"},
		{"qty 1001", "POST", sku + "/buy", `{"region":"us-east-1","qty":1001}`, nil, 400, "1 to 1000"},
		{"qty string", "POST", sku + "/buy", `{"region":"us-east-1","qty":"1"}`, nil, 400, "qty"},
		{"qty fraction", "POST", sku + "/buy", `{"region":"us-east-1","qty":1.5}`, nil, 400, "qty"},
		{"qty missing", "POST", sku + "/buy", `{"region":"us-east-1"}`, nil, 400, "qty"},
		{"region missing", "POST", sku + "/buy", `{"qty":1}`, nil, 400, "region"},
		{"stock negative", "PUT", sku, `{"region":"us-east-1","quantity":-1}`, nil, 400, "quantity"},
		{"bad consistency", "GET", sku + "?region=us-east-1&consistency=eventual", "", nil, 400, "linearizable, serializable or cached"},
		{"cached replicated read", "GET", "/api/stores/replicated/skus/IPHONE?region=us-east-1&consistency=cached", "", nil, 400, "cached reads are the consensus store's"},
		// JSON
		{"malformed JSON", "POST", sku + "/buy", `{"region":`, nil, 400, "JSON"},
		{"truncated JSON", "POST", "/api/network/partition", `{"groups":[["us-east-1"],["eu-west-1","ap-southeast-1"]`, nil, 400, "JSON"},
		{"trailing garbage", "POST", sku + "/buy", `{"region":"us-east-1","qty":1} {"qty":2}`, nil, 400, "exactly one"},
		{"not an object", "POST", "/api/network/heal", `[1,2]`, nil, 400, "JSON object"},
		// bridge (extension)
		{"bridge unknown region", "POST", "/api/network/bridge", `{"via":"mars-1"}`, nil, 404, "us-east-1, eu-west-1, ap-southeast-1"},
		{"bridge no via", "POST", "/api/network/bridge", `{}`, nil, 400, "region"},
		{"bridge no token", "POST", "/api/network/bridge", `{"via":"us-east-1"}`, noAuth, 401, "token"},
		{"syntax error", "POST", "/api/regions/us-east-1/crash", `{oops}`, nil, 400, "not valid JSON"},
		{"oversized body", "POST", "/api/network/partition", `{"pad":"` + strings.Repeat("x", 65<<10) + `"}`, nil, 413, "64 KiB"},
		// groups
		{"groups miss a region", "POST", "/api/network/partition", `{"groups":[["us-east-1"],["eu-west-1"]]}`, nil, 400, "missing: ap-southeast-1"},
		{"groups repeat a region", "POST", "/api/network/partition", `{"groups":[["us-east-1","eu-west-1"],["eu-west-1","ap-southeast-1"]]}`, nil, 400, "exactly one group"},
		{"groups repeat inside", "POST", "/api/network/partition", `{"groups":[["us-east-1","us-east-1"],["eu-west-1","ap-southeast-1"]]}`, nil, 400, "twice"},
		{"groups empty", "POST", "/api/network/partition", `{"groups":[]}`, nil, 400, "every region"},
		{"empty group", "POST", "/api/network/partition", `{"groups":[["us-east-1","eu-west-1","ap-southeast-1"],[]]}`, nil, 400, "empty"},
		{"groups wrong type", "POST", "/api/network/partition", `{"groups":"all"}`, nil, 400, "groups"},
		// links
		{"self link", "POST", "/api/network/link", `{"from":"us-east-1","to":"us-east-1","state":"cut"}`, nil, 400, "two different regions"},
		{"self latency", "POST", "/api/network/latency", `{"from":"eu-west-1","to":"eu-west-1","rttMs":5}`, nil, 400, "two different regions"},
		{"bad link state", "POST", "/api/network/link", `{"from":"us-east-1","to":"eu-west-1","state":"down"}`, nil, 400, `"up" or "cut"`},
		{"rtt negative", "POST", "/api/network/latency", `{"from":"us-east-1","to":"eu-west-1","rttMs":-1}`, nil, 400, "0 to 5000"},
		{"rtt too big", "POST", "/api/network/latency", `{"from":"us-east-1","to":"eu-west-1","rttMs":5001}`, nil, 400, "0 to 5000"},
		{"rtt missing", "POST", "/api/network/latency", `{"from":"us-east-1","to":"eu-west-1"}`, nil, 400, "rttMs"},
		{"rtt string", "POST", "/api/network/latency", `{"from":"us-east-1","to":"eu-west-1","rttMs":"120"}`, nil, 400, "rttMs"},
		// quorum
		{"w 0", "PUT", "/api/stores/replicated/config", `{"w":0,"r":1}`, nil, 400, "1 to 3"},
		{"r 4", "PUT", "/api/stores/replicated/config", `{"w":1,"r":4}`, nil, 400, "1 to 3"},
		{"w missing", "PUT", "/api/stores/replicated/config", `{"r":1}`, nil, 400, `"w"`},
		{"consensus config", "PUT", "/api/stores/consensus/config", `{"w":1,"r":1}`, nil, 400, "Only the replicated store"},
		{"group commit missing", "PUT", "/api/stores/consensus/config", `{}`, nil, 400, `"groupCommit"`},
		{"group commit not a bool", "PUT", "/api/stores/consensus/config", `{"groupCommit":"yes"}`, nil, 400, "groupCommit"},
		{"group commit on replicated", "PUT", "/api/stores/replicated/config", `{"w":2,"r":2,"groupCommit":true}`, nil, 400, "Group commit is the consensus store's"},
		{"geo config", "PUT", "/api/stores/geo/config", `{"groupCommit":true}`, nil, 400, "the geo store has neither"},
		{"no token group commit", "PUT", "/api/stores/consensus/config", `{"groupCommit":false}`, noAuth, 401, "token"},
		// auth
		{"no token partition", "POST", "/api/network/partition", `{"groups":[["us-east-1"],["eu-west-1","ap-southeast-1"]]}`, noAuth, 401, "token"},
		{"no token heal", "POST", "/api/network/heal", "{}", noAuth, 401, "token"},
		{"no token link", "POST", "/api/network/link", `{"from":"us-east-1","to":"eu-west-1","state":"cut"}`, noAuth, 401, "token"},
		{"no token latency", "POST", "/api/network/latency", `{"from":"us-east-1","to":"eu-west-1","rttMs":9}`, noAuth, 401, "token"},
		{"no token crash", "POST", "/api/regions/us-east-1/crash", "{}", noAuth, 401, "token"},
		{"no token restart", "POST", "/api/regions/us-east-1/restart", "{}", noAuth, 401, "token"},
		{"no token lead", "POST", "/api/regions/eu-west-1/lead", "{}", noAuth, 401, "token"},
		{"no token stock", "PUT", sku, `{"region":"us-east-1","quantity":5}`, noAuth, 401, "token"},
		{"no token buy", "POST", sku + "/buy", `{"region":"us-east-1","qty":1}`, noAuth, 401, "token"},
		{"no token config", "PUT", "/api/stores/replicated/config", `{"w":2,"r":2}`, noAuth, 401, "token"},
		{"no token reset", "POST", "/api/reset", "{}", noAuth, 401, "token"},
		{"wrong token", "POST", "/api/regions/us-east-1/crash", "{}", map[string]string{"Authorization": "Bearer nope"}, 401, "token"},
		{"wrong cookie", "POST", "/api/regions/us-east-1/crash", "{}", map[string]string{"Authorization": "", "Cookie": "caplab_token=nope"}, 401, "token"},
		{"cross-origin cookie", "POST", "/api/regions/us-east-1/crash", "{}", map[string]string{"Authorization": "", "Cookie": tokenCookie + "=" + testToken, "Origin": "http://evil.example"}, 403, "another site"},
		{"cross-site referer cookie", "POST", "/api/network/heal", "{}", map[string]string{"Authorization": "", "Cookie": tokenCookie + "=" + testToken, "Referer": "http://evil.example/page"}, 403, "another site"},
		{"null origin cookie", "PUT", sku, `{"region":"us-east-1","quantity":5}`, map[string]string{"Authorization": "", "Cookie": tokenCookie + "=" + testToken, "Origin": "null"}, 403, "another site"},
		// routes
		{"unknown route", "GET", "/api/nothing", "", nil, 404, "nothing at"},
		{"wrong method", "DELETE", "/api/state", "", nil, 405, "GET"},
	}
}

func TestRefusedRequestsChangeNothing(t *testing.T) {
	f := newAPI(t)
	cases := refusedRequests()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := shape(f.lab.State())
			resp, body := f.call(t, tc.method, tc.path, tc.body, tc.hdr)
			if tc.status == 0 { // only: refused somehow, nothing applied
				if resp.StatusCode < 400 {
					t.Fatalf("status %d, want a refusal", resp.StatusCode)
				}
			} else {
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.status, body)
				}
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Fatalf("Content-Type %q, want JSON", ct)
				}
				if msg := errorOf(t, body); !strings.Contains(msg, tc.says) {
					t.Fatalf("error %q does not say %q", msg, tc.says)
				}
			}
			if after := shape(f.lab.State()); after != before {
				t.Fatalf("state changed by a refused request:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	// Nothing refused reached the history either.
	if h := f.lab.History("IPHONE"); len(h.Operations) != 0 || len(h.Faults) != 0 {
		t.Fatalf("refused requests left history: %+v", h)
	}
}

func decodeJSON[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	return v
}

func linkStateOf(st lab.State, from, to string) string {
	for _, l := range st.Links {
		if l.From == from && l.To == to {
			return l.State
		}
	}
	return "missing"
}

func TestAPIRoutes(t *testing.T) {
	f := newAPI(t)
	ok := func(t *testing.T, method, path, body string, want int) []byte {
		t.Helper()
		resp, b := f.call(t, method, path, body, nil)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, want, b)
		}
		return b
	}

	t.Run("health and state", func(t *testing.T) {
		ok(t, "GET", "/healthz", "", 200)
		st := decodeJSON[lab.State](t, ok(t, "GET", "/api/state", "", 200))
		if len(st.Regions) != 3 || len(st.Links) != 6 || st.Replicated.N != 3 {
			t.Fatalf("state %+v", st)
		}
		// JSON answers echo input in their errors; never let a browser
		// sniff one as HTML.
		resp, _ := f.call(t, "GET", "/api/stores/consensus/skus/"+url.PathEscape("<b>x</b>")+"?region=us-east-1", "", nil)
		if resp.StatusCode != 400 || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("error answer: %d, X-Content-Type-Options %q", resp.StatusCode, resp.Header.Get("X-Content-Type-Options"))
		}
	})

	t.Run("stock buy read history check", func(t *testing.T) {
		for _, s := range []inventory.Store{inventory.Consensus, inventory.Replicated} { // geo: TestGeoAPI
			base := "/api/stores/" + string(s) + "/skus/IPHONE-15-PRO"
			o := decodeJSON[inventory.Outcome](t, ok(t, "PUT", base, `{"region":"us-east-1","quantity":2}`, 200))
			if o.Outcome != inventory.OK || o.Quantity != 2 {
				t.Fatalf("stock: %+v", o)
			}
			// The replicated store (W=1, R=1) replicates in the background,
			// so buy where the stock was written; consensus buys anywhere.
			buyer := "eu-west-1"
			if s == inventory.Replicated {
				buyer = "us-east-1"
			}
			o = decodeJSON[inventory.Outcome](t, ok(t, "POST", base+"/buy", `{"region":"`+buyer+`","qty":1}`, 200))
			if o.Outcome != inventory.OK || o.Quantity != 1 || o.AnsweredBy == nil {
				t.Fatalf("buy: %+v", o)
			}
			o = decodeJSON[inventory.Outcome](t, ok(t, "POST", base+"/buy", `{"region":"`+buyer+`","qty":5}`, 200))
			if o.Outcome != inventory.SoldOut {
				t.Fatalf("buy 5 of 1: %+v", o)
			}
		}
		o := decodeJSON[inventory.Outcome](t, ok(t, "GET", "/api/stores/consensus/skus/IPHONE-15-PRO?region=ap-southeast-1", "", 200))
		if o.Quantity != 1 {
			t.Fatalf("read: %+v", o)
		}
		ok(t, "GET", "/api/stores/consensus/skus/IPHONE-15-PRO?region=ap-southeast-1&consistency=serializable", "", 200)
		h := decodeJSON[history.View](t, ok(t, "GET", "/api/history?sku=IPHONE-15-PRO", "", 200))
		if len(h.Operations) < 6 {
			t.Fatalf("history has %d operations, want at least 6", len(h.Operations))
		}
		// last=N: the newest N, in order (the page asks for what it keeps).
		tail := decodeJSON[history.View](t, ok(t, "GET", "/api/history?sku=IPHONE-15-PRO&last=2", "", 200))
		if len(tail.Operations) != 2 || tail.Operations[0].ID != h.Operations[len(h.Operations)-2].ID || tail.Operations[1].ID != h.Operations[len(h.Operations)-1].ID {
			t.Fatalf("last=2: %d operations %+v, want the newest 2 of %d", len(tail.Operations), tail.Operations, len(h.Operations))
		}
		if all := decodeJSON[history.View](t, ok(t, "GET", "/api/history?sku=IPHONE-15-PRO&last=100000", "", 200)); len(all.Operations) != len(h.Operations) {
			t.Fatalf("last=100000: %d operations, want all %d", len(all.Operations), len(h.Operations))
		}
		c := decodeJSON[check.Result](t, ok(t, "GET", "/api/check?store=consensus&sku=IPHONE-15-PRO", "", 200))
		if !c.Linearizable || c.SoldUnits != 1 || c.InitialUnits != 2 || c.Oversold != 0 {
			t.Fatalf("check: %+v", c)
		}
		resp, b := f.call(t, "GET", "/api/check/visual?store=consensus&sku=IPHONE-15-PRO", "", nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || len(b) == 0 {
			t.Fatalf("visual: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		// porcupine's page builds its tooltips with innerHTML: it may load
		// nothing, send nothing and be framed by nobody.
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Fatalf("visual: Content-Security-Policy %q", csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatal("visual: no X-Content-Type-Options: nosniff")
		}
		resp, b = f.call(t, "GET", "/ui/verdict?sku=IPHONE-15-PRO", "", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(b), `verdict-consensus`) {
			t.Fatalf("verdict fragment: %d %s", resp.StatusCode, b)
		}
	})

	t.Run("network", func(t *testing.T) {
		st := decodeJSON[lab.State](t, ok(t, "POST", "/api/network/link", `{"from":"us-east-1","to":"eu-west-1","state":"cut","oneWay":true}`, 200))
		if linkStateOf(st, "us-east-1", "eu-west-1") != "cut" || linkStateOf(st, "eu-west-1", "us-east-1") != "up" {
			t.Fatalf("one-way cut: %s", shape(st))
		}
		st = decodeJSON[lab.State](t, ok(t, "POST", "/api/network/latency", `{"from":"us-east-1","to":"eu-west-1","rttMs":120}`, 200))
		for _, l := range st.Links {
			if (l.From == "us-east-1" && l.To == "eu-west-1") || (l.From == "eu-west-1" && l.To == "us-east-1") {
				if l.RTTMs != 120 {
					t.Fatalf("latency: %+v", l)
				}
			}
		}
		st = decodeJSON[lab.State](t, ok(t, "POST", "/api/network/partition", `{"groups":[["ap-southeast-1"],["us-east-1","eu-west-1"]]}`, 200))
		if linkStateOf(st, "ap-southeast-1", "us-east-1") != "cut" || linkStateOf(st, "us-east-1", "eu-west-1") != "up" {
			t.Fatalf("partition: %s", shape(st))
		}
		// The minority cannot sell from the consensus store: 503 + Retry-After.
		resp, b := f.call(t, "POST", "/api/stores/consensus/skus/IPHONE-15-PRO/buy", `{"region":"ap-southeast-1","qty":1}`, nil)
		o := decodeJSON[inventory.Outcome](t, b)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || (o.Outcome != inventory.Unavailable && o.Outcome != inventory.FailFast) {
			t.Fatalf("minority buy: %d %q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), o)
		}
		st = decodeJSON[lab.State](t, ok(t, "POST", "/api/network/heal", "", 200))
		for _, l := range st.Links {
			if l.State != "up" {
				t.Fatalf("after heal: %s", shape(st))
			}
		}
		// Bridge through ap-southeast-1: only us-east-1 <-> eu-west-1 is cut.
		st = decodeJSON[lab.State](t, ok(t, "POST", "/api/network/bridge", `{"via":"ap-southeast-1"}`, 200))
		for _, l := range st.Links {
			bridged := (l.From == "us-east-1" && l.To == "eu-west-1") || (l.From == "eu-west-1" && l.To == "us-east-1")
			if (l.State == "cut") != bridged {
				t.Fatalf("bridge: %s", shape(st))
			}
		}
		ok(t, "POST", "/api/network/heal", "", 200)
	})

	t.Run("quorum", func(t *testing.T) {
		st := decodeJSON[lab.State](t, ok(t, "PUT", "/api/stores/replicated/config", `{"w":2,"r":2}`, 200))
		if st.Replicated.W != 2 || st.Replicated.R != 2 {
			t.Fatalf("quorum: %+v", st.Replicated)
		}
	})

	t.Run("group commit", func(t *testing.T) {
		for _, on := range []bool{false, true} {
			st := decodeJSON[lab.State](t, ok(t, "PUT", "/api/stores/consensus/config", fmt.Sprintf(`{"groupCommit":%v}`, on), 200))
			if st.Consensus.GroupCommit != on || f.lab.Faults().GroupCommit() != on {
				t.Fatalf("groupCommit %v: state %+v", on, st.Consensus)
			}
		}
	})

	t.Run("regions", func(t *testing.T) {
		st := decodeJSON[lab.State](t, ok(t, "POST", "/api/regions/eu-west-1/lead", "{}", 200))
		for _, r := range st.Regions {
			if r.Name == "eu-west-1" && r.Consensus.Role != "leader" {
				t.Fatalf("after lead: eu-west-1 is %s", r.Consensus.Role)
			}
		}
		st = decodeJSON[lab.State](t, ok(t, "POST", "/api/regions/ap-southeast-1/crash", "{}", 200))
		if i := slices.IndexFunc(st.Regions, func(r lab.RegionState) bool { return r.Name == "ap-southeast-1" }); st.Regions[i].Up {
			t.Fatal("crashed region still up")
		}
		resp, b := f.call(t, "POST", "/api/regions/ap-southeast-1/lead", "{}", nil)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("lead a crashed region: %d %s", resp.StatusCode, b)
		}
		errorOf(t, b)
		// Crashing a crashed region (or restarting a running one) is a
		// conflict with the lab's state, not something to retry.
		resp, b = f.call(t, "POST", "/api/regions/ap-southeast-1/crash", "{}", nil)
		if resp.StatusCode != 409 || !strings.Contains(errorOf(t, b), "down") {
			t.Fatalf("crash a crashed region: %d %s", resp.StatusCode, b)
		}
		st = decodeJSON[lab.State](t, ok(t, "POST", "/api/regions/ap-southeast-1/restart", "", 200))
		if i := slices.IndexFunc(st.Regions, func(r lab.RegionState) bool { return r.Name == "ap-southeast-1" }); !st.Regions[i].Up {
			t.Fatal("restarted region still down")
		}
		resp, b = f.call(t, "POST", "/api/regions/ap-southeast-1/restart", "{}", nil)
		if resp.StatusCode != 409 || !strings.Contains(errorOf(t, b), "running") {
			t.Fatalf("restart a running region: %d %s", resp.StatusCode, b)
		}
	})

	t.Run("same-origin cookie mutation", func(t *testing.T) {
		resp, b := f.call(t, "POST", "/api/network/heal", "{}", map[string]string{"Authorization": "", "Cookie": tokenCookie + "=" + testToken, "Origin": f.srv.URL})
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
	})

	t.Run("reset", func(t *testing.T) {
		ok(t, "POST", "/api/reset", "{}", 200)
		h := decodeJSON[history.View](t, ok(t, "GET", "/api/history?sku=IPHONE-15-PRO", "", 200))
		if len(h.Operations) != 0 {
			t.Fatalf("history after reset: %d operations", len(h.Operations))
		}
	})
}

func TestPageAndToken(t *testing.T) {
	f := newAPI(t)
	t.Run("token link sets cookie and redirects", func(t *testing.T) {
		resp, _ := f.call(t, "GET", "/?token="+testToken+"&present=1", "", map[string]string{"Authorization": ""})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?present=1" {
			t.Fatalf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		var c *http.Cookie
		for _, k := range resp.Cookies() {
			if k.Name == tokenCookie {
				c = k
			}
		}
		if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Value != testToken {
			t.Fatalf("cookie %+v", c)
		}
	})
	t.Run("presenter page", func(t *testing.T) {
		resp, b := f.call(t, "GET", "/", "", map[string]string{"Authorization": "", "Cookie": tokenCookie + "=" + testToken})
		page := string(b)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, id := range []string{`data-role="presenter"`, `id="map"`, `id="region-us-east-1"`, `id="link-us-east-1--eu-west-1"`,
			`id="buy-consensus-ap-southeast-1"`, `id="buy-replicated-ap-southeast-1"`, `id="outcome-replicated-us-east-1"`, `id="counters"`, `id="verdict"`, `id="verdict-full"`, `id="load-slot"`, `id="timeline"`, `id="join-qr"`, `data:image/png;base64,`} {
			if !strings.Contains(page, id) {
				t.Errorf("presenter page lacks %s", id)
			}
		}
		if strings.Contains(page, `data-region="us-east-1" disabled`) {
			t.Error("presenter's controls are disabled")
		}
	})
	t.Run("viewer page", func(t *testing.T) {
		_, b := f.call(t, "GET", "/", "", map[string]string{"Authorization": ""})
		page := string(b)
		if !strings.Contains(page, `data-role="viewer"`) || !strings.Contains(page, `id="viewer-note"`) {
			t.Fatal("viewer page does not say it is for viewers")
		}
		if !strings.Contains(page, `data-region="us-east-1" disabled`) {
			t.Error("viewer's controls are not disabled")
		}
		if strings.Contains(page, `id="buy-consensus-us-east-1"`) {
			t.Error("a viewer's page has buy buttons")
		}
	})
	t.Run("bad token", func(t *testing.T) {
		resp, b := f.call(t, "GET", "/?token=wrong", "", map[string]string{"Authorization": ""})
		if resp.StatusCode != 200 || !strings.Contains(string(b), `id="bad-token"`) || resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("status %d, Set-Cookie %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
		}
	})
	t.Run("static", func(t *testing.T) {
		for _, p := range []string{"/static/app.js", "/static/app.css", "/static/favicon.svg"} {
			resp, b := f.call(t, "GET", p, "", nil)
			if resp.StatusCode != 200 || len(b) == 0 {
				t.Errorf("%s: %d", p, resp.StatusCode)
			}
		}
	})
}

func TestStreamWithRealLab(t *testing.T) {
	f := newAPI(t)
	wsURL := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws"
	c, resp, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	defer c.Close()
	first, err := readFrame(c)
	if err != nil || first.Type != frameState || first.State == nil || len(first.State.Regions) != 3 {
		t.Fatalf("first frame %+v, %v", first, err)
	}
	f.call(t, "PUT", "/api/stores/consensus/skus/IPHONE", `{"region":"us-east-1","quantity":3}`, nil)
	op, err := readUntil(c, func(fr frame) bool { return fr.Type == frameOperation })
	if err != nil || op.Outcome == nil || op.Outcome.SKU != "IPHONE" {
		t.Fatalf("operation frame %+v, %v", op, err)
	}
	f.call(t, "POST", "/api/network/link", `{"from":"us-east-1","to":"eu-west-1","state":"cut"}`, nil)
	if _, err := readUntil(c, func(fr frame) bool { return fr.Type == frameFault }); err != nil {
		t.Fatalf("no fault frame: %v", err)
	}
	if _, err := readUntil(c, func(fr frame) bool { return fr.Type == frameFragment && fr.ID == "verdict" }); err != nil {
		t.Fatalf("no verdict fragment: %v", err)
	}
}

// A lab told its own host names refuses any other Host (DNS rebinding).
func TestAllowedHosts(t *testing.T) {
	f := newAPI(t)
	srv := New(f.lab, Options{Token: testToken, AllowedHosts: []string{"127.0.0.1:1234"}})
	defer srv.Close()
	for host, want := range map[string]int{"127.0.0.1:1234": 200, "evil.example:1234": 421, "": 421} {
		req := httptest.NewRequest("GET", "/api/state", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %q: status %d, want %d (%s)", host, rec.Code, want, rec.Body)
		}
	}
}
