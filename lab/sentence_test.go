package lab_test

import (
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// The words of an outcome are the same whether they are made from the
// live answer (SayOutcome) or from the recorded operation (Say): a late
// viewer reads what a live one read.
func TestSayLiveAndRecordedAgree(t *testing.T) {
	call := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		out      inventory.Outcome
		tag, why string
	}{
		{"consensus refusal", inventory.Outcome{Outcome: inventory.Unavailable, Store: inventory.Consensus, Region: "ap-southeast-1", Op: inventory.OpBuy, Qty: 1,
			Message: "Unavailable: Singapore (ap-southeast-1) cannot reach a majority of regions (no answer came before the deadline). The consensus store chose consistency over availability."},
			"Refused", "cannot reach a majority"},
		{"replicated sale, one ack", inventory.Outcome{Outcome: inventory.OK, Store: inventory.Replicated, Region: "ap-southeast-1", Op: inventory.OpBuy, Qty: 1, Quantity: 2, AnsweredBy: []string{"ap-southeast-1"},
			Message: "Sold — 2 left. W=1: one acknowledgement was enough; the other replicas catch up in the background."},
			"Sold", "2 left · only Singapore confirmed"},
		{"geo stranded", inventory.Outcome{Outcome: inventory.Unavailable, Store: inventory.Geo, Region: "eu-west-1", Op: inventory.OpBuy, Qty: 1, AnsweredBy: []string{"eu-west-1"},
			Message: "Stranded: Ireland (eu-west-1)'s own allocation has 0, and borrowing from ap-southeast-1 is impossible now (cut off or down) — 1 unit is stranded there (as last seen). Local allocations keep selling; nothing was moved."},
			"Stranded", "none left here; 1 unit stranded in Singapore"},
		{"geo borrowed", inventory.Outcome{Outcome: inventory.OK, Store: inventory.Geo, Region: "eu-west-1", Op: inventory.OpBuy, Qty: 1, Quantity: 0,
			Message: "Sold — borrowed 1 from N. Virginia (us-east-1) (debit and transfer record there, then credit here by transfer id), 0 left in Ireland (eu-west-1)'s allocation."},
			"Sold", "0 left · borrowed 1 from N. Virginia"},
		{"fenced late write", inventory.Outcome{Outcome: inventory.Conflict, Store: inventory.Consensus, Region: "ap-southeast-1", Op: inventory.OpBuy, Qty: 1,
			Message: "Refused: Singapore (ap-southeast-1) wrote with fencing token 7 after an 8s pause, but the storage has already seen token 9 from a newer lock holder. Nothing was sold."},
			"Fenced off", "its lock token was stale: nothing sold twice"},
		{"optimistic conflict", inventory.Outcome{Outcome: inventory.Conflict, Store: inventory.Consensus, Region: "us-east-1", Op: inventory.OpBuy, Qty: 1,
			Message: "Conflict: other buyers changed the stock 5 times while this buy tried; nothing was sold — try again."},
			"Gave up", "stock kept changing"},
		{"breaker", inventory.Outcome{Outcome: inventory.FailFast, Store: inventory.Consensus, Region: "ap-southeast-1", Op: inventory.OpBuy, Qty: 1, Message: "Service temporarily unavailable — retry later: the circuit breaker is open."},
			"Refused at once", "breaker open: nothing sent"},
		{"stale read", inventory.Outcome{Outcome: inventory.OK, Store: inventory.Consensus, Region: "ap-southeast-1", Op: inventory.OpRead, Consistency: inventory.Serializable, Quantity: 3,
			Message: "3 left, read from Singapore (ap-southeast-1)'s own copy without asking the majority — fast, but it may be stale."},
			"Read", "3 in stock (local copy, may be stale)"},
		{"unknown refusal", inventory.Outcome{Outcome: inventory.Unavailable, Store: inventory.Replicated, Region: "us-east-1", Op: inventory.OpBuy, Qty: 1, Message: "Unavailable: the cable to N. Virginia is chewed. It will be mended."},
			"Refused", "the cable to N. Virginia is chewed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.out.LatencyMs = 2001.37
			live := lab.SayOutcome(tc.out)
			op := inventory.Operation{Store: tc.out.Store, Region: tc.out.Region, Op: tc.out.Op, Qty: tc.out.Qty, Consistency: tc.out.Consistency,
				Outcome: tc.out.Outcome, Quantity: tc.out.Quantity, Call: call, Return: call.Add(2001374 * time.Microsecond)}
			lab.KeepWords(&op, tc.out, false)
			recorded := lab.Say(op)
			if live != recorded {
				t.Errorf("live %+v\nrecorded %+v", live, recorded)
			}
			if live.Tag != tc.tag || live.Why != tc.why {
				t.Errorf("got %q / %q, want %q / %q", live.Tag, live.Why, tc.tag, tc.why)
			}
			if !strings.Contains(live.Text, "2.0 s") || !strings.HasPrefix(live.Text, strings.TrimSpace(tc.out.Message)) {
				t.Errorf("the sentence %q should be the store's message with its time", live.Text)
			}
		})
	}
	// A load's operations keep no words: the history stays as small as before.
	op := inventory.Operation{Outcome: inventory.OK}
	lab.KeepWords(&op, inventory.Outcome{Outcome: inventory.OK, Message: "Sold — 1 left.", AnsweredBy: []string{"us-east-1"}}, true)
	if op.Message != "" || op.AnsweredBy != nil {
		t.Errorf("a load's operation kept %q %v", op.Message, op.AnsweredBy)
	}
	// Without a message (an old export), words from the kind alone.
	if w := lab.Say(inventory.Operation{Op: inventory.OpBuy, Outcome: inventory.Unavailable}); w.Tag != "Refused" || w.Why != "no quorum in time" {
		t.Errorf("no message: %+v", w)
	}
}

