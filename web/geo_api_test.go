package web

import (
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/check"
	"caplab/lab/inventory"
)

// TestGeoAPI: store geo on the store routes, split stock, the global read,
// zones in State and as crash targets, and bad input refused with a
// sentence and nothing changed.
func TestGeoAPI(t *testing.T) {
	f := newAPI(t)
	call := func(method, path, body string, want int) []byte {
		t.Helper()
		resp, b := f.call(t, method, path, body, nil)
		if resp.StatusCode != want {
			t.Fatalf("%s %s %s: status %d, want %d; body %s", method, path, body, resp.StatusCode, want, b)
		}
		return b
	}
	base := "/api/stores/geo/skus/IPHONE-15-PRO"
	o := decodeJSON[inventory.Outcome](t, call("PUT", base, `{"region":"us-east-1","allocations":{"us-east-1":4,"eu-west-1":1,"ap-southeast-1":0}}`, 200))
	if o.Outcome != inventory.OK || o.Quantity != 5 || o.Allocations["us-east-1"].Quantity != 4 {
		t.Fatalf("stock: %+v", o)
	}
	o = decodeJSON[inventory.Outcome](t, call("POST", base+"/buy", `{"region":"eu-west-1","qty":1}`, 200))
	if o.Outcome != inventory.OK || o.Quantity != 0 {
		t.Fatalf("local buy: %+v", o)
	}
	o = decodeJSON[inventory.Outcome](t, call("POST", base+"/buy", `{"region":"ap-southeast-1","qty":2}`, 200))
	if o.Outcome != inventory.OK || !strings.Contains(o.Message, "borrowed 2") {
		t.Fatalf("borrowing buy: %+v", o)
	}
	o = decodeJSON[inventory.Outcome](t, call("GET", base+"?region=eu-west-1", "", 200))
	if o.Quantity != 2 || len(o.Allocations) != 3 || o.Allocations["us-east-1"].Revision == 0 || len(o.Unreachable) != 0 {
		t.Fatalf("read: %+v", o)
	}
	c := decodeJSON[check.Result](t, call("GET", "/api/check?store=geo&sku=IPHONE-15-PRO", "", 200))
	if !c.Linearizable || c.Oversold != 0 || c.Geo == nil || c.Geo.Conservation == nil || !c.Geo.Conservation.Conserved {
		t.Fatalf("check: %+v", c)
	}
	call("GET", "/api/check/visual?store=geo&sku=IPHONE-15-PRO", "", 200)

	st := decodeJSON[lab.State](t, call("GET", "/api/state", "", 200))
	if len(st.Regions[0].Zones) != 3 || st.Regions[0].Zones[0].Name != "us-east-1a" || len(st.ZoneLinks) != 18 {
		t.Fatalf("zones in state: %+v %d", st.Regions[0].Zones, len(st.ZoneLinks))
	}

	// Bad input: a sentence, the right status, nothing changed.
	before := len(f.lab.History("").Operations)
	for _, c := range []struct {
		method, path, body string
		want               int
		says               string
	}{
		{"PUT", base, `{"region":"us-east-1","quantity":10,"allocations":{"us-east-1":4,"eu-west-1":4}}`, 400, "add up to 8"},
		{"PUT", base, `{"region":"us-east-1","allocations":{"us-east-1":-1,"eu-west-1":4}}`, 400, "from 0"},
		{"PUT", base, `{"region":"us-east-1","allocations":{"mars-1":3}}`, 404, "mars-1"},
		{"PUT", base, `{"region":"us-east-1"}`, 400, "quantity"},
		{"PUT", "/api/stores/consensus/skus/X", `{"region":"us-east-1","allocations":{"us-east-1":3}}`, 400, "Only the geo store"},
		{"POST", "/api/regions/us-east-1z/crash", `{}`, 404, "us-east-1a"},
		{"POST", "/api/network/link", `{"from":"us-east-1a","to":"eu-west-1b","state":"cut"}`, 400, "two zones of one region"},
		{"POST", "/api/network/link", `{"from":"us-east-1a","to":"us-east-1x","state":"cut"}`, 404, "is no zone either"},
	} {
		resp, b := f.call(t, c.method, c.path, c.body, nil)
		if resp.StatusCode != c.want || !strings.Contains(errorOf(t, b), c.says) {
			t.Errorf("%s %s %s: %d %s; want %d saying %q", c.method, c.path, c.body, resp.StatusCode, b, c.want, c.says)
		}
	}
	if after := len(f.lab.History("").Operations); after != before {
		t.Fatalf("refused requests recorded %d operations", after-before)
	}
	o = decodeJSON[inventory.Outcome](t, call("GET", base+"?region=us-east-1", "", 200))
	if o.Quantity != 2 {
		t.Fatalf("refused requests changed the stock: %+v", o)
	}

	// A zone crashes and restarts through the region routes; its region keeps selling.
	st = decodeJSON[lab.State](t, call("POST", "/api/regions/us-east-1b/crash", `{}`, 200))
	if st.Regions[0].Zones[1].Up || !st.Regions[0].Up {
		t.Fatalf("zone crash: %+v", st.Regions[0])
	}
	call("POST", "/api/regions/us-east-1b/crash", `{}`, 409)
	// If the crashed zone led its group, the other two elect a leader first
	// (an election timeout); then the region sells on.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, b := f.call(t, "POST", base+"/buy", `{"region":"us-east-1","qty":1}`, nil)
		o = decodeJSON[inventory.Outcome](t, b)
		if resp.StatusCode == 200 && o.Outcome == inventory.OK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("buy with one zone down: %+v", o)
		}
	}
	call("POST", "/api/regions/us-east-1b/restart", `{}`, 200)
	call("POST", "/api/network/link", `{"from":"us-east-1a","to":"us-east-1c","state":"cut","oneWay":true}`, 200)
	st = decodeJSON[lab.State](t, call("POST", "/api/network/heal", `{}`, 200))
	for _, l := range st.ZoneLinks {
		if l.State != "up" {
			t.Fatalf("zone link after heal: %+v", l)
		}
	}
}
