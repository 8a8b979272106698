package lessons

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"caplab/lab/inventory"
)

// lesson wraps lab-block lines in a minimal lesson. The first command is on
// line 6.
func lesson(lines ...string) string {
	return "---\ntitle: T\n---\n## S\n```lab\n" + strings.Join(lines, "\n") + "\n```\n"
}

const firstCommandLine = 6

func TestParseCommands(t *testing.T) {
	tests := []struct {
		line string
		want Action
	}{
		{"reset", Reset{}},
		{"stock IPHONE-15-PRO 1", Stock{SKU: "IPHONE-15-PRO", Quantity: 1}},
		{"stock a.b_c 0 on replicated", Stock{SKU: "a.b_c", Quantity: 0, Store: inventory.Replicated}},
		{"stock X 1000000 on consensus", Stock{SKU: "X", Quantity: 1000000, Store: inventory.Consensus}},
		{"stock X 10 on geo", Stock{SKU: "X", Quantity: 10, Store: inventory.Geo}},
		{"stock X 10 on geo split us-east-1=4, eu-west-1=6", Stock{SKU: "X", Quantity: 10, Store: inventory.Geo, Split: map[string]int{"us-east-1": 4, "eu-west-1": 6}}},
		{"stock X 3 split ap-southeast-1=3", Stock{SKU: "X", Quantity: 3, Store: inventory.Geo, Split: map[string]int{"ap-southeast-1": 3}}},
		{"crash us-east-1a", Crash{Region: "us-east-1a"}},
		{"restart eu-west-1c", Restart{Region: "eu-west-1c"}},
		{"partition us-east-1,eu-west-1 | ap-southeast-1", Partition{Groups: [][]string{{"us-east-1", "eu-west-1"}, {"ap-southeast-1"}}}},
		{"partition us-east-1, eu-west-1|ap-southeast-1", Partition{Groups: [][]string{{"us-east-1", "eu-west-1"}, {"ap-southeast-1"}}}},
		{"partition us-east-1 | eu-west-1 | ap-southeast-1", Partition{Groups: [][]string{{"us-east-1"}, {"eu-west-1"}, {"ap-southeast-1"}}}},
		{"cut us-east-1 eu-west-1", Cut{From: "us-east-1", To: "eu-west-1"}},
		{"cut us-east-1 -> eu-west-1", Cut{From: "us-east-1", To: "eu-west-1", OneWay: true}},
		{"cut us-east-1->eu-west-1", Cut{From: "us-east-1", To: "eu-west-1", OneWay: true}},
		{"heal", Heal{}},
		{"heal eu-west-1 ap-southeast-1", Heal{From: "eu-west-1", To: "ap-southeast-1"}},
		{"heal eu-west-1 -> ap-southeast-1", Heal{From: "eu-west-1", To: "ap-southeast-1", OneWay: true}},
		{"latency us-east-1 ap-southeast-1 227", Latency{From: "us-east-1", To: "ap-southeast-1", RTTMs: 227}},
		{"latency us-east-1 ap-southeast-1 0", Latency{From: "us-east-1", To: "ap-southeast-1", RTTMs: 0}},
		{"latency us-east-1 -> ap-southeast-1 12.5ms", Latency{From: "us-east-1", To: "ap-southeast-1", RTTMs: 12.5, OneWay: true}},
		{"latency us-east-1 ap-southeast-1 5000", Latency{From: "us-east-1", To: "ap-southeast-1", RTTMs: 5000}},
		{"crash eu-west-1", Crash{Region: "eu-west-1"}},
		{"restart eu-west-1", Restart{Region: "eu-west-1"}},
		{"lead ap-southeast-1", Lead{Region: "ap-southeast-1"}},
		{"quorum 1 1", Quorum{W: 1, R: 1}},
		{"quorum 3 2", Quorum{W: 3, R: 2}},
		{"buy consensus X from us-east-1", Buy{Store: inventory.Consensus, SKU: "X", Region: "us-east-1", Qty: 1}},
		{"buy replicated X from us-east-1 qty 3", Buy{Store: inventory.Replicated, SKU: "X", Region: "us-east-1", Qty: 3}},
		{"buy consensus X from us-east-1 expect unavailable", Buy{Store: inventory.Consensus, SKU: "X", Region: "us-east-1", Qty: 1, Expect: inventory.Unavailable}},
		{"buy consensus X from us-east-1 qty 1000 expect sold_out", Buy{Store: inventory.Consensus, SKU: "X", Region: "us-east-1", Qty: 1000, Expect: inventory.SoldOut}},
		{"buy consensus X from us-east-1 expect fail_fast qty 2", Buy{Store: inventory.Consensus, SKU: "X", Region: "us-east-1", Qty: 2, Expect: inventory.FailFast}},
		{"buy consensus X from us-east-1 expect overloaded", Buy{Store: inventory.Consensus, SKU: "X", Region: "us-east-1", Qty: 1, Expect: inventory.Overloaded}},
		{"buy consensus X from us-east-1 expect ok", Buy{Store: inventory.Consensus, SKU: "X", Region: "us-east-1", Qty: 1, Expect: inventory.OK}},
		{"buy consensus X from us-east-1 expect conflict", Buy{Store: inventory.Consensus, SKU: "X", Region: "us-east-1", Qty: 1, Expect: inventory.Conflict}},
		{"read consensus X from eu-west-1", Read{Store: inventory.Consensus, SKU: "X", Region: "eu-west-1"}},
		{"read consensus X from eu-west-1 serializable", Read{Store: inventory.Consensus, SKU: "X", Region: "eu-west-1", Consistency: inventory.Serializable}},
		{"read replicated X from eu-west-1 linearizable", Read{Store: inventory.Replicated, SKU: "X", Region: "eu-west-1", Consistency: inventory.Linearizable}},
		{"wait 2s", Wait{For: WaitDuration, Duration: 2 * time.Second}},
		{"wait 5m", Wait{For: WaitDuration, Duration: 5 * time.Minute}},
		{"wait 1ns", Wait{For: WaitDuration, Duration: time.Nanosecond}},
		{"wait leader", Wait{For: WaitLeader}},
		{"wait converged", Wait{For: WaitConverged}},
		{"expect leader in us-east-1,eu-west-1", ExpectLeader{Regions: []string{"us-east-1", "eu-west-1"}}},
		{"expect leader in ap-southeast-1", ExpectLeader{Regions: []string{"ap-southeast-1"}}},
		{"expect read consensus X from eu-west-1 = 1", ExpectRead{Store: inventory.Consensus, SKU: "X", Region: "eu-west-1", Quantity: 1}},
		{"expect read consensus X from eu-west-1 serializable = 0", ExpectRead{Store: inventory.Consensus, SKU: "X", Region: "eu-west-1", Consistency: inventory.Serializable}},
		{"expect read replicated X from eu-west-1 =7", ExpectRead{Store: inventory.Replicated, SKU: "X", Region: "eu-west-1", Quantity: 7}},
		{"expect check consensus X linearizable", ExpectLinearizable{Store: inventory.Consensus, SKU: "X", Want: true}},
		{"expect check replicated X not linearizable", ExpectLinearizable{Store: inventory.Replicated, SKU: "X", Want: false}},
		{"expect check replicated X oversold = 1", ExpectOversold{Store: inventory.Replicated, SKU: "X", N: 1}},
		{"expect check replicated X oversold >= 1", ExpectOversold{Store: inventory.Replicated, SKU: "X", N: 1, AtLeast: true}},
		{"expect check replicated X oversold>=0", ExpectOversold{Store: inventory.Replicated, SKU: "X", N: 0, AtLeast: true}},
		{`ask "Will it sell?" answer no`, Ask{Poll: Poll{Line: firstCommandLine, Question: "Will it sell?", Options: []string{"yes", "no"}, Answer: "no"}}},
		{`ask "Which?" options ok|sold_out|unavailable answer unavailable`, Ask{Poll: Poll{Line: firstCommandLine, Question: "Which?", Options: []string{"ok", "sold_out", "unavailable"}, Answer: "unavailable"}}},
		{`ask "Q # not a comment" options a few ms | two seconds answer a few ms # comment`, Ask{Poll: Poll{Line: firstCommandLine, Question: "Q # not a comment", Options: []string{"a few ms", "two seconds"}, Answer: "a few ms"}}},
		{`ask "say \"hi\"" options "x|y" | z answer "x|y"`, Ask{Poll: Poll{Line: firstCommandLine, Question: `say "hi"`, Options: []string{"x|y", "z"}, Answer: "x|y"}}},
		{"reset # fresh start", Reset{}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			l, errs := Parse("t.md", []byte(lesson(tt.line)))
			if len(errs) > 0 {
				t.Fatalf("unexpected errors:\n%v", errs)
			}
			cmds := l.Steps[0].Commands
			if len(cmds) != 1 {
				t.Fatalf("got %d commands, want 1", len(cmds))
			}
			if cmds[0].Line != firstCommandLine {
				t.Errorf("line = %d, want %d", cmds[0].Line, firstCommandLine)
			}
			if !reflect.DeepEqual(cmds[0].Action, tt.want) {
				t.Errorf("action = %#v\nwant     %#v", cmds[0].Action, tt.want)
			}
			// The canonical spelling parses back to the same action.
			l2, errs := Parse("t.md", []byte(lesson(cmds[0].Action.String())))
			if len(errs) > 0 {
				t.Fatalf("canonical form %q does not parse:\n%v", cmds[0].Action.String(), errs)
			}
			if got := l2.Steps[0].Commands[0].Action; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("canonical form %q parses to %#v", cmds[0].Action.String(), got)
			}
		})
	}
}

