package lessons

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"caplab/lab/inventory"
)

func TestParseLoadCommands(t *testing.T) {
	mix, stock := 4.0, 10
	tests := []struct {
		line string
		want Action
	}{
		{"load start", LoadStart{}},
		{"load start rate 5 mix 4 for 30s skus 200 stock 10 on consensus,replicated",
			LoadStart{Rate: 5, Mix: &mix, For: 30 * time.Second, SKUs: 200, Stock: &stock, Stores: []inventory.Store{inventory.Consensus, inventory.Replicated}}},
		{"load start on replicated rate 2.5", LoadStart{Rate: 2.5, Stores: []inventory.Store{inventory.Replicated}}},
		{"load stop", LoadStop{}},
		{"expect load consensus availability >= 99%", ExpectLoad{Store: inventory.Consensus, Metric: "availability", Op: ">=", Value: 99}},
		{"expect load consensus in ap-southeast-1 availability < 50% last 5s",
			ExpectLoad{Store: inventory.Consensus, Region: "ap-southeast-1", Metric: "availability", Op: "<", Value: 50, Last: 5 * time.Second}},
		{"expect load replicated oversold = 0", ExpectLoad{Store: inventory.Replicated, Metric: "oversold", Op: "=", Value: 0}},
		{"expect load replicated oversold >= 1", ExpectLoad{Store: inventory.Replicated, Metric: "oversold", Op: ">=", Value: 1}},
		{"expect load consensus in us-east-1 p99 < 150", ExpectLoad{Store: inventory.Consensus, Region: "us-east-1", Metric: "p99", Op: "<", Value: 150}},
		{"expect load consensus p99 >= 500ms", ExpectLoad{Store: inventory.Consensus, Metric: "p99", Op: ">=", Value: 500}},
	}
	for _, tc := range tests {
		l, errs := Parse("t.md", []byte(lesson(tc.line)))
		if len(errs) > 0 {
			t.Errorf("%q: %v", tc.line, errs)
			continue
		}
		got := l.Steps[0].Commands[0].Action
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %#v, want %#v", tc.line, got, tc.want)
		}
		back, errs := Parse("t.md", []byte(lesson(got.String())))
		if len(errs) > 0 || !reflect.DeepEqual(back.Steps[0].Commands[0].Action, got) {
			t.Errorf("%q: canonical %q does not parse back (%v)", tc.line, got.String(), errs)
		}
	}
}

func TestParseLoadErrors(t *testing.T) {
	tests := []struct{ line, want string }{
		{"load", "missing start or stop"},
		{"load go", "expected start or stop"},
		{"load start rate 0", "rate must be"},
		{"load start rate fast", "rate must be"},
		{"load start mix -1", "mix must be"},
		{"load start for forever", "for must be a duration"},
		{"load start on nosql", "unknown store \"nosql\""},
		{"load start rate 5 rate 6", "given twice"},
		{"load start speed 5", "unexpected \"speed\""},
		{"load stop now", "unexpected \"now\""},
		{"expect load consensus availability = 99%", "availability takes >= or <"},
		{"expect load consensus availability >= 120%", "percentage from 0 to 100"},
		{"expect load consensus in mars-1 availability >= 99%", "unknown region"},
		{"expect load consensus in us-east-1 oversold = 0", "leave out \"in us-east-1\""},
		{"expect load consensus happiness >= 3", "unknown figure \"happiness\""},
		{"expect load consensus p99 < fast", "MS must be a number"},
		{"expect load consensus oversold = 0 last 5s", "leave out \"last\""},
		{"expect load consensus p99 < 150 last 1.5s", "whole seconds"},
	}
	for _, tc := range tests {
		_, errs := Parse("t.md", []byte(lesson(tc.line)))
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) || errs[0].Line != firstCommandLine {
			t.Errorf("%q: errors %v, want one at line %d containing %q", tc.line, errs, firstCommandLine, tc.want)
		}
	}
}
