package check

import (
	"testing"
	"time"

	"caplab/lab/inventory"
)

// The per-(sku, region) checker on hand-made histories: it must pass what
// one Raft group could have produced and catch what it could not.
func TestCheckGeoHistories(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	call := func(region string, kind inventory.GeoCallKind, delta, left, from, to int) inventory.GeoCall {
		c := inventory.GeoCall{SKU: "S", Region: region, Kind: kind, Delta: delta, Left: left, Call: at(from), Return: at(to)}
		if kind == inventory.GeoSet {
			c.Set, c.Delta = delta, 0
		}
		return c
	}
	unknown := func(c inventory.GeoCall) inventory.GeoCall { c.Unknown, c.Left = true, 0; return c }
	regions := []string{"us-east-1", "eu-west-1"}
	tests := []struct {
		name  string
		calls []inventory.GeoCall
		want  map[string]bool
	}{
		{"set, buys, a borrow out and in", []inventory.GeoCall{
			call("us-east-1", inventory.GeoSet, 2, 2, 0, 1),
			call("eu-west-1", inventory.GeoSet, 1, 1, 0, 1),
			call("eu-west-1", inventory.GeoBuy, -1, 0, 2, 3),
			call("us-east-1", inventory.GeoTransferOut, -1, 1, 4, 5),
			call("eu-west-1", inventory.GeoTransferIn, 0, 0, 6, 7), // credit 1 and sell 1
			call("us-east-1", inventory.GeoRead, 0, 1, 8, 9),
		}, map[string]bool{"us-east-1": true, "eu-west-1": true}},
		{"two overlapping buys both left 0 of 1 (a double sale)", []inventory.GeoCall{
			call("us-east-1", inventory.GeoSet, 1, 1, 0, 1),
			call("us-east-1", inventory.GeoBuy, -1, 0, 2, 5),
			call("us-east-1", inventory.GeoBuy, -1, 0, 3, 6),
		}, map[string]bool{"us-east-1": false, "eu-west-1": true}},
		{"a read that missed a finished buy (stale)", []inventory.GeoCall{
			call("eu-west-1", inventory.GeoSet, 3, 3, 0, 1),
			call("eu-west-1", inventory.GeoBuy, -1, 2, 2, 3),
			call("eu-west-1", inventory.GeoRead, 0, 3, 4, 5),
		}, map[string]bool{"us-east-1": true, "eu-west-1": false}},
		{"a failed buy may or may not have applied", []inventory.GeoCall{
			call("us-east-1", inventory.GeoSet, 2, 2, 0, 1),
			unknown(call("us-east-1", inventory.GeoBuy, -1, 0, 2, 3)),
			call("us-east-1", inventory.GeoRead, 0, 1, 4, 5),
			call("us-east-1", inventory.GeoRead, 0, 1, 6, 7),
		}, map[string]bool{"us-east-1": true, "eu-west-1": true}},
		{"the allocation never goes below zero", []inventory.GeoCall{
			call("us-east-1", inventory.GeoSet, 1, 1, 0, 1),
			call("us-east-1", inventory.GeoTransferOut, -2, -1, 2, 3),
		}, map[string]bool{"us-east-1": false, "eu-west-1": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := checkGeo(tt.calls, regions, time.Second)
			for r, want := range tt.want {
				if res.Regions[r] != want {
					t.Errorf("%s linearizable = %v, want %v", r, res.Regions[r], want)
				}
			}
			if all := tt.want["us-east-1"] && tt.want["eu-west-1"]; res.Linearizable != all {
				t.Errorf("Linearizable = %v, want %v", res.Linearizable, all)
			}
		})
	}
}
