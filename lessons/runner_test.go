package lessons

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	verdict "caplab/lab/check"
	"caplab/lab/inventory"
)

// fakeLab is a tiny single-copy inventory that stands in for the lab in
// tests of the runner (the runner, not the lab, is under test here). Regions
// outside the leader's partition group are unavailable.
type fakeLab struct {
	regions   []string
	stock     map[inventory.Store]map[string]int
	leader    string
	isolated  map[string]bool
	check     verdict.Result
	blockWait bool // WaitLeader blocks until its context ends
	calls     []string
}

func newFakeLab(regions []string) *fakeLab {
	return &fakeLab{
		regions:  regions,
		stock:    map[inventory.Store]map[string]int{inventory.Consensus: {}, inventory.Replicated: {}, inventory.Geo: {}},
		leader:   regions[0],
		isolated: map[string]bool{},
	}
}

func (f *fakeLab) call(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeLab) State() lab.State { return lab.State{LatencyScale: 1} }
func (f *fakeLab) Partition(groups [][]string) error {
	f.call("partition %v", groups)
	for _, g := range groups {
		for _, r := range g {
			f.isolated[r] = !slices.Contains(g, f.leader)
		}
	}
	return nil
}
func (f *fakeLab) HealAll() error { f.call("heal"); clear(f.isolated); return nil }
func (f *fakeLab) SetLink(from, to string, up, oneWay bool) error {
	f.call("link %s %s up=%v oneWay=%v", from, to, up, oneWay)
	return nil
}
func (f *fakeLab) SetLatency(from, to string, rttMs float64, oneWay bool) error {
	f.call("latency %s %s %v %v", from, to, rttMs, oneWay)
	return nil
}
func (f *fakeLab) Crash(region string) error   { f.call("crash %s", region); return nil }
func (f *fakeLab) Restart(region string) error { f.call("restart %s", region); return nil }
func (f *fakeLab) Lead(ctx context.Context, region string) error {
	f.call("lead %s", region)
	if f.isolated[region] {
		return fmt.Errorf("%s is cut off: %w", region, inventory.ErrUnavailable)
	}
	f.leader = region
	return nil
}
func (f *fakeLab) Stock(ctx context.Context, store inventory.Store, sku, region string, quantity int) (inventory.Outcome, error) {
	f.call("stock %s %s %s %d", store, sku, region, quantity)
	if f.isolated[region] {
		return inventory.Outcome{Outcome: inventory.Unavailable, LatencyMs: 2000}, nil
	}
	f.stock[store][sku] = quantity
	return inventory.Outcome{Outcome: inventory.OK, Quantity: quantity, LatencyMs: 1}, nil
}
func (f *fakeLab) StockSplit(ctx context.Context, sku, region string, quantity int, split map[string]int) (inventory.Outcome, error) {
	f.call("stock geo %s %s %d split %v", sku, region, quantity, split)
	f.stock[inventory.Geo][sku] = quantity
	return inventory.Outcome{Outcome: inventory.OK, Quantity: quantity, LatencyMs: 1}, nil
}
func (f *fakeLab) Buy(ctx context.Context, store inventory.Store, sku, region string, qty int) (inventory.Outcome, error) {
	f.call("buy %s %s %s %d", store, sku, region, qty)
	switch left := f.stock[store][sku]; {
	case f.isolated[region]:
		return inventory.Outcome{Outcome: inventory.Unavailable, LatencyMs: 2000, Message: "no quorum"}, nil
	case left < qty:
		return inventory.Outcome{Outcome: inventory.SoldOut, Quantity: left, LatencyMs: 3}, nil
	default:
		f.stock[store][sku] = left - qty
		return inventory.Outcome{Outcome: inventory.OK, Quantity: left - qty, LatencyMs: 3}, nil
	}
}
func (f *fakeLab) Read(ctx context.Context, store inventory.Store, sku, region string, c inventory.Consistency) (inventory.Outcome, error) {
	f.call("read %s %s %s %s", store, sku, region, c)
	if f.isolated[region] && c == inventory.Linearizable {
		return inventory.Outcome{Outcome: inventory.Unavailable, LatencyMs: 2000}, nil
	}
	return inventory.Outcome{Outcome: inventory.OK, Quantity: f.stock[store][sku], LatencyMs: 2}, nil
}
func (f *fakeLab) SetQuorum(w, r int) error { f.call("quorum %d %d", w, r); return nil }
func (f *fakeLab) SetGroupCommit(on bool)   { f.call("groupcommit %v", on) }
func (f *fakeLab) Check(store inventory.Store, sku string) (verdict.Result, error) {
	f.call("check %s %s", store, sku)
	return f.check, nil
}
func (f *fakeLab) Reset(ctx context.Context) error { f.call("reset"); return nil }
func (f *fakeLab) WaitLeader(ctx context.Context) error {
	f.call("wait leader")
	if f.blockWait {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}
func (f *fakeLab) WaitConverged(ctx context.Context) error { f.call("wait converged"); return nil }
func (f *fakeLab) Leader() string                          { return f.leader }

func mustParse(t *testing.T, src string) *Lesson {
	t.Helper()
	l, errs := Parse("t.md", []byte(src))
	if len(errs) > 0 {
		t.Fatalf("parse errors:\n%v", errs)
	}
	return l
}

func TestRunAllPasses(t *testing.T) {
	l := mustParse(t, `---
title: Run
---
## Stock
`+"```lab"+`
reset
lead eu-west-1
stock IPHONE 1
expect read consensus IPHONE from ap-southeast-1 serializable = 1
`+"```"+`
## Partition
`+"```lab"+`
partition us-east-1,eu-west-1 | ap-southeast-1
ask "Will Singapore sell?" answer no
buy consensus IPHONE from ap-southeast-1 expect unavailable
buy consensus IPHONE from eu-west-1
read consensus IPHONE from us-east-1
expect leader in eu-west-1,us-east-1
cut us-east-1 -> eu-west-1
heal us-east-1 eu-west-1
latency us-east-1 eu-west-1 80
heal
quorum 2 2
crash ap-southeast-1
restart ap-southeast-1
wait converged
expect check consensus IPHONE linearizable
expect check consensus IPHONE oversold >= 0
`+"```"+`
`)
	f := newFakeLab(l.Regions)
	f.check = verdict.Result{Linearizable: true, SoldUnits: 1, InitialUnits: 1}
	var out bytes.Buffer
	r := NewRunner(l, f, &out)
	r.NoTiming = true
	results, err := r.RunAll(context.Background())
	if err != nil {
		t.Fatalf("RunAll: %v\n%s", err, &out)
	}
	want := `lesson t: Run
regions: us-east-1, eu-west-1, ap-southeast-1

## Step 1/2: Stock
   line 6: reset
   line 7: lead eu-west-1
   line 8: stock IPHONE 1 → consensus ok (1 left), replicated ok (1 left)
 ✓ line 9: read consensus IPHONE from ap-southeast-1 serializable = 1

## Step 2/2: Partition
   line 13: partition us-east-1,eu-west-1 | ap-southeast-1
 ? line 14: "Will Singapore sell?" (yes | no) → answer: no
 ✓ line 15: buy consensus IPHONE from ap-southeast-1 expect unavailable → unavailable
   line 16: buy consensus IPHONE from eu-west-1 → ok (0 left)
   line 17: read consensus IPHONE from us-east-1 → 0
 ✓ line 18: expect leader in eu-west-1,us-east-1 (eu-west-1)
   line 19: cut us-east-1 -> eu-west-1
   line 20: heal us-east-1 eu-west-1
   line 21: latency us-east-1 eu-west-1 80
   line 22: heal
   line 23: quorum 2 2
   line 24: crash ap-southeast-1
   line 25: restart ap-southeast-1
   line 26: wait converged
 ✓ line 27: check consensus IPHONE linearizable
 ✓ line 28: check consensus IPHONE oversold >= 0 (got 0; sold 1 of 1)

PASS t: 2 steps
`
	if out.String() != want {
		t.Errorf("transcript:\n%s\nwant:\n%s", &out, want)
	}
	wantCalls := []string{
		"reset", "lead eu-west-1",
		"stock consensus IPHONE eu-west-1 1", "stock replicated IPHONE eu-west-1 1",
		"read consensus IPHONE ap-southeast-1 serializable",
		"partition [[us-east-1 eu-west-1] [ap-southeast-1]]",
		"buy consensus IPHONE ap-southeast-1 1", "buy consensus IPHONE eu-west-1 1",
		"read consensus IPHONE us-east-1 linearizable",
		"link us-east-1 eu-west-1 up=false oneWay=true", "link us-east-1 eu-west-1 up=true oneWay=false",
		"latency us-east-1 eu-west-1 80 false", "heal", "quorum 2 2",
		"crash ap-southeast-1", "restart ap-southeast-1", "wait converged",
		"check consensus IPHONE", "check consensus IPHONE",
	}
	if !slices.Equal(f.calls, wantCalls) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(wantCalls, "\n"))
	}
	if len(results) != 2 || len(results[1].Commands) != 16 {
		t.Fatalf("results = %+v", results)
	}
	ask := results[1].Commands[1]
	if ask.Poll == nil || ask.Poll.Answer != "no" || ask.Status != StatusDone {
		t.Errorf("ask result = %+v", ask)
	}
	buy := results[1].Commands[2]
	if buy.Status != StatusPassed || len(buy.Outcomes) != 1 || buy.Outcomes[0].Outcome != inventory.Unavailable {
		t.Errorf("buy result = %+v", buy)
	}
	if chk := results[1].Commands[14]; chk.Check == nil || !chk.Check.Linearizable {
		t.Errorf("check result = %+v", chk)
	}
}