func TestParseCommandErrors(t *testing.T) {
	tests := []struct {
		line string
		want string // substring of the message
	}{
		{"buyy consensus X from us-east-1", `unknown command "buyy" (expected one of: reset, stock, partition, cut, heal, latency, crash, restart, lead, quorum, buy, read, wait, expect, ask, load, clock, pause, reserve, groupcommit); did you mean "buy"?`},
		{`"reset"`, `unknown command "reset"`},
		{"reset now", `reset: unexpected "now" at the end`},
		{"stock X", "stock: missing N"},
		{"stock X -1", `stock: N must be a whole number from 0 to 1000000, got "-1"`},
		{"stock X 1000001", "N must be a whole number from 0 to 1000000"},
		{"stock X 1.5", "N must be a whole number"},
		{"stock X 1 in consensus", `stock: expected "on" after the quantity, got "in"`},
		{"stock X 1 on eventual", `unknown store "eventual" (expected consensus, replicated or geo)`},
		{"stock X!Y 1", `invalid SKU "X!Y"`},
		{"stock " + strings.Repeat("A", 65) + " 1", "invalid SKU"},
		{"partition us-east-1 | eu-west-1", "partition: ap-southeast-1 in no group"},
		{"partition us-east-1,eu-west-1,ap-southeast-1", "partition: needs at least two groups"},
		{"partition us-east-1 | eu-west-1 | us-east-1,ap-southeast-1", `partition: region "us-east-1" is in more than one group`},
		{"partition us-east-1 | | eu-west-1,ap-southeast-1", "partition: empty group"},
		{"partition us-east-1 | eu-west-9,ap-southeast-1", `unknown region "eu-west-9" (lesson regions: us-east-1, eu-west-1, ap-southeast-1)`},
		{"cut us-east-1 us-east-1", "cut: a region has no link to itself"},
		{"cut us-east-1", "cut: missing REGION"},
		{"cut us-east-1 -> -> eu-west-1", `cut: unexpected "->" where REGION was expected`},
		{"heal eu-west-1 eu-west-1", "heal: a region has no link to itself"},
		{"heal eu-west-1", "heal: missing REGION"},
		{"latency us-east-1 eu-west-1 5001", `latency: MS must be a number of milliseconds from 0 to 5000, got "5001"`},
		{"latency us-east-1 eu-west-1 -3", "latency: MS must be"},
		{"latency us-east-1 eu-west-1 fast", "latency: MS must be"},
		{"latency eu-west-1 eu-west-1 10", "latency: a region has no link to itself"},
		{"crash mars-1", `unknown region "mars-1"`},
		{"restart", "restart: missing REGION"},
		{"lead us-west-2", `region "us-west-2" is not in this lesson (lesson regions: us-east-1, eu-west-1, ap-southeast-1; add it to regions: in the front matter)`},
		{"quorum 0 1", `quorum: W must be a whole number from 1 to 3, got "0"`},
		{"quorum 1 4", `quorum: R must be a whole number from 1 to 3, got "4"`},
		{"quorum 2", "quorum: missing R"},
		{"buy consensus X us-east-1", `buy: expected "from" after the SKU, got "us-east-1"`},
		{"buy consensus X from us-east-1 expect maybe", `unknown outcome "maybe" (expected one of: ok, sold_out, unavailable, fail_fast, conflict, overloaded)`},
		{"buy consensus X from us-east-1 qty 0", `buy: qty must be a whole number from 1 to 1000, got "0"`},
		{"buy consensus X from us-east-1 qty 1001", "qty must be a whole number from 1 to 1000"},
		{"buy consensus X from us-east-1 qty 1 qty 2", `buy: unexpected "qty"`},
		{"buy consensus X from us-east-1 now", `buy: unexpected "now"`},
		{"buy strong X from us-east-1", `unknown store "strong"`},
		{"read consensus X from us-east-1 eventual", `read: unexpected "eventual" at the end`},
		{"wait", "wait: missing DURATION, leader or converged"},
		{"wait 2", `wait: invalid duration "2" (expected a duration like 2s or 500ms, or leader, or converged)`},
		{"wait 0s", `wait: duration "0s" out of range (expected more than 0 and at most 5m)`},
		{"wait 6m", "out of range"},
		{"wait -1s", "out of range"},
		{"wait forever", `invalid duration "forever"`},
		{"expect", "expect: missing what to expect"},
		{"expect the best", `unknown expectation "the" (expected leader, read, check or load`},
		{"expect leader us-east-1", `expect leader: expected "in" after "leader", got "us-east-1"`},
		{"expect leader in", "expect leader: missing regions"},
		{"expect leader in us-east-1,eu-west-9", `unknown region "eu-west-9"`},
		{"expect read consensus X from us-east-1 1", `expect read: expected "= N", got "1"`},
		{"expect read consensus X from us-east-1", `expect read: expected "= N", got the end of the line`},
		{"expect read consensus X from us-east-1 = many", "expect read: N must be a whole number"},
		{"expect check consensus X fine", `expect check: unknown verdict "fine"`},
		{"expect check consensus X not fine", `expect check: expected "linearizable" after "not", got "fine"`},
		{"expect check consensus X oversold 1", "expect check: expected = or >= after \"oversold\""},
		{"expect check consensus X oversold > 1", "expect check: expected = or >= after"},
		{"expect check consensus X oversold = -1", "expect check: N must be a whole number"},
		{"expect check eventual X linearizable", `unknown store "eventual"`},
		{`ask Will it sell? answer no`, "ask: the question must be in double quotes"},
		{`ask "Will it sell? answer no`, "unterminated quoted string"},
		{`ask "" answer no`, "ask: empty question"},
		{`ask "Q" answer maybe`, `ask: answer "maybe" is not one of the options (options: yes | no)`},
		{`ask "Q" options a|b answer c`, `ask: answer "c" is not one of the options (options: a | b)`},
		{`ask "Q" options a answer a`, "ask: needs at least two options"},
		{`ask "Q" options a||b answer a`, "ask: empty option"},
		{`ask "Q" options a|a answer a`, `ask: option "a" is listed twice`},
		{`ask "Q" options a|b`, `ask: missing "answer" after the question and options`},
		{`ask "Q" answer`, "ask: missing answer"},
		{`ask "Q" yes`, `ask: expected "answer" after the question and options, got "yes"`},
		{`ask "bad \q escape" answer yes`, "malformed quoted string"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			_, errs := Parse("t.md", []byte(lesson("reset", tt.line, "reset")))
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1:\n%v", len(errs), errs)
			}
			want := fmt.Sprintf("t.md:%d: ", firstCommandLine+1)
			if got := errs[0].Error(); !strings.HasPrefix(got, want) || !strings.Contains(got, tt.want) {
				t.Errorf("error = %q\nwant prefix %q and %q", got, want, tt.want)
			}
		})
	}
}

