package lessons

import (
	"strings"
	"testing"
	"time"

	verdict "caplab/lab/check"
	"caplab/lab/inventory"
	"caplab/lab/load"
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
			"Singapore tried to buy on the consensus store → refused after 2.0 s: cannot reach a majority."},
		{"missed expectation", CommandResult{Command: buy, Status: StatusFailed, Outcomes: []inventory.Outcome{{Outcome: inventory.OK, Quantity: 0, LatencyMs: 231}}},
			"Singapore tried to buy on the consensus store → sold after 231 ms: 0 left. (the lesson expected It refuses — try later)"},
		{"partition", CommandResult{Command: Command{Action: Partition{Groups: [][]string{{"us-east-1", "eu-west-1"}, {"ap-southeast-1"}}}}, Status: StatusDone},
			"The network splits: N. Virginia and Ireland | Singapore can no longer reach each other."},
		{"one-way cut", CommandResult{Command: Command{Action: Cut{From: "us-east-1", To: "ap-southeast-1", OneWay: true}}, Status: StatusDone},
			"Messages from N. Virginia to Singapore are dropped; the other way still works."},
		{"checker", CommandResult{Command: Command{Action: ExpectOversold{Store: inventory.Replicated, SKU: "X", N: 1}}, Status: StatusPassed, Check: &verdict.Result{SoldUnits: 2, InitialUnits: 1, Oversold: 1}},
			"The checker: the replicated store sold 2 of 1 stocked — 1 unit oversold."},
		{"wait", CommandResult{Command: Command{Action: Wait{For: WaitDuration, Duration: 2 * time.Second}}, Status: StatusDone}, "The lab waits 2s."},
		{"lab error", CommandResult{Command: Command{Action: Crash{Region: "eu-west-1"}}, Status: StatusError, Got: "region is already down."},
			`The lab could not do "crash eu-west-1": region is already down`},
		{"overloaded", CommandResult{Command: buy, Status: StatusFailed, Outcomes: []inventory.Outcome{{Outcome: "overloaded", LatencyMs: 1, Message: "Overloaded: the gateway is at its limit."}}},
			"Singapore tried to buy on the consensus store → too busy after 1 ms: gateway full: not sent, try again. (the lesson expected It refuses — try later)"},
		{"unknown outcome kind", CommandResult{Command: buy, Status: StatusFailed, Outcomes: []inventory.Outcome{{Outcome: "teleported", LatencyMs: 1, Message: "Teleported: it went to N. Virginia. Then back."}}},
			"Singapore tried to buy on the consensus store → teleported after 1 ms: it went to N. Virginia. (the lesson expected It refuses — try later)"},
		// the punchlines of the newer lessons, in the learner's words
		{"clock skew", CommandResult{Command: Command{Action: Clock{Region: "eu-west-1", Offset: 5 * time.Second}}, Status: StatusDone},
			"Ireland's clock jumps 5.0 s ahead of true time: every timestamp it writes is off by that much, and nothing else notices."},
		{"clock reset", CommandResult{Command: Command{Action: Clock{Reset: true}}, Status: StatusDone}, "Every clock reads true time again."},
		{"pause", CommandResult{Command: Command{Action: PauseShop{Region: "ap-southeast-1", Duration: 8 * time.Second}}, Status: StatusDone},
			"Singapore's shop freezes for 8.0 s — a long GC pause: it sends nothing, not even its lock's heartbeats."},
		{"frozen reservation", CommandResult{Command: Command{Action: Reserve{SKU: "LAST-PHONE", Region: "ap-southeast-1"}}, Status: StatusDone},
			"Singapore takes the lock on LAST-PHONE, reads the stock — and freezes mid-sale, still believing it holds the lock."},
		{"fenced refusal", CommandResult{Command: Command{Action: Reserve{SKU: "FENCED-PHONE", Region: "ap-southeast-1", Fenced: true, Expect: inventory.Conflict}}, Status: StatusPassed, Woke: true,
			Outcomes: []inventory.Outcome{{Outcome: inventory.Conflict, LatencyMs: 9012, Message: "Refused: Singapore (ap-southeast-1) wrote with fencing token 7 after a pause, but the storage has already seen token 9 from a newer lock holder. Nothing was sold."}}},
			"Singapore wakes up and writes its sale of FENCED-PHONE with its fencing token → refused: the storage has already seen a newer token, so nothing is sold twice."},
		{"skew blamed", CommandResult{Command: Command{Action: ExpectLinearizable{Store: inventory.Replicated, SKU: "PHONE"}}, Status: StatusPassed,
			Check: &verdict.Result{LostUpdates: 1, Explanation: "Lost update. Why this value stands: its version was stamped by eu-west-1's clock, running 5.0 s ahead of real time, so last-writer-wins kept it over 1 write(s) made later in real time."}},
			"The checker: the replicated store's history is not linearizable — no single shelf could have done this. 1 update lost: a write overwrote another it never saw. Its version was stamped by Ireland's clock, running 5.0 s ahead of real time, so last-writer-wins kept it over 1 write(s) made later in real time."},
		{"stranded", CommandResult{Command: Command{Action: Buy{Store: inventory.Geo, SKU: "DROP", Region: "eu-west-1", Qty: 1, Expect: inventory.Unavailable}}, Status: StatusPassed,
			Outcomes: []inventory.Outcome{{Outcome: inventory.Unavailable, Store: inventory.Geo, Op: inventory.OpBuy, LatencyMs: 4, Message: "Stranded: Ireland (eu-west-1)'s own allocation has 0, and borrowing from ap-southeast-1 is impossible now (cut off or down) — 1 unit is stranded there (as last seen). Local allocations keep selling; nothing was moved."}}},
			"Ireland tried to buy on the geo store → stranded after 4 ms: none left here; 1 unit stranded in Singapore."},
		{"SLO missed", CommandResult{Command: Command{Action: ExpectLoad{Store: inventory.Consensus, Region: "ap-southeast-1", Metric: "p99", Op: ">", Value: 150, Last: 8 * time.Second}}, Status: StatusPassed,
			Load: &LoadFacts{SLOMs: 150, Figures: []load.Figures{{Region: "ap-southeast-1", P99Ms: 1012}}}},
			"The consensus store's slowest buys (p99 in the last 8.0 s): Singapore 1.0 s — it misses the 150 ms SLO."},
		{"zone crash", CommandResult{Command: Command{Action: Crash{Region: "us-east-1a"}}, Status: StatusDone},
			"Zone us-east-1a of N. Virginia crashes; N. Virginia's other zones can still form a majority of its regional group."},
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

// Every command of the built-in course tells a story line of its own, never
// the runner's raw line ("line 32: clock eu-west-1 +5s").
func TestEveryCommandNarrated(t *testing.T) {
	ls, errs := Builtin()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, l := range ls {
		for _, st := range l.Steps {
			for _, c := range st.Commands {
				raw := "line 1: " + c.Source
				cr := CommandResult{Command: c, Status: StatusDone, Text: raw, Load: &LoadFacts{}, Check: &verdict.Result{}}
				got := Story(cr, nil)
				if _, ask := c.Action.(Ask); ask {
					continue
				}
				if got == "" || got == raw || strings.HasPrefix(got, "line ") || strings.Contains(got, c.Source) {
					t.Errorf("%s:%d %q tells %q", l.File, c.Line, c.Source, got)
				}
			}
		}
	}
}
