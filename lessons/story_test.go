package lessons

import (
	"strings"
	"testing"
	"time"

	verdict "caplab/lab/check"
	"caplab/lab/inventory"
)

func TestStory(t *testing.T) {
	city := func(r string) string {
		return map[string]string{"ap-southeast-1": "Singapore", "us-east-1": "N. Virginia", "eu-west-1": "Ireland"}[r]
	}
	buy := Command{Line: 9, Source: "buy consensus X from ap-southeast-1 expect unavailable",
		Action: Buy{Store: inventory.Consensus, SKU: "X", Region: "ap-southeast-1", Qty: 1, Expect: inventory.Unavailable}}
	refused := inventory.Outcome{Outcome: inventory.Unavailable, LatencyMs: 2001,
		Message: "Unavailable: Singapore (ap-southeast-1) cannot reach a majority of regions (no answer came before the deadline). The consensus store chose consistency over availability."}
	cases := []struct {
		name string
		cr   CommandResult
		want string
	}{
		{"refused buy", CommandResult{Command: buy, Status: StatusPassed, Outcomes: []inventory.Outcome{refused}},
			"Singapore tried to buy on the consensus store → refused after 2.0 s: Singapore (ap-southeast-1) cannot reach a majority of regions (no answer came before the deadline)."},
		{"missed expectation", CommandResult{Command: buy, Status: StatusFailed, Outcomes: []inventory.Outcome{{Outcome: inventory.OK, Quantity: 0, LatencyMs: 231}}},
			"Singapore tried to buy on the consensus store → sold after 231 ms; 0 left. (the lesson expected It refuses — try later)"},
		{"partition", CommandResult{Command: Command{Action: Partition{Groups: [][]string{{"us-east-1", "eu-west-1"}, {"ap-southeast-1"}}}}, Status: StatusDone},
			"The network splits: N. Virginia and Ireland | Singapore can no longer reach each other."},
		{"one-way cut", CommandResult{Command: Command{Action: Cut{From: "us-east-1", To: "ap-southeast-1", OneWay: true}}, Status: StatusDone},
			"Messages from N. Virginia to Singapore are dropped; the other way still works."},
		{"checker", CommandResult{Command: Command{Action: ExpectOversold{Store: inventory.Replicated, SKU: "X", N: 1}}, Status: StatusPassed, Check: &verdict.Result{SoldUnits: 2, InitialUnits: 1, Oversold: 1}},
			"The checker: the replicated store sold 2 of 1 stocked — 1 unit oversold."},
		{"wait", CommandResult{Command: Command{Action: Wait{For: WaitDuration, Duration: 2 * time.Second}}, Status: StatusDone}, "The lab waits 2s."},
		{"lab error", CommandResult{Command: Command{Action: Crash{Region: "eu-west-1"}}, Status: StatusError, Got: "region is already down."},
			`The lab could not do "crash eu-west-1": region is already down`},
		{"unknown outcome kind", CommandResult{Command: buy, Status: StatusFailed, Outcomes: []inventory.Outcome{{Outcome: "overloaded", LatencyMs: 1, Message: "Overloaded: the gateway is at its limit."}}},
			"Singapore tried to buy on the consensus store → overloaded after 1 ms: the gateway is at its limit. (the lesson expected It refuses — try later)"},
		{"ask tells nothing", CommandResult{Command: Command{Action: Ask{Poll: Poll{Question: "Q?"}}}, Status: StatusDone}, ""},
	}
	for _, tc := range cases {
		if got := Story(tc.cr, city); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
	// Without city names, region names.
	if got := Story(CommandResult{Command: Command{Action: Crash{Region: "eu-west-1"}}, Status: StatusDone}, nil); !strings.HasPrefix(got, "eu-west-1 crashes") {
		t.Errorf("no city names: %q", got)
	}
}
