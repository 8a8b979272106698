package web

import (
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/check"
	"caplab/lab/inventory"

	"github.com/gorilla/websocket"
)

// checkCountingLab is the real lab, counting the checker runs it is asked for.
type checkCountingLab struct {
	Lab
	checks atomic.Int64
}

func (c *checkCountingLab) Check(store inventory.Store, sku string) (check.Result, error) {
	c.checks.Add(1)
	return c.Lab.Check(store, sku)
}

// The verdict worker's check reads the SKU's whole history, so it runs only
// while someone is connected to see its verdict: operations with no viewer
// cost no check; with a viewer, the verdict fragment is pushed as before.
func TestVerdictWorkerChecksOnlyForViewers(t *testing.T) {
	cl := &checkCountingLab{Lab: startLab(t, lab.Config{LatencyScale: 0.02})}
	s := New(cl, Options{Token: testToken, Logger: quietLogger()})
	t.Cleanup(s.Close)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	f := &apiFixture{srv: srv, s: s}

	f.call(t, "PUT", "/api/stores/consensus/skus/IPHONE", `{"region":"us-east-1","quantity":3}`, nil)
	f.call(t, "POST", "/api/stores/consensus/skus/IPHONE/buy", `{"region":"us-east-1","qty":1}`, nil)
	time.Sleep(3 * s.verdict.debounce)
	if n := cl.checks.Load(); n != 0 {
		t.Fatalf("the verdict worker ran %d checks with no viewer connected", n)
	}

	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	defer c.Close()
	if _, err := readFrame(c); err != nil {
		t.Fatal(err)
	}
	f.call(t, "PUT", "/api/stores/consensus/skus/IPHONE", `{"region":"us-east-1","quantity":5}`, nil)
	fr, err := readUntil(c, func(fr frame) bool { return fr.Type == frameFragment && fr.ID == "verdict" })
	if err != nil || !strings.Contains(fr.HTML, "IPHONE") {
		t.Fatalf("no verdict fragment for IPHONE with a viewer connected: %+v, %v", fr, err)
	}
	if cl.checks.Load() == 0 {
		t.Fatal("a verdict was pushed without a check")
	}
}