func TestParseReportsEveryError(t *testing.T) {
	src := lesson("buyy", "reset", "quorum 9 9", "", "# a comment", "crash nowhere")
	_, errs := Parse("t.md", []byte(src))
	var lines []int
	for _, e := range errs {
		lines = append(lines, e.Line)
	}
	if want := []int{6, 8, 11}; !reflect.DeepEqual(lines, want) {
		t.Errorf("error lines = %v, want %v\n%v", lines, want, errs)
	}
}

func TestParseFrontMatter(t *testing.T) {
	tests := []struct {
		name        string
		front       string // between the --- lines, or "none"
		wantTitle   string
		wantRegions []string
		wantErr     string // substring; "" for none
		wantErrLine int
	}{
		{"defaults", "none", "x", DefaultRegions(), "", 0},
		{"empty", "", "x", DefaultRegions(), "", 0},
		{"full", "title: The last iPhone\nsummary: s\nregions: [us-west-2, eu-central-1, ap-northeast-1, sa-east-1, us-east-1]", "The last iPhone",
			[]string{"us-west-2", "eu-central-1", "ap-northeast-1", "sa-east-1", "us-east-1"}, "", 0},
		{"quoted", `title: "W + R > N: dial"` + "\nregions: [\"us-east-1\", 'eu-west-1']", "W + R > N: dial", []string{"us-east-1", "eu-west-1"}, "", 0},
		{"comment and blank", "# note\n\ntitle: A", "A", DefaultRegions(), "", 0},
		{"unknown key", "title: A\nauthor: me", "A", DefaultRegions(), `unknown front matter key "author" (expected one of: title, summary, regions)`, 3},
		{"duplicate key", "title: A\ntitle: B", "A", DefaultRegions(), `front matter key "title" appears twice (first on line 2)`, 3},
		{"no colon", "title A", "x", DefaultRegions(), `malformed front matter line "title A"`, 2},
		{"empty title", "title:", "x", DefaultRegions(), "empty title", 2},
		{"no brackets", "regions: us-east-1, eu-west-1", "x", DefaultRegions(), "regions must be a list in brackets", 2},
		{"unknown region", "regions: [us-east-1, eu-west-9]", "x", DefaultRegions(), `unknown region "eu-west-9" in regions (known regions: us-east-1, eu-west-1, ap-southeast-1, us-west-2, eu-central-1, ap-northeast-1, sa-east-1)`, 2},
		{"duplicate region", "regions: [us-east-1, us-east-1]", "x", DefaultRegions(), `region "us-east-1" is listed twice`, 2},
		{"empty list", "regions: []", "x", DefaultRegions(), "regions is empty", 2},
		{"empty item", "regions: [us-east-1,,eu-west-1]", "x", DefaultRegions(), "empty region name", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "## S\n"
			if tt.front != "none" {
				src = "---\n" + tt.front + "\n---\n" + src
			}
			l, errs := Parse("dir/x.md", []byte(src))
			if tt.wantErr == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors:\n%v", errs)
				}
			} else {
				if len(errs) != 1 || !strings.Contains(errs[0].Msg, tt.wantErr) || errs[0].Line != tt.wantErrLine {
					t.Fatalf("errors = %v\nwant one at line %d containing %q", errs, tt.wantErrLine, tt.wantErr)
				}
			}
			if l.Title != tt.wantTitle {
				t.Errorf("title = %q, want %q", l.Title, tt.wantTitle)
			}
			if !reflect.DeepEqual(l.Regions, tt.wantRegions) {
				t.Errorf("regions = %v, want %v", l.Regions, tt.wantRegions)
			}
			if l.Name != "x" {
				t.Errorf("name = %q, want x", l.Name)
			}
		})
	}
}

