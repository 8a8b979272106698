package web

import (
	"context"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// streamControl wraps the page's WebSocket before the page's own scripts
// run, so that a test can make the page miss frames (window.__deaf; the
// types of the frames it missed go to window.__missed), keep
// it from reconnecting (window.__hold: it dials a path that is not there)
// and hand its handler a frame as if the server had sent it
// (window.__deliver).
const streamControl = `(() => {
	const WS = window.WebSocket;
	window.__sockets = []; window.__deaf = false; window.__hold = false; window.__missed = [];
	function Wrapped(url, protocols) {
		const s = new WS(window.__hold ? url.replace(/\/ws$/, '/ws-held') : url, protocols);
		let handler = null;
		Object.defineProperty(s, 'onmessage', { get: () => handler, set: (fn) => { handler = fn; } });
		s.addEventListener('message', (ev) => {
			if (window.__deaf) window.__missed.push(JSON.parse(ev.data).type);
			else if (handler) handler(ev);
		});
		window.__sockets.push(s);
		return s;
	}
	Wrapped.prototype = WS.prototype;
	for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Wrapped[k] = WS[k];
	window.WebSocket = Wrapped;
	window.__deliver = (frame) => { const s = window.__sockets[window.__sockets.length - 1]; s.onmessage({ data: JSON.stringify(frame) }); return true; };
})()`

// TestPageCatchesUpOnWhatItMissed: the page shows what happened while its
// stream could not bring it — after a resync frame (the server's stream
// fell behind the lab and lost events) and after a reconnect — by reading
// the history again. A viewer's page, so nothing it does changes the lab.
func TestPageCatchesUpOnWhatItMissed(t *testing.T) {
	b := newBrowserLab(t, Options{})
	b.reset(t)
	const sku = "IPHONE-15-PRO"
	b.mustCall(t, "PUT", "/api/stores/consensus/skus/"+sku, `{"region":"us-east-1","quantity":5}`, 200)

	tab := b.newTab(t)
	runActions(t, tab, "wrap the page's WebSocket", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: streamControl})
		return err
	}))
	b.open(t, tab, "/")
	outcome := func(region string) string {
		return `(document.getElementById('outcome-consensus-` + region + `').dataset.outcome || 'none')`
	}

	// Frames lost: the page misses a buy's frame, then a resync arrives.
	evalJS[bool](t, tab, `(window.__deaf = true)`)
	b.mustCall(t, "POST", "/api/stores/consensus/skus/"+sku+"/buy", `{"region":"eu-west-1","qty":1}`, 200)
	waitJS(t, tab, "the buy's frame reaches the page and is held back", `window.__missed.includes('operation')`, textIs("true"))
	if got := evalJS[string](t, tab, outcome("eu-west-1")); got != "none" {
		t.Fatalf("a deaf page shows the buy (%q): the test's frame filter does not work", got)
	}
	evalJS[bool](t, tab, `(window.__deaf = false, window.__deliver({type: 'resync', missed: 1}))`)
	waitJS(t, tab, "after a resync frame the page shows the buy it missed", outcome("eu-west-1"), textIs("ok"))

	// A reconnect: the stream is down while a buy happens.
	evalJS[bool](t, tab, `(window.__hold = true, window.__sockets[window.__sockets.length - 1].close(), true)`)
	waitJS(t, tab, "the page knows its stream is down", `document.getElementById('conn-status').textContent`, textHas("reconnecting"))
	// The page has no stream now (every redial goes to a path that is not
	// there), so what it shows right after the buy is all it will show.
	b.mustCall(t, "POST", "/api/stores/consensus/skus/"+sku+"/buy", `{"region":"ap-southeast-1","qty":1}`, 200)
	if got := evalJS[string](t, tab, outcome("ap-southeast-1")); got != "none" {
		t.Fatalf("a disconnected page shows the buy (%q): the test's hold does not work", got)
	}
	evalJS[bool](t, tab, `(window.__hold = false, true)`)
	waitJS(t, tab, "after the reconnect the page shows the buy it missed", outcome("ap-southeast-1"), textIs("ok"))
}
