package web

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
	"caplab/lessons"

	"github.com/chromedp/chromedp"
)

// TestRecordedSessionReplays drives the API as a presenter would (stock 1
// on both stores, Singapore partitioned away, a buy on each store from
// both sides, heal, reads), exports the recording as a lesson, checks it
// and runs it on a fresh lab with the same latency scale: every
// expectation the recording wrote must hold.
func TestRecordedSessionReplays(t *testing.T) {
	f := newAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Nothing recorded yet: 409 with a sentence.
	resp, body := f.call(t, "GET", "/api/recording/lesson", "", nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(errorOf(t, body), "Nothing was recorded") {
		t.Fatalf("empty export: %d %s, want 409 saying nothing was recorded", resp.StatusCode, body)
	}
	// Without the token: 401.
	if resp, _ := f.call(t, "GET", "/api/recording/lesson", "", map[string]string{"Authorization": ""}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("export without token: %d, want 401", resp.StatusCode)
	}

	const sku = "/api/stores/%s/skus/IPHONE"
	path := func(store string) string { return strings.Replace(sku, "%s", store, 1) }
	must := func(method, p, body string, want int) []byte {
		t.Helper()
		resp, b := f.call(t, method, p, body, nil)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, p, resp.StatusCode, b, want)
		}
		return b
	}
	must("POST", "/api/regions/us-east-1/lead", "{}", 200)
	must("PUT", path("consensus"), `{"region":"us-east-1","quantity":1}`, 200)
	must("PUT", path("replicated"), `{"region":"us-east-1","quantity":1}`, 200)
	if err := f.lab.WaitConverged(ctx); err != nil { // a person's pace: replicas agree
		t.Fatal(err)
	}
	must("POST", "/api/network/partition", `{"groups":[["us-east-1","eu-west-1"],["ap-southeast-1"]]}`, 200)
	must("POST", path("consensus")+"/buy", `{"region":"ap-southeast-1","qty":1}`, 503)
	must("POST", path("consensus")+"/buy", `{"region":"eu-west-1","qty":1}`, 200)
	must("POST", path("replicated")+"/buy", `{"region":"ap-southeast-1","qty":1}`, 200)
	must("POST", path("replicated")+"/buy", `{"region":"eu-west-1","qty":1}`, 200)
	must("POST", "/api/network/heal", "{}", 200)
	if err := f.lab.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	must("GET", path("consensus")+"?region=ap-southeast-1", "", 200)
	must("GET", path("replicated")+"?region=ap-southeast-1", "", 200)

	resp, md := f.call(t, "GET", "/api/recording/lesson", "", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/markdown") {
		t.Fatalf("export: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), md)
	}
	t.Logf("exported lesson:\n%s", md)
	for _, want := range []string{
		"regions: [us-east-1, eu-west-1, ap-southeast-1]",
		"## Singapore is cut off",
		"## The network heals",
		"<!-- say what happened -->",
		"partition us-east-1,eu-west-1 | ap-southeast-1\n",
		"buy consensus IPHONE from ap-southeast-1 expect unavailable\n",
		"buy consensus IPHONE from eu-west-1 expect ok\n",
		"buy replicated IPHONE from ap-southeast-1 expect ok\n",
		"buy replicated IPHONE from eu-west-1 expect ok\n",
		"expect read consensus IPHONE from ap-southeast-1 = 0\n",
		"expect read replicated IPHONE from ap-southeast-1 = 0\n",
		"expect check replicated IPHONE oversold = 1\n",
		"expect check consensus IPHONE oversold = 0\n",
	} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("exported lesson lacks %q", want)
		}
	}
	if bytes.Contains(md, []byte("\nask ")) {
		t.Error("the exported lesson invents ask lines")
	}

	file := filepath.Join(t.TempDir(), "recorded.md")
	if err := os.WriteFile(file, md, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	// caplab lessons record writes the same file from the running lab.
	viaCLI := filepath.Join(t.TempDir(), "cli.md")
	if code := lessons.Main([]string{"record", "--url", f.srv.URL, "--token", testToken, "-o", viaCLI}, &out, &errOut, nil); code != lessons.ExitOK {
		t.Fatalf("lessons record: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if got, _ := os.ReadFile(viaCLI); !bytes.Equal(got, md) {
		t.Errorf("lessons record wrote\n%s\nwant the API's export", got)
	}
	if code := lessons.Main([]string{"check", file}, &out, &errOut, nil); code != lessons.ExitOK {
		t.Fatalf("lessons check: exit %d\n%s%s", code, out.String(), errOut.String())
	}

	// Replay on a fresh lab with the same latency scale.
	fresh := startLab(t, lab.Config{LatencyScale: 0.02})
	l, errs := lessons.ParseFile(file)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	out.Reset()
	if _, err := lessons.NewRunner(l, lessons.LabOf(fresh), &out).RunAll(ctx); err != nil {
		t.Fatalf("replay: %v\n%s", err, out.String())
	}
	if passed := strings.Count(out.String(), " ✓ "); passed < 10 {
		t.Errorf("replay met %d expectations, want every one of at least 10:\n%s", passed, out.String())
	}
}

// TestRecordedGeoSessionReplays is "Save as lesson" after the README's
// first action, "Stock every store" (the page stocks consensus,
// replicated and geo in turn), then geo buys on both sides of a
// partition: the export answers 200 with a lesson that checks and replays
// on a fresh lab. (It once panicked in the handler: the recorder knew two
// stores.)
func TestRecordedGeoSessionReplays(t *testing.T) {
	f := newAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	must := func(method, p, body string, want int) []byte {
		t.Helper()
		resp, b := f.call(t, method, p, body, nil)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, p, resp.StatusCode, b, want)
		}
		return b
	}
	path := func(store string) string { return "/api/stores/" + store + "/skus/IPHONE" }
	must("POST", "/api/regions/us-east-1/lead", "{}", 200)
	for _, s := range inventory.Stores {
		must("PUT", path(string(s)), `{"region":"us-east-1","quantity":3}`, 200)
	}
	must("PUT", "/api/stores/geo/skus/CASE", `{"region":"us-east-1","allocations":{"us-east-1":1,"eu-west-1":0,"ap-southeast-1":2}}`, 200)
	must("POST", path("geo")+"/buy", `{"region":"ap-southeast-1","qty":1}`, 200)
	must("POST", "/api/network/partition", `{"groups":[["us-east-1","eu-west-1"],["ap-southeast-1"]]}`, 200)
	must("POST", path("geo")+"/buy", `{"region":"ap-southeast-1","qty":1}`, 503)         // its own allocation is spent; the rest is stranded
	must("POST", "/api/stores/geo/skus/CASE/buy", `{"region":"eu-west-1","qty":1}`, 200) // borrows from N. Virginia
	must("GET", path("geo")+"?region=eu-west-1", "", 200)                                // Singapore's allocation unreachable
	must("POST", "/api/network/heal", "{}", 200)
	must("GET", path("geo")+"?region=eu-west-1", "", 200)

	resp, md := f.call(t, "GET", "/api/recording/lesson", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("export: %d %s", resp.StatusCode, md)
	}
	t.Logf("exported lesson:\n%s", md)
	for _, want := range []string{
		"stock IPHONE 3\nstock IPHONE 3 on geo\n",
		"stock CASE 3 on geo split ap-southeast-1=2,eu-west-1=0,us-east-1=1\n",
		"buy geo IPHONE from ap-southeast-1 expect ok\n",
		"buy geo IPHONE from ap-southeast-1 expect unavailable\n",
		"buy geo CASE from eu-west-1 expect ok\n",
		"expect read geo IPHONE from eu-west-1 = 2\n",
	} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("exported lesson lacks %q", want)
		}
	}
	file := filepath.Join(t.TempDir(), "recorded.md")
	if err := os.WriteFile(file, md, 0o644); err != nil {
		t.Fatal(err)
	}
	fresh := startLab(t, lab.Config{LatencyScale: 0.02})
	l, errs := lessons.ParseFile(file)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var out bytes.Buffer
	if _, err := lessons.NewRunner(l, lessons.LabOf(fresh), &out).RunAll(ctx); err != nil {
		t.Fatalf("replay: %v\n%s", err, out.String())
	}
	if passed := strings.Count(out.String(), " ✓ "); passed < 6 {
		t.Errorf("replay met %d expectations, want every one of at least 6:\n%s", passed, out.String())
	}
}