func TestRunStopsAtFirstUnmetExpectation(t *testing.T) {
	tests := []struct {
		name    string
		cmds    []string
		check   verdict.Result
		timing  bool
		wantErr string // Failure.Error()
		wantOut string // last progress line
	}{
		{
			name:    "buy",
			cmds:    []string{"stock IPHONE 1", "buy consensus IPHONE from ap-southeast-1 expect unavailable", "reset"},
			timing:  true,
			wantErr: "t.md:7: expected buy consensus IPHONE from ap-southeast-1 → unavailable, got ok (0 left, 3.0 ms)",
			wantOut: " ✗ line 7: expected buy consensus IPHONE from ap-southeast-1 → unavailable, got ok (0 left, 3.0 ms)",
		},
		{
			name:    "read",
			cmds:    []string{"stock X 2", "expect read replicated X from eu-west-1 = 1", "reset"},
			wantErr: "t.md:7: expected read replicated X from eu-west-1 = 1, got 2",
			wantOut: " ✗ line 7: expected read replicated X from eu-west-1 = 1, got 2",
		},
		{
			name:    "unavailable read",
			cmds:    []string{"stock X 2", "partition us-east-1 | eu-west-1,ap-southeast-1", "expect read consensus X from eu-west-1 = 2"},
			wantErr: "t.md:8: expected read consensus X from eu-west-1 = 2, got unavailable",
			wantOut: " ✗ line 8: expected read consensus X from eu-west-1 = 2, got unavailable",
		},
		{
			name:    "leader",
			cmds:    []string{"expect leader in eu-west-1,ap-southeast-1"},
			wantErr: "t.md:6: expected leader in eu-west-1,ap-southeast-1, got us-east-1",
			wantOut: " ✗ line 6: expected leader in eu-west-1,ap-southeast-1, got us-east-1",
		},
		{
			name:    "linearizable",
			cmds:    []string{"expect check replicated X not linearizable"},
			check:   verdict.Result{Linearizable: true},
			wantErr: "t.md:6: expected check replicated X not linearizable, got linearizable",
			wantOut: " ✗ line 6: expected check replicated X not linearizable, got linearizable",
		},
		{
			name:    "oversold",
			cmds:    []string{"expect check replicated X oversold >= 1"},
			check:   verdict.Result{SoldUnits: 1, InitialUnits: 1},
			wantErr: "t.md:6: expected check replicated X oversold >= 1, got oversold = 0 (sold 1 of 1)",
			wantOut: " ✗ line 6: expected check replicated X oversold >= 1, got oversold = 0 (sold 1 of 1)",
		},
		{
			name:    "oversold exactly",
			cmds:    []string{"expect check replicated X oversold = 1"},
			check:   verdict.Result{Oversold: 2, SoldUnits: 3, InitialUnits: 1},
			wantErr: "t.md:6: expected check replicated X oversold = 1, got oversold = 2 (sold 3 of 1)",
			wantOut: " ✗ line 6: expected check replicated X oversold = 1, got oversold = 2 (sold 3 of 1)",
		},
		{
			name:    "stock fails",
			cmds:    []string{"partition us-east-1 | eu-west-1,ap-southeast-1", "lead eu-west-1"},
			wantErr: "t.md:7: lead eu-west-1: could not move leadership to eu-west-1 within 30s: eu-west-1 is cut off: unavailable",
			wantOut: " ✗ line 7: lead eu-west-1: could not move leadership to eu-west-1 within 30s: eu-west-1 is cut off: unavailable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := mustParse(t, lesson(append(tt.cmds, "heal")...))
			f := newFakeLab(l.Regions)
			f.check = tt.check
			var out bytes.Buffer
			r := NewRunner(l, f, &out)
			r.NoTiming = !tt.timing
			_, err := r.RunAll(context.Background())
			var fail *Failure
			if !errors.As(err, &fail) || err.Error() != tt.wantErr {
				t.Fatalf("err = %v\nwant %s", err, tt.wantErr)
			}
			if slices.Contains(f.calls, "heal") {
				t.Error("the run went on after the failure")
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if got := lines[len(lines)-4]; got != tt.wantOut {
				t.Errorf("progress line = %q\nwant            %q\n%s", got, tt.wantOut, &out)
			}
			if !strings.HasPrefix(lines[len(lines)-2], "FAIL t: step 1 of 1 stopped at line") {
				t.Errorf("FAIL line = %q", lines[len(lines)-2])
			}
			if !strings.HasPrefix(lines[len(lines)-1], "the lab then: ") {
				t.Errorf("last line = %q, want what the lab looked like", lines[len(lines)-1])
			}
		})
	}
}

