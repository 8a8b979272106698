package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"caplab/lab"
)

// The browser tests drive Debian's chromium against the real server: a real
// lab (real etcd) behind Server.Handler on an httptest server. One lab and
// one browser serve all subtests of a test; subtests reset the lab first.

// chromiumPath finds Debian's chromium, or skips the test loudly.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	const msg = "SKIPPING BROWSER TESTS: chromium not found; apt-get install chromium"
	fmt.Fprintln(os.Stderr, "\n*** "+msg+" ***")
	t.Skip(msg)
	return ""
}

// browserLab is a real lab, its server, and one headless chromium.
type browserLab struct {
	*apiFixture
	url     string          // http://127.0.0.1:port
	browser context.Context // the browser's first tab; parent of every other tab
}

// newBrowserLab starts a lab (latency scale 0.05, fast Raft timing), a
// Server with opts (Token and Logger filled in when empty), an httptest
// server and chromium. Cleanup closes the browser, then the HTTP server,
// the Server and the lab.
func newBrowserLab(t *testing.T, opts Options) *browserLab {
	t.Helper()
	exe := chromiumPath(t)

	l := startLab(t, lab.Config{LatencyScale: 0.05})
	if opts.Token == "" {
		opts.Token = testToken
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	s := New(l, opts)
	t.Cleanup(s.Close)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	browser := startChromium(t, exe, 1280, 720)
	return &browserLab{apiFixture: &apiFixture{lab: l, srv: srv, s: s}, url: srv.URL, browser: browser}
}

// presenterTab is the browser's first tab, opened with the lab token: the
// server sets the cookie and redirects to the page.
func (b *browserLab) presenterTab(t *testing.T, query string) context.Context {
	t.Helper()
	b.open(t, b.browser, "/?token="+testToken+query)
	if role := evalJS[string](t, b.browser, `document.body.dataset.role`); role != "presenter" {
		t.Fatalf("opened with the token, the page says role %q, want presenter", role)
	}
	return b.browser
}

// viewerTab opens the page in a new browser context (its own cookie jar,
// no token). The tab closes when the test ends.
func (b *browserLab) viewerTab(t *testing.T, path string) context.Context {
	t.Helper()
	tab := b.newTab(t)
	b.open(t, tab, path)
	return tab
}

// newTab opens an empty tab in a new browser context (its own cookie jar);
// it closes when the test ends.
func (b *browserLab) newTab(t *testing.T) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(b.browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil { // opens the tab, tied to tab
		t.Fatalf("open a tab: %v", err)
	}
	return tab
}

// open navigates tab to path and waits until the stream is live.
func (b *browserLab) open(t *testing.T, tab context.Context, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(b.url+path)); err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	waitJS(t, tab, "the page's stream is live", `document.getElementById('conn-status').textContent`, textIs("live"))
}

// reset puts the lab back to fresh (links up, stores empty, history
// cleared) and waits until the presenter page, if given, shows it.
func (b *browserLab) reset(t *testing.T) {
	t.Helper()
	if resp, body := b.call(t, "POST", "/api/reset", "{}", nil); resp.StatusCode != 200 {
		t.Fatalf("reset: %d %s", resp.StatusCode, body)
	}
}

// state is GET /api/state.
func (b *browserLab) state(t *testing.T) lab.State {
	t.Helper()
	resp, body := b.call(t, "GET", "/api/state", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/state: %d %s", resp.StatusCode, body)
	}
	var st lab.State
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("GET /api/state: %v in %s", err, body)
	}
	return st
}

// mustCall sends a request with the token and fails unless the status is want.
func (b *browserLab) mustCall(t *testing.T, method, path, body string, want int) []byte {
	t.Helper()
	resp, out := b.call(t, method, path, body, nil)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, out, want)
	}
	return out
}

// linkStates is "a>b=cut b>a=cut" for the ordered pairs (a,b) and (b,a).
func linkStates(st lab.State, a, b string) string {
	var fwd, rev string
	for _, l := range st.Links {
		switch {
		case l.From == a && l.To == b:
			fwd = l.State
		case l.From == b && l.To == a:
			rev = l.State
		}
	}
	return a + ">" + b + "=" + fwd + " " + b + ">" + a + "=" + rev
}

