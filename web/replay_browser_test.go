package web

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"caplab/lab"
	"caplab/lab/inventory"
)

// TestScrubBackToTheCut (chromium, real lab): Singapore cut off, the
// replicated store's last unit sold on both sides, the cut healed, and a
// sale refused after it. Dragging the slider back to the cut shows the
// cut links and both shops' sales on the map and the shops (the live page
// shows every link up and N. Virginia's refusal); letting go brings the
// live lab back. Then the anomaly card's button shows the moment the
// proof ends, and Back to live leaves it.
func TestScrubBackToTheCut(t *testing.T) {
	b := newBrowserLab(t, Options{})
	tab := b.presenterTab(t, "&sku=SCRUB-2")
	f := b.apiFixture
	const sku = "SCRUB-2"
	b.reset(t)
	waitJS(t, tab, "the page has the reset's history", `String(window.caplab.replay.window().fromMs)`, func(s string) bool {
		ms, _ := strconv.ParseFloat(s, 64)
		return ms >= float64(f.lab.History("").StartedAt.UnixMilli())
	})
	b.mustCall(t, "PUT", "/api/stores/replicated/skus/"+sku, `{"region":"us-east-1","quantity":1}`, 200)
	if err := f.lab.WaitConverged(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	b.mustCall(t, "POST", "/api/network/partition", `{"groups":[["us-east-1","eu-west-1"],["ap-southeast-1"]]}`, 200)
	for _, r := range []string{"ap-southeast-1", "us-east-1"} {
		b.mustCall(t, "POST", "/api/stores/replicated/skus/"+sku+"/buy", `{"region":"`+r+`","qty":1}`, 200)
	}
	var sales []inventory.Operation
	for _, o := range f.lab.History(sku).Operations {
		if o.Store == inventory.Replicated && o.Op == inventory.OpBuy && o.Outcome == inventory.OK {
			sales = append(sales, o)
		}
	}
	if len(sales) != 2 {
		t.Fatalf("%d replicated sales during the cut, want 2 (W=1: each side sells)", len(sales))
	}
	shop := func(region string) string {
		return fmt.Sprintf(`(() => { const e = document.getElementById('outcome-replicated-%s'); return e ? (e.dataset.opId || '') + ' ' + (e.dataset.outcome || '') : 'missing'; })()`, region)
	}
	for _, o := range sales { // the page shows both sales: the cut lasts while it draws them
		waitJS(t, tab, "the page shows the sale in "+o.Region, shop(o.Region), textIs(itoa(o.ID)+" ok"))
	}
	b.mustCall(t, "POST", "/api/network/heal", `{}`, 200)
	b.mustCall(t, "POST", "/api/stores/replicated/skus/"+sku+"/buy", `{"region":"us-east-1","qty":1}`, 200)
	links := `Array.from(document.querySelectorAll('#map .link')).filter((l) => l.id.includes('ap-southeast-1')).map((l) => l.dataset.state).join(',')`
	waitJS(t, tab, "live: every link to Singapore up", links, func(s string) bool { return s != "" && !strings.Contains(s, "cut") })
	waitJS(t, tab, "live: N. Virginia's shop shows the refusal", shop("us-east-1"), textHas(" sold_out"))

	// The moments that show the cut and both sales: after the second sale
	// answered, before the heal.
	var heal time.Time
	for _, ft := range f.lab.History("").Faults {
		if ft.Kind == inventory.FaultHeal {
			heal = ft.At
		}
	}
	lo := maxTime(sales[0].Return, sales[1].Return)
	from := f.lab.History("").StartedAt
	loMs, hiMs := float64(lo.Sub(from).Milliseconds()+1), float64(heal.Sub(from).Milliseconds()-1)
	if hiMs < loMs {
		t.Fatalf("the heal (%v) came before the second sale answered (%v)", heal, lo)
	}

	clickWhenClear(t, tab, "open the timeline", "tab-timeline")
	geom := evalJS[[]float64](t, tab, `(() => { const r = document.getElementById('scrub-range').getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()`)
	x, y := geom[0]+geom[2]-4, geom[1]+geom[3]/2
	held := func(p *input.DispatchMouseEventParams) { p.Button, p.Buttons = input.MouseButtonLeft, 1 }
	// Take the slider at its live end, then drag it left until it reads a
	// moment in the cut, as a person watching it would.
	runActions(t, tab, "take the slider", chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x, y, held, chromedp.ClickCount(1)))
	maxMs := evalJS[float64](t, tab, `Number(document.getElementById('scrub-range').max)`)
	if maxMs < hiMs {
		t.Fatalf("the slider reaches %g ms after the reset, before the heal at %g ms", maxMs, hiMs)
	}
	x = geom[0] + geom[2]*(loMs+hiMs)/2/maxMs
	var value float64
	for i := 0; ; i++ {
		runActions(t, tab, "drag the slider", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y, held))
		value = evalJS[float64](t, tab, `Number(document.getElementById('scrub-range').value)`)
		if value >= loMs && value <= hiMs {
			break
		}
		if i == 200 {
			t.Fatalf("the slider reads %g ms; the cut with both sales is %g–%g ms (of %g) after the reset", value, loMs, hiMs, maxMs)
		}
		if value < loMs {
			x += 0.5
		} else {
			x -= 0.5
		}
	}
	waitJS(t, tab, "held at the cut: every link to Singapore cut", links, func(s string) bool { return s != "" && !strings.Contains(s, "up") })
	for _, o := range sales {
		waitJS(t, tab, "held at the cut: the sale in "+o.Region, shop(o.Region), textIs(itoa(o.ID)+" ok"))
	}
	if got := evalJS[string](t, tab, `document.body.classList.contains('past') + ' ' + document.getElementById('past-banner').hidden + ' ' + document.getElementById('scrub-when').textContent`); !strings.HasPrefix(got, "true false ") || !strings.Contains(got, "ago") {
		t.Errorf("held at the cut: body.past, banner hidden, slider label = %q; want the stage marked as the past and the moment named", got)
	}

	runActions(t, tab, "let go", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x, y, held, chromedp.ClickCount(1)))
	waitJS(t, tab, "let go: every link to Singapore up again", links, func(s string) bool { return s != "" && !strings.Contains(s, "cut") })
	waitJS(t, tab, "let go: N. Virginia's live refusal", shop("us-east-1"), textHas(" sold_out"))
	waitJS(t, tab, "let go: live", `document.body.classList.contains('past') + ' ' + document.getElementById('scrub-when').textContent`, textIs("false live"))

	// The anomaly card's button shows its moment, until Back to live.
	clickWhenClear(t, tab, "open the checker", "tab-checker")
	b.mustCall(t, "POST", "/api/stores/replicated/skus/"+sku+"/buy", `{"region":"eu-west-1","qty":1}`, 200) // the verdict follows operations
	clickWhenClear(t, tab, "show the proof's moment", "anomaly-replicated-moment")
	waitJS(t, tab, "the card's moment: every link to Singapore cut", links, func(s string) bool { return s != "" && !strings.Contains(s, "up") })
	clickWhenClear(t, tab, "back to live", "past-live")
	waitJS(t, tab, "back to live: links up", links, func(s string) bool { return s != "" && !strings.Contains(s, "cut") })
}