func TestRunStockFailureStops(t *testing.T) {
	l := mustParse(t, lesson("stock X 1", "heal"))
	f := newFakeLab(l.Regions)
	f.leader = "eu-west-1"
	f.isolated["eu-west-1"] = true // the fake answers unavailable from there
	r := NewRunner(l, f, nil)
	r.NoTiming = true
	_, err := r.RunAll(context.Background())
	want := "t.md:6: stock X 1: stocking consensus from eu-west-1 answered unavailable; a lesson can only go on from a stocked shelf"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

func TestRunWaitTimesOut(t *testing.T) {
	l := mustParse(t, lesson("wait leader", "heal"))
	f := newFakeLab(l.Regions)
	f.blockWait = true
	r := NewRunner(l, f, nil)
	r.WaitTimeout = 10 * time.Millisecond
	_, err := r.RunAll(context.Background())
	var fail *Failure
	if !errors.As(err, &fail) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "t.md:6: wait leader: waited 10ms for a leader, in vain") {
		t.Errorf("err = %v", err)
	}
}

func TestRunCancelled(t *testing.T) {
	l := mustParse(t, lesson("wait 5m", "heal"))
	f := newFakeLab(l.Regions)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	_, err := NewRunner(l, f, nil).RunAll(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestRunStepOutOfRange(t *testing.T) {
	l := mustParse(t, lesson("reset"))
	r := NewRunner(l, newFakeLab(l.Regions), nil)
	if _, err := r.RunStep(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "step 2 does not exist") {
		t.Errorf("err = %v", err)
	}
	res, err := r.RunStep(context.Background(), 0)
	if err != nil || len(res.Commands) != 1 || res.Title != "S" {
		t.Errorf("RunStep(0) = %+v, %v", res, err)
	}
}

func TestCaughtUp(t *testing.T) {
	member := func(up bool, leader string, commit, applied uint64) lab.RegionState {
		return lab.RegionState{Up: up, Consensus: lab.MemberState{Leader: leader, CommitIndex: commit, AppliedIndex: applied}}
	}
	tests := []struct {
		name    string
		regions []lab.RegionState
		want    bool
	}{
		{"no regions", nil, true},
		{"all applied", []lab.RegionState{member(true, "a", 9, 9), member(true, "a", 9, 9)}, true},
		{"one behind", []lab.RegionState{member(true, "a", 9, 9), member(true, "a", 7, 7)}, false},
		{"commit not applied", []lab.RegionState{member(true, "a", 9, 8)}, false},
		{"no leader known", []lab.RegionState{member(true, "a", 9, 9), member(true, "", 9, 9)}, false},
		{"crashed region ignored", []lab.RegionState{member(true, "a", 9, 9), member(false, "", 3, 3)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := caughtUp(lab.State{Regions: tt.regions}); got != tt.want {
				t.Errorf("caughtUp = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDescribeLab: the line a failed run ends with names each region's
// role and term, a crashed region, and the cut links.
func TestDescribeLab(t *testing.T) {
	st := lab.State{
		Regions: []lab.RegionState{
			{Name: "us-east-1", Up: true, Consensus: lab.MemberState{Role: "leader", Term: 3, AppliedIndex: 40}},
			{Name: "eu-west-1", Up: true, Consensus: lab.MemberState{Role: "follower", Term: 3, AppliedIndex: 39}},
			{Name: "ap-southeast-1", Up: false},
		},
		Links: []lab.LinkState{{From: "us-east-1", To: "eu-west-1", State: "up"}, {From: "eu-west-1", To: "us-east-1", State: "cut"}},
	}
	want := "us-east-1 leader (term 3, applied 40); eu-west-1 follower (term 3, applied 39); ap-southeast-1 crashed; cut eu-west-1→us-east-1"
	if got := describeLab(st); got != want {
		t.Errorf("describeLab:\n%s\nwant\n%s", got, want)
	}
	if got := describeLab(lab.State{}); got != "every link up" {
		t.Errorf("describeLab of an empty state: %q", got)
	}
}