func TestParseRegionsShapeCommands(t *testing.T) {
	src := "---\nregions: [us-east-1, eu-west-1, ap-southeast-1, us-west-2, sa-east-1]\n---\n## S\n```lab\n" +
		"quorum 5 3\npartition us-east-1,eu-west-1 | ap-southeast-1,us-west-2,sa-east-1\n" +
		"partition us-east-1 | eu-west-1,ap-southeast-1,us-west-2\n```\n"
	_, errs := Parse("t.md", []byte(src))
	if len(errs) != 1 || errs[0].Line != 8 || !strings.Contains(errs[0].Msg, "sa-east-1 in no group") {
		t.Errorf("errors = %v, want one at line 8 about sa-east-1", errs)
	}
}

func TestParseUnclosedFrontMatter(t *testing.T) {
	_, errs := Parse("t.md", []byte("---\ntitle: A\n## S\n"))
	if len(errs) != 1 || errs[0].Line != 1 || !strings.Contains(errs[0].Msg, "never closed") {
		t.Errorf("errors = %v, want one at line 1 saying the front matter is never closed", errs)
	}
}

func TestParseStructure(t *testing.T) {
	src := `---
title: Structure
summary: A summary.
---

Intro with *emphasis*.

## Step one: *stock*

Before the block.

` + "```lab" + `
reset
stock X 1
` + "```" + `

Between <script>alert(1)</script> blocks.

` + "~~~lab" + `
ask "Q?" answer yes
` + "~~~" + `

` + "```go" + `
fmt.Println("code that is prose")
` + "```" + `

### A sub-heading stays prose

Step two
--------

No commands here.

## Step three
` + "```lab" + `
heal
` + "```"
	l, errs := Parse("structure.md", []byte(src))
	if len(errs) > 0 {
		t.Fatalf("errors:\n%v", errs)
	}
	if l.Summary != "A summary." || l.Title != "Structure" {
		t.Errorf("title, summary = %q, %q", l.Title, l.Summary)
	}
	if l.Intro.Markdown != "Intro with *emphasis*.\n" || l.Intro.HTML != "<p>Intro with <em>emphasis</em>.</p>\n" {
		t.Errorf("intro = %#v", l.Intro)
	}
	var titles []string
	var lines []int
	for _, s := range l.Steps {
		titles = append(titles, s.Title)
		lines = append(lines, s.Line)
	}
	if want := []string{"Step one: stock", "Step two", "Step three"}; !reflect.DeepEqual(titles, want) {
		t.Errorf("titles = %q, want %q", titles, want)
	}
	if want := []int{8, 29, 34}; !reflect.DeepEqual(lines, want) {
		t.Errorf("step lines = %v, want %v", lines, want)
	}
	one := l.Steps[0]
	var cmdLines []int
	for _, c := range one.Commands {
		cmdLines = append(cmdLines, c.Line)
	}
	if want := []int{13, 14, 20}; !reflect.DeepEqual(cmdLines, want) {
		t.Errorf("command lines = %v, want %v", cmdLines, want)
	}
	if len(one.Polls) != 1 || one.Polls[0].Question != "Q?" || one.Polls[0].Line != 20 {
		t.Errorf("polls = %#v", one.Polls)
	}
	for _, bad := range []string{"reset", "ask", "```lab", "~~~", "Step one"} {
		if strings.Contains(one.Prose.Markdown, bad) {
			t.Errorf("prose holds %q:\n%s", bad, one.Prose.Markdown)
		}
	}
	for _, good := range []string{"Before the block.", "Between", "fmt.Println", "### A sub-heading"} {
		if !strings.Contains(one.Prose.Markdown, good) {
			t.Errorf("prose lacks %q:\n%s", good, one.Prose.Markdown)
		}
	}
	if strings.Contains(one.Prose.HTML, "<script>") {
		t.Errorf("raw HTML was rendered:\n%s", one.Prose.HTML)
	}
	if !strings.Contains(one.Prose.HTML, "<h3>A sub-heading stays prose</h3>") {
		t.Errorf("HTML lacks the sub-heading:\n%s", one.Prose.HTML)
	}
	if l.Steps[1].Prose.Markdown != "No commands here.\n" || len(l.Steps[1].Commands) != 0 {
		t.Errorf("step two = %#v", l.Steps[1])
	}
	if len(l.Steps[2].Commands) != 1 || l.Steps[2].Commands[0].Line != 36 {
		t.Errorf("step three commands = %#v", l.Steps[2].Commands)
	}
}