// TestClassReplayReachesViewers (chromium, real lab): the presenter's
// "replay the last 2 minutes at 4×" plays on a viewer's page too — the
// stage shows the past, the captions tell the story in the sentences the
// live page said (the partition's, each sale's), and the page is live
// again at the end. Each page records what it showed (a MutationObserver),
// so a short replay cannot end between two looks.
func TestClassReplayReachesViewers(t *testing.T) {
	b := newBrowserLab(t, Options{})
	pres := b.presenterTab(t, "&sku=REPLAY-1")
	f := b.apiFixture
	const sku = "REPLAY-1"
	b.reset(t)
	b.mustCall(t, "PUT", "/api/stores/replicated/skus/"+sku, `{"region":"us-east-1","quantity":1}`, 200)
	if err := f.lab.WaitConverged(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	b.mustCall(t, "POST", "/api/network/partition", `{"groups":[["us-east-1","eu-west-1"],["ap-southeast-1"]]}`, 200)
	b.mustCall(t, "POST", "/api/stores/replicated/skus/"+sku+"/buy", `{"region":"ap-southeast-1","qty":1}`, 200)
	b.mustCall(t, "POST", "/api/network/heal", `{}`, 200)
	var cut string
	for _, ft := range f.lab.History("").Faults {
		if ft.Kind == inventory.FaultPartition {
			cut = lab.SayFault(ft)
		}
	}
	if cut == "" {
		t.Fatal("no partition recorded")
	}

	viewer := b.viewerTab(t, "/?sku="+sku)
	record := `(() => {
		window.__seen = { replaying: false, past: false, captions: [] };
		const cap = document.getElementById('stage-caption');
		new MutationObserver(() => {
			if (document.body.classList.contains('replaying')) window.__seen.replaying = true;
			if (document.body.classList.contains('past')) window.__seen.past = true;
		}).observe(document.body, { attributes: true, attributeFilter: ['class'] });
		new MutationObserver(() => { if (cap.textContent) window.__seen.captions.push(cap.textContent); }).observe(cap, { childList: true, subtree: true, characterData: true });
		return true;
	})()`
	for _, tab := range []context.Context{pres, viewer} {
		evalJS[bool](t, tab, record)
	}
	clickWhenClear(t, pres, "open the timeline", "tab-timeline")
	clickWhenClear(t, pres, "replay the last 2 minutes for everyone", "replay-class")
	for name, tab := range map[string]context.Context{"presenter": pres, "viewer": viewer} {
		waitJS(t, tab, name+": the replay played and ended live", `(() => { const s = window.__seen, c = document.body.classList;
			return s.replaying + ' ' + s.past + ' ' + (c.contains('replaying') || c.contains('past')); })()`, textIs("true true false"))
		captions := evalJS[string](t, tab, `window.__seen.captions.join(' | ')`)
		for _, want := range []string{cut, lab.CityName("ap-southeast-1") + " buys on the replicated store"} {
			if !strings.Contains(captions, want) {
				t.Errorf("%s: the replay's captions lack %q:\n%s", name, want, captions)
			}
		}
	}
}