// leaders names the regions whose member says it leads.
func leaders(st lab.State) []string {
	var out []string
	for _, r := range st.Regions {
		if r.Consensus.Role == "leader" {
			out = append(out, r.Name)
		}
	}
	return out
}

// waitUntil polls cond until it holds or the deadline passes, then fails
// with what cond last reported.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, got := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s: last seen %s", timeout, what, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// evalJS evaluates expr in tab (a Promise is awaited) and decodes the result.
func evalJS[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls the JavaScript expression expr (a string) in tab until match
// accepts it; it returns the last value.
func waitJS(t *testing.T, tab context.Context, what, expr string, match func(string) bool) string {
	t.Helper()
	var got string
	waitUntil(t, 15*time.Second, what, func() (bool, string) {
		got = evalJS[string](t, tab, "String("+expr+")")
		return match(got), fmt.Sprintf("%q", got)
	})
	return got
}

func textIs(want string) func(string) bool { return func(s string) bool { return s == want } }
func textHas(sub string) func(string) bool {
	return func(s string) bool { return strings.Contains(s, sub) }
}

// runActions runs actions in tab with a deadline.
func runActions(t *testing.T, tab context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// startChromium starts a headless Debian chromium for one test (closed at
// its end) with the flags this machine's closed network needs, and returns
// its browser context. A browser that dies before it listens is started
// once more, the first failure logged: on a busy machine about one start in
// a hundred ended so, with nothing in its output but crashpad's.
func startChromium(t *testing.T, exe string, width, height int) context.Context {
	t.Helper()
	var err error
	for try := 1; try <= 2; try++ {
		var browser context.Context
		if browser, err = tryChromium(t, exe, width, height); err == nil {
			return browser
		}
		t.Logf("start chromium (%s), try %d of 2: %v", exe, try, err)
	}
	t.Fatalf("start chromium (%s): %v", exe, err)
	return nil
}

func tryChromium(t *testing.T, exe string, width, height int) (context.Context, error) {
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		// A browser that fails to start says why on stderr, which chromedp
		// shows, instead of only handing a crash to crashpad.
		chromedp.Flag("enable-logging", "stderr"),
		chromedp.Flag("disable-crash-reporter", true),
		chromedp.Flag("disable-breakpad", true),
	)
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(string, ...any) {}))
	// The first Do starts the browser and ties it to the context it gets,
	// so it gets browser itself, not a context with a deadline.
	if err := chromedp.Do(browser); err != nil {
		cancelBrowser()
		cancelAlloc()
		return nil, err
	}
	t.Cleanup(cancelAlloc)   // waits for the browser process to exit
	t.Cleanup(cancelBrowser) // runs first: closes the browser
	return browser, nil
}

// clickWhenClear clicks the element with id as a person would, once it can
// take the click: enabled, in the same place for 100 ms
// and not covered (a click lands at coordinates — on a busy machine frames
// still laying the page out, or a toast or menu over the button, would take
// a click sent at once). The click must reach the element: if the page
// moved under the pointer the test fails there, naming where the click
// landed and where the element is now (and the stage's layout shifts, if
// watchShifts watches them). A failure names what covers the element, and
// the page's toast.
func clickWhenClear(t *testing.T, tab context.Context, what, id string) {
	t.Helper()
	probe := fmt.Sprintf(`(() => {
		const el = document.getElementById(%q);
		if (!el) return 'missing';
		const r = el.getBoundingClientRect();
		if (el.disabled) return 'disabled';
		if (r.width === 0 || r.height === 0) return 'not shown';
		const cx = r.x + r.width / 2, cy = r.y + r.height / 2;
		if (cx < 0 || cy < 0 || cx >= innerWidth || cy >= innerHeight) {
			// Scroll it into view here and judge it there, rather than let the
			// click scroll and aim in one go: a click that did so landed on the
			// map (TestScrubBackToTheCut, #past-live off screen after a scroll).
			el.scrollIntoView({block: 'center', inline: 'center', behavior: 'instant'});
			return 'off screen, scrolled to it from ' + [r.x, r.y].join(',');
		}
		const e = document.elementFromPoint(cx, cy);
		if (!e || !(el === e || el.contains(e))) {
			return 'covered by ' + (e ? (e.id || e.className.baseVal || e.className || e.tagName) : 'nothing');
		}
		return 'clear ' + [r.x, r.y, r.width, r.height].join(',');
	})()`, id)
	last, since := "", time.Now()
	waitUntil(t, 15*time.Second, what+": #"+id+" can take a click", func() (bool, string) {
		got := evalJS[string](t, tab, probe)
		if got != last {
			last, since = got, time.Now()
			return false, got
		}
		return strings.HasPrefix(got, "clear ") && time.Since(since) >= 100*time.Millisecond,
			got + "; toast: " + evalJS[string](t, tab, `(document.getElementById('toast') || {}).textContent || ''`)
	})
	evalJS[bool](t, tab, fmt.Sprintf(`(() => {
		window.__landed = '';
		window.addEventListener('click', (e) => {
			const el = document.getElementById(%q), r = el ? el.getBoundingClientRect() : null;
			window.__landed = (el && (el === e.target || el.contains(e.target))) ? 'on it' :
				'on ' + (e.target.id || (e.target.className && e.target.className.baseVal) || e.target.className || e.target.tagName) +
				' at ' + [e.clientX, e.clientY].join(',') + ', the element now at ' + (r ? [r.x, r.y, r.width, r.height].join(',') : 'nowhere');
		}, {capture: true, once: true});
		return true;
	})()`, id))
	runActions(t, tab, what, chromedp.Click(chromedp.ID(id)))
	waitUntil(t, 5*time.Second, what+": the click reaches #"+id, func() (bool, string) {
		got := evalJS[string](t, tab, `window.__landed`)
		return got == "on it", "the page's click landed " + got + "; at the last look it was " + last + "; the stage's shifts: " + stageShifts(t, tab)
	})
}

