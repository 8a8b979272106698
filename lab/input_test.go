package lab_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// Bad input gets an error naming what is wrong and changes nothing.
func TestBadInputChangesNothing(t *testing.T) {
	l := newLab(t, lab.Config{LatencyScale: 0})
	ctx := ctxT(t, 30*time.Second)
	before := stateKey(l.State())
	cases := []struct {
		name string
		call func() error
		is   error
		says string
	}{
		{"unknown region buy", func() error { _, err := l.Buy(ctx, inventory.Consensus, "X", "eu-west-9", 1); return err }, inventory.ErrUnknownRegion, "us-east-1, eu-west-1, ap-southeast-1"},
		{"unknown store", func() error { _, err := l.Buy(ctx, "mongo", "X", "us-east-1", 1); return err }, inventory.ErrUnknownStore, "consensus, replicated"},
		{"bad sku", func() error { _, err := l.Buy(ctx, inventory.Consensus, "no spaces", "us-east-1", 1); return err }, inventory.ErrBadInput, "SKU"},
		{"qty 0", func() error { _, err := l.Buy(ctx, inventory.Consensus, "X", "us-east-1", 0); return err }, inventory.ErrBadInput, "1 to 1000"},
		{"qty 1001", func() error { _, err := l.Buy(ctx, inventory.Consensus, "X", "us-east-1", 1001); return err }, inventory.ErrBadInput, "1 to 1000"},
		{"negative stock", func() error { _, err := l.Stock(ctx, inventory.Replicated, "X", "us-east-1", -1); return err }, inventory.ErrBadInput, "0 to"},
		{"bad consistency", func() error { _, err := l.Read(ctx, inventory.Consensus, "X", "us-east-1", "eventual"); return err }, inventory.ErrBadInput, "linearizable, serializable or cached"},
		{"cached read of the replicated store", func() error {
			_, err := l.Read(ctx, inventory.Replicated, "X", "us-east-1", inventory.Cached)
			return err
		}, inventory.ErrBadInput, "cached reads are the consensus store's"},
		{"quorum w 0", func() error { return l.Faults().SetQuorum(0, 1) }, inventory.ErrBadInput, "w must be between 1 and 3"},
		{"quorum r 4", func() error { return l.Faults().SetQuorum(1, 4) }, inventory.ErrBadInput, "r must be between 1 and 3"},
		{"partition overlap", func() error {
			return l.Faults().Partition([][]string{{"us-east-1", "eu-west-1"}, {"eu-west-1", "ap-southeast-1"}})
		}, inventory.ErrBadInput, "exactly one group"},
		{"partition missing", func() error { return l.Faults().Partition([][]string{{"us-east-1"}, {"eu-west-1"}}) }, inventory.ErrBadInput, "missing: ap-southeast-1"},
		{"partition unknown", func() error { return l.Faults().Partition([][]string{{"us-east-1", "eu-west-1"}, {"mars-1"}}) }, inventory.ErrUnknownRegion, "mars-1"},
		{"self link", func() error { return l.Faults().SetLink("us-east-1", "us-east-1", false, false) }, inventory.ErrBadInput, "two different regions"},
		{"latency too big", func() error { return l.Faults().SetLatency("us-east-1", "eu-west-1", 5001, false) }, inventory.ErrBadInput, "between 0 and 5000"},
		{"crash unknown", func() error { return l.Faults().Crash("mars-1") }, inventory.ErrUnknownRegion, "mars-1"},
		{"restart running", func() error { return l.Faults().Restart("us-east-1") }, inventory.ErrConflict, "already running"},
		{"check unknown store", func() error { _, err := l.Check("mongo", "X"); return err }, inventory.ErrUnknownStore, "consensus"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %q, want it to say %q", err, tc.says)
			}
		})
	}
	if after := stateKey(l.State()); after != before {
		t.Fatalf("bad input changed the lab:\nbefore %s\nafter  %s", before, after)
	}
	if h := l.History(""); len(h.Operations) != 0 || len(h.Faults) != 0 {
		t.Fatalf("bad input was recorded: %+v", h)
	}
}

// stateKey renders the parts of State that input may change (links,
// quorum, regions' up/down) and leaves out what moves on its own.
func stateKey(s lab.State) string {
	var b strings.Builder
	for _, r := range s.Regions {
		b.WriteString(r.Name)
		if r.Up {
			b.WriteString(" up;")
		}
	}
	for _, k := range s.Links {
		b.WriteString(k.From + ">" + k.To + " " + k.State + ";")
	}
	b.WriteString(strings.Repeat("w", s.Replicated.W) + strings.Repeat("r", s.Replicated.R))
	return b.String()
}