func TestFirstSentenceKeepsAbbreviations(t *testing.T) {
	for in, want := range map[string]string{
		"Unavailable: refused by N. Virginia. Try later.": "refused by N. Virginia.",
		"Sold — 1.5 units. Fine.":                         "Sold — 1.5 units.",
		"No stop at all":                                  "No stop at all",
	} {
		if got := lab.FirstSentence(in); got != want {
			t.Errorf("firstSentence(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSayFault(t *testing.T) {
	for _, tc := range []struct {
		f    inventory.Fault
		want string
	}{
		{inventory.Fault{Kind: inventory.FaultPartition, Detail: "us-east-1,eu-west-1 | ap-southeast-1"}, "The network splits: N. Virginia and Ireland | Singapore can no longer reach each other."},
		{inventory.Fault{Kind: inventory.FaultCut, Regions: []string{"us-east-1", "ap-southeast-1"}, Detail: "us-east-1 -> ap-southeast-1"}, "Messages from N. Virginia to Singapore are dropped; the other way still works."},
		{inventory.Fault{Kind: inventory.FaultHeal, Detail: "all links up"}, "Every link is back up."},
		{inventory.Fault{Kind: inventory.FaultClock, Regions: []string{"eu-west-1"}, Detail: "eu-west-1 clock +5s"}, "Ireland's clock now runs 5s ahead of true time: every timestamp it writes is off by that much, and nothing else notices."},
		{inventory.Fault{Kind: inventory.FaultPause, Regions: []string{"ap-southeast-1"}, Detail: "ap-southeast-1's shop paused for 8s"}, "Singapore's shop freezes for 8s (a long GC pause): it sends nothing, not even its lock's heartbeats."},
		{inventory.Fault{Kind: "unrecorded_writes", Detail: "3 writes"}, "Unrecorded writes: 3 writes."},
	} {
		if got := lab.SayFault(tc.f); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.f.Kind, got, tc.want)
		}
	}
}

// BenchmarkSay is the cost of an operation's words: paid per operation
// frame and per operation in GET /api/history's answer (docs/benchmarks.md).
//
//	go test ./lab -run '^$' -bench 'BenchmarkSay' -benchmem
func BenchmarkSay(b *testing.B) {
	call := time.Now()
	ops := []inventory.Operation{
		{Store: inventory.Consensus, Region: "ap-southeast-1", Op: inventory.OpBuy, Qty: 1, Outcome: inventory.Unavailable, Call: call, Return: call.Add(time.Second),
			Message: "Unavailable: Singapore (ap-southeast-1) cannot reach a majority of regions (no answer came before the deadline). The consensus store chose consistency over availability."},
		{Store: inventory.Replicated, Region: "us-east-1", Op: inventory.OpBuy, Qty: 1, Outcome: inventory.OK, Quantity: 2, AnsweredBy: []string{"us-east-1"}, Call: call, Return: call.Add(3 * time.Millisecond),
			Message: "Sold — 2 left. W=1: one acknowledgement was enough; the other replicas catch up in the background."},
		{Store: inventory.Geo, Region: "eu-west-1", Op: inventory.OpBuy, Qty: 1, Outcome: inventory.Unavailable, AnsweredBy: []string{"eu-west-1"}, Call: call, Return: call.Add(5 * time.Millisecond),
			Message: "Stranded: Ireland (eu-west-1)'s own allocation has 0, and borrowing from ap-southeast-1 is impossible now (cut off or down) — 1 unit is stranded there (as last seen). Local allocations keep selling; nothing was moved."},
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = lab.Say(ops[i%len(ops)])
	}
}
