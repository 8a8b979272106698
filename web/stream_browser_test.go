package web

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

// TestPageLeanStream: the page asks for deltas and for the frames of the
// open tab only. During a load, with the lesson tab open, it gets neither
// load frames nor the counters; the State it holds, built from deltas, is
// at every moment one a plain viewer got whole. Opening the Load tab
// brings the whole run's samples at once and the load frames from then
// on; opening the Checker tab brings the counters.
func TestPageLeanStream(t *testing.T) {
	b := newBrowserLab(t, Options{})
	// A plain viewer: every State whole, by version.
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(b.url, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	var mu sync.Mutex
	whole := map[int64][]byte{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var f struct {
				Type  string          `json:"type"`
				State json.RawMessage `json:"state"`
			}
			if json.Unmarshal(msg, &f) != nil || f.Type != frameState || f.State == nil {
				continue
			}
			var v struct{ Version int64 }
			_ = json.Unmarshal(f.State, &v)
			mu.Lock()
			whole[v.Version] = f.State
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = conn.Close(); <-done })

	tab := b.viewerTab(t, "/")
	// Count, in the page, the frames it gets by type and fragment id.
	evalJS[bool](t, tab, `(() => { window.seen = {}; for (const k of ['load', 'fragment', 'state']) caplab.on(k, (f) => { const key = k === 'fragment' ? 'fragment:' + f.id : k; seen[key] = (seen[key] || 0) + 1; }); return true; })()`)
	b.mustCall(t, "POST", "/api/load", `{"rate":5,"readsPerBuy":4,"skus":50,"duration":"60s"}`, 200)
	waitUntil(t, 30*time.Second, "the load runs and the page follows its state", func() (bool, string) {
		st := evalJS[string](t, tab, `JSON.stringify(window.seen)`)
		var seen map[string]int
		_ = json.Unmarshal([]byte(st), &seen)
		return seen["state"] >= 12, st
	})
	seen := evalJS[map[string]int](t, tab, `window.seen`)
	if seen["load"] != 0 || seen["fragment:counters"] != 0 {
		t.Errorf("with the lesson tab open the page got %v: load frames or counters it does not show", seen)
	}
	// The page's State is one the plain viewer got whole.
	for range 5 {
		held := evalJS[string](t, tab, `JSON.stringify(caplab.state())`)
		var page map[string]any
		if err := json.Unmarshal([]byte(held), &page); err != nil {
			t.Fatal(err)
		}
		v := int64(page["version"].(float64))
		var want []byte
		waitUntil(t, 10*time.Second, "the plain viewer gets version "+strconv.FormatInt(v, 10), func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			want = whole[v]
			return want != nil, strconv.Itoa(len(whole)) + " versions"
		})
		var w any
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(dropNulls(page), dropNulls(w)) {
			t.Fatalf("version %d: the page holds\n%s\nthe plain viewer got\n%s", v, held, want)
		}
		time.Sleep(300 * time.Millisecond) // a few deltas later
	}
	// The Load tab: the run so far at once, then its frames.
	elapsed := func() float64 {
		var st struct {
			ElapsedS float64 `json:"elapsedS"`
		}
		_ = json.Unmarshal(b.mustCall(t, "GET", "/api/load?samples=0", "", 200), &st)
		return st.ElapsedS
	}
	ran := elapsed()
	runActions(t, tab, "open the Load tab", chromedp.Click(chromedp.ID("tab-load")))
	waitJS(t, tab, "the panel shows the seconds run before it opened", `document.getElementById('load-panel').dataset.samples`,
		func(s string) bool { n, _ := strconv.Atoi(s); return float64(n) >= ran-2 })
	waitUntil(t, 10*time.Second, "load frames once the tab is open", func() (bool, string) {
		n := evalJS[int](t, tab, `window.seen.load || 0`)
		return n >= 2, strconv.Itoa(n)
	})
	runActions(t, tab, "open the Checker tab", chromedp.Click(chromedp.ID("tab-checker")))
	waitUntil(t, 10*time.Second, "the counters once the Checker tab is open", func() (bool, string) {
		n := evalJS[int](t, tab, `window.seen['fragment:counters'] || 0`)
		return n >= 1, strconv.Itoa(n)
	})
	b.mustCall(t, "DELETE", "/api/load", "", 200)
}
