package lessons

import (
	"errors"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// recording builds a Recording from actions a second apart.
func recording(actions ...lab.RecordedAction) lab.Recording {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for i := range actions {
		if actions[i].At.IsZero() {
			actions[i].At = t0.Add(time.Duration(i+1) * time.Second)
		}
		actions[i].Done = actions[i].At.Add(10 * time.Millisecond)
		actions[i].Seq = i + 1
	}
	return lab.Recording{
		Started: t0, FromReset: true, Regions: DefaultRegions(),
		Cities:       map[string]string{"us-east-1": "N. Virginia", "eu-west-1": "Ireland", "ap-southeast-1": "Singapore"},
		LatencyScale: 1, BreakerCooldown: 5 * time.Second, BreakerTrips: 3,
		Quorum: inventory.QuorumState{N: 3, W: 1, R: 1}, Actions: actions,
	}
}

func op(store inventory.Store, kind inventory.Op, region string, outcome inventory.Kind, quantity int) lab.RecordedAction {
	k := map[inventory.Op]lab.ActionKind{inventory.OpStock: lab.ActStock, inventory.OpBuy: lab.ActBuy, inventory.OpRead: lab.ActRead}[kind]
	o := &inventory.Operation{Store: store, SKU: "X", Op: kind, Region: region, Outcome: outcome, Quantity: quantity, Qty: 1}
	if kind == inventory.OpStock {
		o.Qty = quantity
	}
	return lab.RecordedAction{Kind: k, Regions: []string{region}, Op: o}
}

// render records, then parses the result: every export must be a valid lesson.
func render(t *testing.T, rec lab.Recording) string {
	t.Helper()
	md, err := Record(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, errs := Parse("rec.md", md); len(errs) > 0 {
		t.Fatalf("export does not parse: %v\n%s", errs, md)
	}
	return string(md)
}

func TestRecordNothing(t *testing.T) {
	_, err := Record(recording())
	if !errors.Is(err, ErrNothingRecorded) || !errors.Is(err, inventory.ErrConflict) || !strings.HasPrefix(err.Error(), "Nothing was recorded") {
		t.Fatalf("err = %v, want ErrNothingRecorded (a conflict) with a sentence", err)
	}
}

func TestRecordRules(t *testing.T) {
	cases := []struct {
		name        string
		actions     []lab.RecordedAction
		want, avoid []string
	}{
		{
			name: "an unavailable that raced an election is left out, and so are the checks",
			actions: []lab.RecordedAction{
				op(inventory.Consensus, inventory.OpStock, "us-east-1", inventory.OK, 1),
				{Kind: lab.ActPartition, Groups: [][]string{{"us-east-1", "eu-west-1"}, {"ap-southeast-1"}}},
				op(inventory.Consensus, inventory.OpBuy, "eu-west-1", inventory.Unavailable, 0),
				op(inventory.Consensus, inventory.OpBuy, "ap-southeast-1", inventory.Unavailable, 0),
			},
			want:  []string{"## Singapore is cut off", "# left out: buy consensus X from eu-west-1 answered unavailable while the majority was still electing", "buy consensus X from ap-southeast-1 expect unavailable"},
			avoid: []string{"expect check"},
		},
		{
			name: "a one-way cut and a crash name what happened",
			actions: []lab.RecordedAction{
				{Kind: lab.ActCut, Regions: []string{"us-east-1", "eu-west-1"}, OneWay: true},
				{Kind: lab.ActCrash, Regions: []string{"ap-southeast-1"}},
				op(inventory.Replicated, inventory.OpBuy, "ap-southeast-1", inventory.Unavailable, 0),
			},
			want: []string{"## N. Virginia can no longer reach Ireland", "cut us-east-1 -> eu-west-1\n", "## Singapore crashes", "crash ap-southeast-1\n", "buy replicated X from ap-southeast-1 expect unavailable"},
		},
		{
			name: "a call that got through an opened breaker waits out its cooldown",
			actions: []lab.RecordedAction{
				{Kind: lab.ActIsolate, Regions: []string{"ap-southeast-1"}},
				op(inventory.Consensus, inventory.OpBuy, "ap-southeast-1", inventory.Unavailable, 0),
				op(inventory.Consensus, inventory.OpBuy, "ap-southeast-1", inventory.Unavailable, 0),
				op(inventory.Consensus, inventory.OpBuy, "ap-southeast-1", inventory.Unavailable, 0),
				op(inventory.Consensus, inventory.OpBuy, "ap-southeast-1", inventory.FailFast, 0),
				op(inventory.Consensus, inventory.OpRead, "ap-southeast-1", inventory.Unavailable, 0),
			},
			want: []string{"partition ap-southeast-1 | us-east-1,eu-west-1", "buy consensus X from ap-southeast-1 expect fail_fast", "wait 5.5s # the circuit breaker's cooldown\nread consensus X from ap-southeast-1 expect unavailable"},
		},
		{
			name: "a pause of more than a few seconds starts a step; reads wait for replication",
			actions: []lab.RecordedAction{
				op(inventory.Replicated, inventory.OpStock, "us-east-1", inventory.OK, 2),
				op(inventory.Consensus, inventory.OpStock, "us-east-1", inventory.OK, 2),
				{Kind: lab.ActRead, At: time.Date(2026, 12, 2, 10, 1, 0, 0, time.UTC), Regions: []string{"eu-west-1"}, Op: &inventory.Operation{Store: inventory.Replicated, SKU: "X", Op: inventory.OpRead, Region: "eu-west-1", Outcome: inventory.OK, Quantity: 2}},
			},
			want: []string{"## Stock the shelf", "stock X 2\n", "## Reading the stock in Ireland", "wait converged\nexpect read replicated X from eu-west-1 = 2"},
		},
		{
			name: "a paused shop's reservation is replayed first, with the outcome it got",
			actions: []lab.RecordedAction{
				op(inventory.Consensus, inventory.OpStock, "us-east-1", inventory.OK, 1),
				{Kind: lab.ActClock, Regions: []string{"eu-west-1"}, OffsetMs: 5000},
				{Kind: lab.ActPause, Regions: []string{"ap-southeast-1"}, Seconds: 8},
				// Virginia's reservation returned first; Singapore's began first.
				{Kind: lab.ActReserve, At: time.Date(2026, 12, 2, 10, 0, 5, 0, time.UTC), Regions: []string{"us-east-1"}, Fenced: true,
					Op: &inventory.Operation{Store: inventory.Consensus, SKU: "X", Op: inventory.OpBuy, Region: "us-east-1", Outcome: inventory.OK, Qty: 1}},
				{Kind: lab.ActReserve, At: time.Date(2026, 12, 2, 10, 0, 4, 0, time.UTC), Regions: []string{"ap-southeast-1"}, Fenced: true,
					Op: &inventory.Operation{Store: inventory.Consensus, SKU: "X", Op: inventory.OpBuy, Region: "ap-southeast-1", Outcome: inventory.Conflict, Qty: 1}},
			},
			want: []string{"clock eu-west-1 +5s\n", "## Singapore's shop freezes for 8s", "pause shop ap-southeast-1 8s\nreserve X from ap-southeast-1 fenced expect conflict\nreserve X from us-east-1 fenced expect ok\n"},
		},
		{
			name: "a bridge becomes a heal and cuts",
			actions: []lab.RecordedAction{
				{Kind: lab.ActBridge, Regions: []string{"us-east-1"}, Cuts: [][2]string{{"eu-west-1", "ap-southeast-1"}, {"ap-southeast-1", "eu-west-1"}}},
			},
			want: []string{"## Only N. Virginia links the others", "reset\nheal\ncut ap-southeast-1 eu-west-1\n"},
		},
		{
			// The page's "Stock every store": consensus, replicated, geo.
			name: "stocking every store is one line for two stores and one for geo; geo buys and reads keep their outcomes",
			actions: []lab.RecordedAction{
				op(inventory.Consensus, inventory.OpStock, "us-east-1", inventory.OK, 3),
				op(inventory.Replicated, inventory.OpStock, "us-east-1", inventory.OK, 3),
				op(inventory.Geo, inventory.OpStock, "us-east-1", inventory.OK, 3),
				op(inventory.Geo, inventory.OpBuy, "ap-southeast-1", inventory.OK, 2),
				{Kind: lab.ActIsolate, Regions: []string{"ap-southeast-1"}},
				op(inventory.Geo, inventory.OpBuy, "ap-southeast-1", inventory.SoldOut, 0),
				op(inventory.Geo, inventory.OpRead, "eu-west-1", inventory.OK, 2),
			},
			want: []string{"stock X 3\nstock X 3 on geo\n", "buy geo X from ap-southeast-1 expect ok\n",
				"buy geo X from ap-southeast-1 expect sold_out\n", "expect read geo X from eu-west-1 = 2\n"},
		},
		{
			name: "a geo stock split by region keeps its split; a replicated and a geo stock are not one line",
			actions: []lab.RecordedAction{
				op(inventory.Replicated, inventory.OpStock, "us-east-1", inventory.OK, 6),
				{Kind: lab.ActStock, Regions: []string{"us-east-1"}, Op: &inventory.Operation{Store: inventory.Geo, SKU: "X", Op: inventory.OpStock, Region: "us-east-1",
					Outcome: inventory.OK, Qty: 6, Allocations: map[string]int{"us-east-1": 1, "eu-west-1": 5, "ap-southeast-1": 0}}},
			},
			want:  []string{"stock X 6 on replicated\nstock X 6 on geo split ap-southeast-1=0,eu-west-1=5,us-east-1=1\n"},
			avoid: []string{"stock X 6\n"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			md := render(t, recording(c.actions...))
			for _, w := range c.want {
				if !strings.Contains(md, w) {
					t.Errorf("export lacks %q:\n%s", w, md)
				}
			}
			for _, w := range c.avoid {
				if strings.Contains(md, w) {
					t.Errorf("export has %q:\n%s", w, md)
				}
			}
		})
	}
}
