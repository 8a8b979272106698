package web

import (
	"strings"
	"testing"
	"time"
)

// TestGeoInBrowser: the one-screen page has a geo column; a click on a
// region's geo Buy goes to the geo store and its answer shows in that
// region's geo cell (and in no other store's); each region shows its
// zones, one leader per regional group, and a crashed zone is marked.
func TestGeoInBrowser(t *testing.T) {
	b := newBrowserLab(t, Options{JoinURL: "http://lab.example/"})
	tab := b.presenterTab(t, "")
	b.reset(t)
	b.mustCall(t, "PUT", "/api/stores/geo/skus/IPHONE-15-PRO", `{"region":"us-east-1","quantity":3}`, 200)
	waitJS(t, tab, "nine zone marks on the map", `String(document.querySelectorAll('#map .zone').length)`, textIs("9"))
	waitJS(t, tab, "one leader mark per region", `String(document.querySelectorAll('#map .zone.zone-leader').length)`, textIs("3"))
	waitJS(t, tab, "a geo column in the shops", `document.getElementById('store-head-geo')?.textContent || ''`, textHas("Geo"))

	watchCalls(t, tab)
	clickWhenClear(t, tab, "click the geo Buy in Ireland", "buy-geo-eu-west-1")
	waitJS(t, tab, "the geo cell shows the sale", `(document.getElementById('outcome-geo-eu-west-1').dataset.outcome || '') + ' (the page API calls: ' + (window.__calls || []).slice(-4).join('; ') + ')'`, textHas("ok ("))
	if got := evalJS[string](t, tab, `document.getElementById('outcome-geo-eu-west-1').textContent`); !containsAll(got, "Sold", "eu-west-1's zones") {
		t.Errorf("the geo cell reads %q, want the sale, committed by Ireland's zones", got)
	}
	for _, other := range []string{"consensus", "replicated"} {
		if got := evalJS[string](t, tab, `document.getElementById('outcome-`+other+`-eu-west-1').dataset.outcome || 'none'`); got != "none" {
			t.Errorf("a geo buy answered in the %s column too: %s", other, got)
		}
	}
	waitUntil(t, 10*time.Second, "the buy reached the geo store", func() (bool, string) {
		for _, o := range b.lab.History("IPHONE-15-PRO").Operations {
			if o.Op == "buy" && o.Store == "geo" && o.Region == "eu-west-1" && o.Outcome == "ok" {
				return true, ""
			}
		}
		return false, "no ok geo buy from eu-west-1 yet"
	})

	b.mustCall(t, "POST", "/api/regions/us-east-1c/crash", `{}`, 200)
	waitJS(t, tab, "the crashed zone's mark", `document.getElementById('zone-us-east-1c').getAttribute('class')`, textIs("zone zone-crashed"))
	waitJS(t, tab, "still one leader mark per region", `String(document.querySelectorAll('#map .zone.zone-leader').length)`, textIs("3"))
	b.mustCall(t, "POST", "/api/regions/us-east-1c/restart", `{}`, 200)
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
