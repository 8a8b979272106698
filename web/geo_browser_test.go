package web

import (
	"testing"
	"time"
)

// TestGeoInBrowser: the store switch offers geo, a buy with geo selected
// goes to the geo store, and each region shows its zones, whose marks
// follow a zone crash.
func TestGeoInBrowser(t *testing.T) {
	b := newBrowserLab(t, Options{JoinURL: "http://lab.example/"})
	tab := b.presenterTab(t, "")
	b.reset(t)
	b.mustCall(t, "PUT", "/api/stores/geo/skus/IPHONE-15-PRO", `{"region":"us-east-1","quantity":3}`, 200)
	waitJS(t, tab, "nine zone marks on the map", `String(document.querySelectorAll('#map .zone').length)`, textIs("9"))
	waitJS(t, tab, "one leader mark per region", `String(document.querySelectorAll('#map .zone.zone-leader').length)`, textIs("3"))
	evalJS[bool](t, tab, `(document.getElementById('store-geo').click(), true)`)
	evalJS[bool](t, tab, `(document.getElementById('buy-eu-west-1').click(), true)`)
	waitUntil(t, 10*time.Second, "the buy reached the geo store", func() (bool, string) {
		ops := b.lab.History("IPHONE-15-PRO").Operations
		for _, o := range ops {
			if o.Op == "buy" && o.Store == "geo" && o.Region == "eu-west-1" && o.Outcome == "ok" {
				return true, ""
			}
		}
		return false, "no ok geo buy from eu-west-1 yet"
	})
	b.mustCall(t, "POST", "/api/regions/us-east-1c/crash", `{}`, 200)
	waitJS(t, tab, "the crashed zone's mark", `document.getElementById('zone-us-east-1c').getAttribute('class')`, textIs("zone zone-crashed"))
	b.mustCall(t, "POST", "/api/regions/us-east-1c/restart", `{}`, 200)
}