func TestParseIntroWithCommandsIsAStep(t *testing.T) {
	l, errs := Parse("t.md", []byte("---\ntitle: Quick\n---\nSet up.\n```lab\nreset\n```\n## Go\n```lab\nheal\n```\n"))
	if len(errs) > 0 {
		t.Fatalf("errors:\n%v", errs)
	}
	if len(l.Steps) != 2 || l.Steps[0].Title != "Quick" || l.Steps[0].Line != 4 || l.Steps[0].Prose.Markdown != "Set up.\n" || l.Intro.Markdown != "" {
		t.Errorf("steps = %#v, intro = %#v", l.Steps, l.Intro)
	}
}

func TestParseLessonErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
		line            int
	}{
		{"no steps", "---\ntitle: A\n---\njust prose\n", "the lesson has no steps", 1},
		{"empty file", "", "the lesson has no steps", 1},
		{"empty heading", "## S\n##\n", "empty step heading", 2},
		{"nested lab block", "## S\n\n- item\n\n  ```lab\n  reset\n  ```\n", "inside a list or quote", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := Parse("t.md", []byte(tt.src))
			if len(errs) != 1 || errs[0].Line != tt.line || !strings.Contains(errs[0].Msg, tt.want) {
				t.Errorf("errors = %v, want one at line %d containing %q", errs, tt.line, tt.want)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{File: "lessons/x.md", Line: 14, Msg: "boom"}
	if got := e.Error(); got != "lessons/x.md:14: boom" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&Error{File: "d", Msg: "m"}).Error(); got != "d: m" {
		t.Errorf("Error() without line = %q", got)
	}
	var empty ErrorList
	if empty.Err() != nil {
		t.Error("empty ErrorList.Err() is not nil")
	}
	list := ErrorList{e, e}
	if list.Err() == nil || list.Error() != "lessons/x.md:14: boom\nlessons/x.md:14: boom" {
		t.Errorf("list = %q", list.Error())
	}
}
