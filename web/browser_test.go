package web

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestBrowser drives the page in chromium against the real server and a
// real lab: what the page shows must match /api/state, clicks and keys must
// change the lab, and a viewer without the token sees everything live but
// cannot act. One lab and one browser serve every subtest; each subtest
// resets the lab first.
func TestBrowser(t *testing.T) {
	b := newBrowserLab(t, Options{JoinURL: "http://lab.example/"})
	presenter := b.presenterTab(t, "")
	watchShifts(t, presenter) // a click that misses says what moved
	viewer := b.viewerTab(t, "/")
	// A reload would clear this; the viewer test checks it is still there.
	evalJS[bool](t, viewer, `window.__caplabNoReload = true`)

	const (
		use1, euw1, apse1 = "us-east-1", "eu-west-1", "ap-southeast-1"
	)

	t.Run("map shows three regions and the one leader", func(t *testing.T) {
		b.reset(t)
		var want []string
		for _, r := range b.state(t).Regions {
			want = append(want, r.Name)
		}
		if !slices.Equal(want, []string{use1, euw1, apse1}) {
			t.Fatalf("/api/state regions %v, want the three default regions", want)
		}
		// The page and /api/state agree on exactly one leader.
		waitUntil(t, 15*time.Second, "the map shows 3 regions and the leader /api/state names", func() (bool, string) {
			st := b.state(t)
			ls := leaders(st)
			raw := evalJS[string](t, presenter, `JSON.stringify({
				regions: [...document.querySelectorAll('#regions .region')].map(g => g.dataset.region),
				leaders: [...document.querySelectorAll('#regions .region.role-leader')].map(g => g.dataset.region),
				crowns: [...document.querySelectorAll('#regions .region .role')].filter(e => e.textContent === '♛ leader').map(e => e.closest('.region').dataset.region),
			})`)
			var page struct{ Regions, Leaders, Crowns []string }
			if err := json.Unmarshal([]byte(raw), &page); err != nil {
				t.Fatalf("page answer %s: %v", raw, err)
			}
			ok := len(ls) == 1 && slices.Equal(page.Regions, want) && slices.Equal(page.Leaders, ls) && slices.Equal(page.Crowns, ls)
			return ok, "api leaders " + strings.Join(ls, ",") + "; page " + raw
		})
	})

	t.Run("clicking a link cuts it both ways and clicking again heals it", func(t *testing.T) {
		b.reset(t)
		id := linkID(use1, euw1)
		sel := `document.getElementById('` + id + `')`
		waitJS(t, presenter, "the link is up after the reset", sel+`.dataset.state`, textIs("up"))

		watchCalls(t, presenter)
		clickWhenClear(t, presenter, "click the link", id+"-label")
		waitUntil(t, 30*time.Second, "/api/state: both directions cut", func() (bool, string) {
			got := linkStates(b.state(t), use1, euw1)
			return got == use1+">"+euw1+"=cut "+euw1+">"+use1+"=cut", got + "; the page's API calls: " + evalJS[string](t, presenter, `(window.__calls || []).slice(-8).join('; ')`)
		})
		waitJS(t, presenter, "the page shows the cut",
			`[`+sel+`.dataset.state, `+sel+`.getAttribute('class'), document.getElementById('`+id+`-label').textContent,
			  document.getElementById('`+id+`-fwd').getAttribute('class'), document.getElementById('`+id+`-rev').getAttribute('class')].join('|')`,
			textIs("cut|link link-cut|✂ cut|lane lane-cut|lane lane-cut"))
		// The other links stay up.
		if got := linkStates(b.state(t), use1, apse1); got != use1+">"+apse1+"=up "+apse1+">"+use1+"=up" {
			t.Errorf("cutting %s: the other link is %s", id, got)
		}

		clickWhenClear(t, presenter, "click the cut link", id+"-label")
		waitUntil(t, 30*time.Second, "/api/state: both directions up again", func() (bool, string) {
			got := linkStates(b.state(t), use1, euw1)
			return got == use1+">"+euw1+"=up "+euw1+">"+use1+"=up", got
		})
		waitJS(t, presenter, "the page shows the link up", sel+`.dataset.state`, textIs("up"))
	})

	t.Run("the presenter switches group commit and the viewer follows", func(t *testing.T) {
		b.reset(t)
		clickWhenClear(t, presenter, "open the Stores tab", "tab-stores")
		on := b.state(t).Consensus.GroupCommit
		waitJS(t, presenter, "the box shows the lab's setting", `String(document.getElementById('group-commit').checked)`, textIs(strconv.FormatBool(on)))
		clickWhenClear(t, presenter, "click group commit", "group-commit")
		waitUntil(t, 15*time.Second, "/api/state: group commit switched", func() (bool, string) {
			got := b.state(t).Consensus.GroupCommit
			return got == !on, strconv.FormatBool(got)
		})
		waitJS(t, viewer, "the viewer's box follows", `String(document.getElementById('group-commit').checked)`, textIs(strconv.FormatBool(!on)))
		clickWhenClear(t, presenter, "click group commit again", "group-commit")
		waitUntil(t, 15*time.Second, "/api/state: group commit back", func() (bool, string) {
			got := b.state(t).Consensus.GroupCommit
			return got == on, strconv.FormatBool(got)
		})
	})

	t.Run("a viewer sees a cut live and cannot act", func(t *testing.T) {
		b.reset(t)
		id := linkID(euw1, apse1)
		vsel := `document.getElementById('` + id + `')`
		waitJS(t, viewer, "the viewer sees the link up", vsel+`.dataset.state`, textIs("up"))

		clickWhenClear(t, presenter, "the presenter clicks the link", id+"-label")
		waitJS(t, viewer, "the viewer sees the cut without a reload",
			`[`+vsel+`.dataset.state, document.getElementById('`+id+`-label').textContent, window.__caplabNoReload === true].join('|')`,
			textIs("cut|✂ cut|true"))

		if got := evalJS[string](t, viewer, `document.body.dataset.role + '|' + document.getElementById('role-badge').textContent`); !strings.HasPrefix(got, "viewer|Viewer") {
			t.Errorf("viewer page role and badge: %q", got)
		}
		// Every mutating control is disabled (the quorum fieldset disables its inputs).
		var controls struct {
			Total   int
			Enabled []string
		}
		raw := evalJS[string](t, viewer, `(() => {
			const els = [...document.querySelectorAll('[data-action], #preset-bridge, #bridge-region, #preset-heal, #reset, #stock-both, #stock-both-qty, [id^="buy-qty-"], [id^="read-consistency"], #quorum-w, #quorum-r, #quorum-apply, #quorum-preset-global, #quorum-preset-strict, #group-commit, button.buy, button.read')];
			return JSON.stringify({total: els.length, enabled: els.filter(e => !e.matches(':disabled')).map(e => e.id)});
		})()`)
		if err := json.Unmarshal([]byte(raw), &controls); err != nil {
			t.Fatal(err)
		}
		// A viewer's page has no shop buttons at all; the presets, the bridge
		// and the quorum controls are there, disabled: 3 isolate + bridge ×2 + heal + quorum 5 + group commit.
		if controls.Total < 3+2+1+5+1 || len(controls.Enabled) > 0 {
			t.Errorf("viewer controls: %d found, enabled: %v (want ≥ 12, none enabled)", controls.Total, controls.Enabled)
		}
		if n := evalJS[int](t, viewer, `document.querySelectorAll('button.buy, button.read, #reset, #stock-both').length`); n != 0 {
			t.Errorf("a viewer's page has %d shop or stock buttons, want none", n)
		}

		// Forced: enable the heal button and click it with the mouse; the
		// page sends nothing and says why.
		evalJS[bool](t, viewer, `document.querySelector('.presets').style.display = 'flex', true`) // hidden for viewers
		runActions(t, viewer, "force-click heal",
			chromedp.RemoveAttribute(chromedp.ID("preset-heal"), "disabled"),
			chromedp.Click(chromedp.ID("preset-heal")),
			chromedp.Click(chromedp.ID(id+"-label")))
		waitJS(t, viewer, "the viewer is told it only watches", `document.getElementById('toast').textContent`, textHas("only the presenter"))
		// Forced: the page's own API helper and a bare fetch get 401.
		if got := evalJS[int](t, viewer, `window.caplab.api('POST', '/api/network/heal', {}).then(r => r.status)`); got != 401 {
			t.Errorf("viewer's caplab.api POST /api/network/heal: %d, want 401", got)
		}
		if got := evalJS[int](t, viewer, `fetch('/api/stores/consensus/skus/IPHONE-15-PRO/buy', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({region: 'eu-west-1', qty: 1})}).then(r => r.status)`); got != 401 {
			t.Errorf("viewer's fetch buy: %d, want 401", got)
		}
		if got := linkStates(b.state(t), euw1, apse1); got != euw1+">"+apse1+"=cut "+apse1+">"+euw1+"=cut" {
			t.Errorf("after the viewer's attempts the link is %s, want still cut", got)
		}
		if h := b.lab.History("IPHONE-15-PRO"); len(h.Operations) != 0 {
			t.Errorf("the viewer's refused buy is in the history: %+v", h.Operations)
		}
	})

	t.Run("buying in an isolated region on the consensus store is unavailable", func(t *testing.T) {
		b.reset(t)
		b.mustCall(t, "PUT", "/api/stores/consensus/skus/IPHONE-15-PRO", `{"region":"us-east-1","quantity":5}`, 200)
		b.mustCall(t, "POST", "/api/regions/us-east-1/lead", `{}`, 200)
		watchCalls(t, presenter)
		clickWhenClear(t, presenter, "isolate ap-southeast-1", "preset-isolate-"+apse1)
		waitUntil(t, 30*time.Second, "/api/state: ap-southeast-1 cut off both ways", func() (bool, string) {
			st := b.state(t)
			a, c := linkStates(st, apse1, use1), linkStates(st, apse1, euw1)
			return a == apse1+">"+use1+"=cut "+use1+">"+apse1+"=cut" && c == apse1+">"+euw1+"=cut "+euw1+">"+apse1+"=cut",
				a + "; " + c + "; the page's toast: " + evalJS[string](t, presenter, `document.getElementById('toast').textContent`) + "; its API calls: " + evalJS[string](t, presenter, `(window.__calls || []).slice(-5).join('; ')`)
		})
		waitJS(t, presenter, "the page shows the partition", `document.getElementById('`+linkID(use1, apse1)+`').dataset.state + document.getElementById('`+linkID(euw1, apse1)+`').dataset.state`, textIs("cutcut"))

		clickWhenClear(t, presenter, "buy in Singapore", "buy-consensus-"+apse1)
		out := waitJS(t, presenter, "Singapore's shop says unavailable",
			`document.getElementById('outcome-consensus-ap-southeast-1').className + '|' + document.getElementById('outcome-consensus-ap-southeast-1').textContent + '|' + document.getElementById('outcome-consensus-ap-southeast-1').title`,
			textHas("o-unavailable"))
		for _, want := range []string{"⊘ Refused", "cannot reach a majority", "Unavailable: Singapore (ap-southeast-1) cannot reach a majority of regions", "chose consistency over availability"} {
			if !strings.Contains(out, want) {
				t.Errorf("outcome-ap-southeast-1 = %q, want it to contain %q", out, want)
			}
		}
		// The majority side still sells.
		clickWhenClear(t, presenter, "buy in N. Virginia", "buy-consensus-"+use1)
		waitJS(t, presenter, "N. Virginia's shop says ok", `document.getElementById('outcome-consensus-us-east-1').dataset.outcome + '|' + document.getElementById('outcome-consensus-us-east-1').textContent`,
			textHas("ok|✓ Sold"))
	})

	t.Run("keys: h heals every link, ? opens help, Escape closes it", func(t *testing.T) {
		b.reset(t)
		b.mustCall(t, "POST", "/api/network/partition", `{"groups":[["us-east-1","eu-west-1"],["ap-southeast-1"]]}`, 200)
		waitJS(t, presenter, "the page shows the partition", `document.getElementById('`+linkID(use1, apse1)+`').dataset.state`, textIs("cut"))

		evalJS[bool](t, presenter, `document.activeElement && document.activeElement.blur && document.activeElement.blur(), true`)
		runActions(t, presenter, "press h", chromedp.KeyEvent("h"))
		waitUntil(t, 30*time.Second, "/api/state: every link up", func() (bool, string) {
			var cut []string
			for _, l := range b.state(t).Links {
				if l.State != "up" {
					cut = append(cut, l.From+">"+l.To)
				}
			}
			return len(cut) == 0, "cut: " + strings.Join(cut, ", ")
		})
		waitJS(t, presenter, "the page shows every link up", `[...document.querySelectorAll('#links .link')].map(g => g.dataset.state).join(',')`, textIs("up,up,up"))

		runActions(t, presenter, "press ?", chromedp.KeyEvent("?"))
		waitJS(t, presenter, "help is open and has focus", `document.getElementById('help').hidden + '|' + document.activeElement.id`, textIs("false|help-close"))
		runActions(t, presenter, "press Tab twice", chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab))
		waitJS(t, presenter, "Tab stays inside help", `document.getElementById('help').contains(document.activeElement)`, textIs("true"))
		runActions(t, presenter, "press Escape", chromedp.KeyEvent(kb.Escape))
		waitJS(t, presenter, "help is closed", `document.getElementById('help').hidden`, textIs("true"))

		// A region's menu opens on its harmless Close, not on Crash.
		clickWhenClear(t, presenter, "open a region's menu", "region-"+euw1)
		waitJS(t, presenter, "the menu has focus on Close", `document.getElementById('region-menu').hidden + '|' + document.activeElement.id`, textIs("false|region-menu-close"))
		runActions(t, presenter, "press Escape", chromedp.KeyEvent(kb.Escape))
		waitJS(t, presenter, "the menu is closed", `document.getElementById('region-menu').hidden`, textIs("true"))
	})
}