// TestSaveAsLessonButton: the presenter sees the recording dot and the
// button; saving with nothing recorded says so; the audience sees neither.
func TestSaveAsLessonButton(t *testing.T) {
	b := newBrowserLab(t, Options{})
	tab := b.presenterTab(t, "")
	if vis := evalJS[bool](t, tab, `!!document.getElementById('rec-dot') && document.getElementById('rec-dot').offsetParent !== null`); !vis {
		t.Fatal("the presenter does not see the recording dot")
	}
	clickWhenClear(t, tab, "click Save as lesson", "save-lesson")
	waitJS(t, tab, "the empty recording is explained", `document.getElementById('toast').textContent`, textHas("Nothing was recorded"))
	b.mustCall(t, "PUT", "/api/stores/consensus/skus/IPHONE", `{"region":"us-east-1","quantity":1}`, 200)
	clickWhenClear(t, tab, "click Save as lesson", "save-lesson")
	waitJS(t, tab, "the lesson is saved", `document.getElementById('toast').textContent`, textHas("Saved the recording"))

	clickWhenClear(t, tab, "click Start recording", "start-recording")
	waitJS(t, tab, "recording restarts", `document.getElementById('toast').textContent`, textHas("Recording from now on"))
	if st := b.lab.Recorder().Status(); st.FromReset || st.Actions != 0 {
		t.Fatalf("after Start recording: %+v, want an empty recording not from a reset", st)
	}
	viewer := b.viewerTab(t, "/")
	if n := evalJS[int](t, viewer, `document.querySelectorAll('#rec-dot, #save-lesson, #start-recording').length`); n != 0 {
		t.Fatalf("the audience sees %d recording controls, want none", n)
	}
}

