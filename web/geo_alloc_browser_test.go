package web

import (
	"strings"
	"testing"
)

// TestGeoAllocationBars: each region's geo shop cell shows its allocation
// (bar + number) after geo buys; during a partition the regions the last
// buyer cannot reach are highlighted as stranded, and after the heal they
// are not. The bars' fetches are not operations: the history holds only
// the stock and the buys. Filling the bars in, marking them and blanking
// them on a reset moves nothing on the stage. Bad input to the allocations
// route is refused.
func TestGeoAllocationBars(t *testing.T) {
	b := newBrowserLab(t, Options{JoinURL: "http://lab.example/"})
	tab := b.presenterTab(t, "")
	watchShifts(t, tab)
	b.reset(t)
	const sku = "IPHONE-15-PRO"
	b.mustCall(t, "PUT", "/api/stores/geo/skus/"+sku, `{"region":"us-east-1","quantity":12,"allocations":{"us-east-1":4,"eu-west-1":4,"ap-southeast-1":4}}`, 200)
	b.mustCall(t, "POST", "/api/stores/geo/skus/"+sku+"/buy", `{"region":"ap-southeast-1","qty":1}`, 200)
	alloc := func(region string) string {
		return `(() => { const e = document.querySelector('[data-testid="geo-alloc-` + region + `"]'); ` +
			`return e ? e.dataset.quantity + '/' + e.dataset.stranded + '/' + e.classList.contains('stranded') + '/' + e.closest('.shop-cell').classList.contains('store-geo') : 'none'; })()`
	}
	waitJS(t, tab, "Singapore's geo cell shows its 3 left", alloc("ap-southeast-1"), textIs("3/0/false/true"))
	waitJS(t, tab, "Virginia's geo cell shows its 4", alloc("us-east-1"), textIs("4/0/false/true"))
	if w := evalJS[string](t, tab, `document.querySelector('[data-testid="geo-alloc-us-east-1"] .geo-fill').style.width`); w != "36%" {
		t.Errorf("Virginia's bar: width %q, want 36%% (4 of 11 units)", w)
	}

	b.mustCall(t, "POST", "/api/network/partition", `{"groups":[["us-east-1","eu-west-1"],["ap-southeast-1"]]}`, 200)
	b.mustCall(t, "POST", "/api/stores/geo/skus/"+sku+"/buy", `{"region":"ap-southeast-1","qty":1}`, 200)
	waitJS(t, tab, "Virginia's units stranded from Singapore", alloc("us-east-1"), textIs("4/4/true/true"))
	waitJS(t, tab, "Ireland's units stranded from Singapore", alloc("eu-west-1"), textIs("4/4/true/true"))
	waitJS(t, tab, "Singapore keeps selling its own", alloc("ap-southeast-1"), textIs("2/0/false/true"))
	if txt := evalJS[string](t, tab, `document.querySelector('[data-testid="geo-alloc-eu-west-1"]').textContent`); !strings.Contains(txt, "4 stranded") {
		t.Errorf("Ireland's geo cell says %q, want it to name 4 stranded units", txt)
	}

	b.mustCall(t, "POST", "/api/network/heal", `{}`, 200)
	waitJS(t, tab, "after the heal nothing is stranded", alloc("us-east-1"), textIs("4/0/false/true"))

	var stocks, buys, other int
	for _, o := range b.lab.History(sku).Operations {
		switch {
		case o.Store == "geo" && o.Op == "stock":
			stocks++
		case o.Store == "geo" && o.Op == "buy":
			buys++
		default:
			other++
		}
	}
	if stocks != 1 || buys != 2 || other != 0 {
		t.Errorf("history: %d stock, %d buys, %d other operations; want 1, 2, 0 (the bars' fetches are no operations)", stocks, buys, other)
	}

	// Filling the bars in, blanking them on a reset and marking them
	// stranded moved nothing on the stage (a bar added late pushed the map
	// down under a presenter's pointer: a click on a link hit the sea).
	b.reset(t)
	b.mustCall(t, "PUT", "/api/stores/geo/skus/"+sku, `{"region":"us-east-1","quantity":3}`, 200)
	waitJS(t, tab, "after a reset and a new stock the bars show it", alloc("eu-west-1"), textIs("1/0/false/true"))
	if shifts := stageShifts(t, tab); shifts != "" {
		t.Errorf("the stage moved while the page was open:\n%s", shifts)
	}

	for _, c := range []struct {
		path string
		want int
		says string
	}{
		{"/api/stores/consensus/skus/" + sku + "/allocations?region=us-east-1", 400, "Only the geo store"},
		{"/api/stores/geo/skus/" + sku + "/allocations?region=mars-1", 404, "mars-1"},
		{"/api/stores/geo/skus/" + sku + "/allocations", 400, "region"},
		{"/api/stores/geo/skus/bad%20sku/allocations?region=us-east-1", 400, "SKU"},
	} {
		resp, body := b.call(t, "GET", c.path, "", map[string]string{"Authorization": ""}) // watching needs no token
		if resp.StatusCode != c.want || !strings.Contains(string(body), c.says) {
			t.Errorf("GET %s: %d %s, want %d naming %q", c.path, resp.StatusCode, body, c.want, c.says)
		}
	}
}