// watchCalls makes the page in tab log its API calls (method, path, status,
// ms) and the mouse events it gets (type, target, where) in window.__calls,
// for a failure to say what the page was sent, what it asked and what it was
// answered; a toast says it only for a few seconds.
func watchCalls(t *testing.T, tab context.Context) {
	t.Helper()
	evalJS[bool](t, tab, `(() => {
		if (window.__calls) return true;
		window.__calls = [];
		const desc = (e) => !e ? 'nothing' : (e.id ? '#' + e.id : (e.tagName || '') + '.' + ((e.className && e.className.baseVal) || e.className || ''));
		for (const type of ['mousedown', 'mouseup', 'click']) {
			window.addEventListener(type, (e) => window.__calls.push(type + ' on ' + desc(e.target) + ' at ' + Math.round(e.clientX) + ',' + Math.round(e.clientY) +
				(e.target.closest && e.target.closest('.link') ? ' (in ' + desc(e.target.closest('.link')) + ')' : '')), true);
		}
		const f = window.fetch;
		window.fetch = async (...a) => {
			const t0 = performance.now(), what = ((a[1] && a[1].method) || 'GET') + ' ' + a[0];
			try {
				const r = await f(...a);
				window.__calls.push(what + ' → ' + r.status + ' in ' + Math.round(performance.now() - t0) + ' ms');
				return r;
			} catch (e) {
				window.__calls.push(what + ' → ' + e);
				throw e;
			}
		};
		return true;
	})()`)
}

// watchShifts makes the page in tab keep the layout shifts (the browser's
// layout-shift entries, from the page's start) of the stage: the map and
// the shops, where a presenter points and clicks.
func watchShifts(t *testing.T, tab context.Context) {
	t.Helper()
	evalJS[bool](t, tab, `(() => {
		window.__shifts = [];
		const rect = (r) => [r.x, r.y, r.width, r.height].map(Math.round).join(',');
		new PerformanceObserver((list) => {
			for (const e of list.getEntries()) {
				const moved = e.sources.filter((s) => s.node && s.node.closest && s.node.closest('.map-card, #shops'));
				if (moved.length) window.__shifts.push(Math.round(e.startTime) + ' ms: ' + moved.map((s) =>
					(s.node.id || s.node.nodeName + '.' + s.node.className) + ' ' + rect(s.previousRect) + ' → ' + rect(s.currentRect)).join('; '));
			}
		}).observe({type: 'layout-shift', buffered: true});
		return true;
	})()`)
}

// stageShifts is what watchShifts saw move, one line per shift, or "".
func stageShifts(t *testing.T, tab context.Context) string {
	t.Helper()
	return evalJS[string](t, tab, `(window.__shifts || []).join('\n')`)
}