// TestClockAPI: a region's clock is set live and shown in State; bad
// input is a clear 4xx and changes nothing; reset restores true time.
func TestClockAPI(t *testing.T) {
	f := newAPI(t)
	clockOf := func(region string) float64 {
		t.Helper()
		for _, r := range f.lab.State().Regions {
			if r.Name == region {
				return r.Clock.OffsetMs
			}
		}
		t.Fatalf("no region %s", region)
		return 0
	}
	for _, c := range []struct {
		path, body string
		status     int
		says       string
	}{
		{"/api/regions/eu-west-1/clock", `{"offsetMs":3600001}`, 400, "±1 h"},
		{"/api/regions/eu-west-1/clock", `{"offsetMs":-5000000}`, 400, "±1 h"},
		{"/api/regions/eu-west-1/clock", `{"offsetMs":"soon"}`, 400, "number"},
		{"/api/regions/eu-west-1/clock", `{}`, 400, "offsetMs"},
		{"/api/regions/mars-1/clock", `{"offsetMs":5000}`, 404, "regions: us-east-1"},
	} {
		resp, body := f.call(t, "POST", c.path, c.body, nil)
		if resp.StatusCode != c.status || !strings.Contains(errorOf(t, body), c.says) {
			t.Errorf("POST %s %s: %d %s; want %d saying %q", c.path, c.body, resp.StatusCode, body, c.status, c.says)
		}
	}
	if got := clockOf("eu-west-1"); got != 0 {
		t.Fatalf("refused requests moved the clock to %g ms", got)
	}
	if resp, body := f.call(t, "POST", "/api/regions/eu-west-1/clock", `{"offsetMs":5000,"driftPpm":0}`, nil); resp.StatusCode != 200 || !strings.Contains(string(body), `"offsetMs":5000`) {
		t.Fatalf("set clock: %d %s", resp.StatusCode, body)
	}
	if got := clockOf("eu-west-1"); got != 5000 {
		t.Fatalf("eu-west-1's clock is at %g ms, want 5000", got)
	}
	if resp, _ := f.call(t, "POST", "/api/reset", "{}", nil); resp.StatusCode != 200 {
		t.Fatal("reset failed")
	}
	if got := clockOf("eu-west-1"); got != 0 {
		t.Fatalf("after reset eu-west-1's clock is at %g ms, want true time", got)
	}
}

// TestPauseAndReserveAPI: bad pauses are a clear 4xx and pause nothing; a
// reservation sells the last unit once, then answers sold out.
func TestPauseAndReserveAPI(t *testing.T) {
	f := newAPI(t)
	for _, c := range []struct {
		path, body string
		status     int
		says       string
	}{
		{"/api/regions/ap-southeast-1/pause", `{"seconds":-1}`, 400, "more than 0"},
		{"/api/regions/ap-southeast-1/pause", `{"seconds":600}`, 400, "at most 60"},
		{"/api/regions/ap-southeast-1/pause", `{}`, 400, "how long"},
		{"/api/regions/mars-1/pause", `{"seconds":8}`, 404, "regions: us-east-1"},
		{"/api/stores/replicated/skus/LAST/reserve", `{"region":"us-east-1"}`, 400, "consensus"},
		{"/api/stores/consensus/skus/LAST/reserve", `{"region":"mars-1"}`, 404, "regions: us-east-1"},
	} {
		resp, body := f.call(t, "POST", c.path, c.body, nil)
		if resp.StatusCode != c.status || !strings.Contains(errorOf(t, body), c.says) {
			t.Errorf("POST %s %s: %d %s; want %d saying %q", c.path, c.body, resp.StatusCode, body, c.status, c.says)
		}
	}
	if d := f.lab.Time().Paused("ap-southeast-1"); d != 0 {
		t.Fatalf("refused requests paused the shop for %v", d)
	}
	if resp, body := f.call(t, "PUT", "/api/stores/consensus/skus/LAST", `{"region":"us-east-1","quantity":1}`, nil); resp.StatusCode != 200 {
		t.Fatalf("stock: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{`"outcome":"ok"`, `"outcome":"sold_out"`} {
		resp, body := f.call(t, "POST", "/api/stores/consensus/skus/LAST/reserve", `{"region":"eu-west-1","fenced":true}`, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("reserve: %d %s, want %s", resp.StatusCode, body, want)
		}
	}
}

// TestClockAndPauseFromTheRegionMenu: the presenter sets Ireland's clock
// and pauses Singapore's shop from the region menu; every viewer's map
// shows the clock.
func TestClockAndPauseFromTheRegionMenu(t *testing.T) {
	b := newBrowserLab(t, Options{})
	tab := b.presenterTab(t, "")
	viewer := b.viewerTab(t, "/")
	clickWhenClear(t, tab, "open Ireland's menu", "region-eu-west-1")
	waitJS(t, tab, "the region menu opens", `document.getElementById('region-menu').hidden`, textIs("false"))
	runActions(t, tab, "set the clock",
		chromedp.SetValue(chromedp.ID("region-menu-clock"), "5"),
		chromedp.Click(chromedp.ID("region-menu-clock-apply")))
	waitUntil(t, 10*time.Second, "Ireland's clock is 5 s ahead", func() (bool, string) {
		st := b.state(t)
		return st.Regions[1].Clock.OffsetMs == 5000, fmt.Sprintf("%+v", st.Regions[1].Clock)
	})
	waitJS(t, viewer, "the viewer's map shows the clock", `document.getElementById('region-eu-west-1-clock').textContent`, textHas("clock +5.0s"))

	clickWhenClear(t, tab, "open Singapore's menu", "region-ap-southeast-1")
	waitJS(t, tab, "the region menu opens", `document.getElementById('region-menu').hidden`, textIs("false"))
	clickWhenClear(t, tab, "pause its shop", "region-menu-pause")
	waitUntil(t, 10*time.Second, "Singapore's shop is paused", func() (bool, string) {
		d := b.lab.Time().Paused("ap-southeast-1")
		return d > 0, d.String()
	})
	if d := b.lab.Time().Paused("eu-west-1"); d != 0 {
		t.Fatalf("Ireland's shop is paused too (%v)", d)
	}
}
