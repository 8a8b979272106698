package lab

import (
	"strings"
	"testing"
	"time"
)

// LostSales names the sales a merge overwrote: both sides of a partition
// sold from the same count, last writer wins kept one chain.
func TestLostSales(t *testing.T) {
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	v := func(wall int64, region string) Version { return Version{Wall: wall, Region: region} }
	stock := Operation{Store: Replicated, SKU: "X", Op: OpStock, Region: "us-east-1", Qty: 3, Outcome: OK, Quantity: 3, Version: v(1, "us-east-1"), Return: at}
	virginia := Operation{Store: Replicated, SKU: "X", Op: OpBuy, Region: "us-east-1", Qty: 1, Outcome: OK, Quantity: 2, Version: v(5, "us-east-1"), BaseVersion: v(1, "us-east-1"), Return: at.Add(time.Second)}
	singapore := Operation{Store: Replicated, SKU: "X", Op: OpBuy, Region: "ap-southeast-1", Qty: 1, Outcome: OK, Quantity: 2, Version: v(6, "ap-southeast-1"), BaseVersion: v(1, "us-east-1"), Return: at.Add(2 * time.Second)}
	after := Operation{Store: Replicated, SKU: "X", Op: OpBuy, Region: "eu-west-1", Qty: 1, Outcome: OK, Quantity: 1, Version: v(9, "eu-west-1"), BaseVersion: v(6, "ap-southeast-1"), Return: at.Add(3 * time.Second)}

	// One side's sale is lost; the one after the merge builds on the winner.
	got := LostSales([]Operation{stock, virginia, singapore, after})
	if len(got) != 1 || len(got[0].Sales) != 1 || got[0].Sales[0].Region != "us-east-1" || got[0].Winner.Region != "eu-west-1" {
		t.Fatalf("got %+v", got)
	}
	s := got[0].Sentence()
	for _, want := range []string{"every region now reads 1 X", "kept Ireland's write", "a sale was lost: N. Virginia's sale of 1 unit at 09:00:01"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
	// No partition, no loss: a chain of sales.
	chain := virginia
	chain.Region, chain.Version, chain.BaseVersion = "ap-southeast-1", v(7, "ap-southeast-1"), v(5, "us-east-1")
	if got := LostSales([]Operation{stock, virginia, chain}); len(got) != 0 {
		t.Errorf("a chain lost %+v", got)
	}
	// A restock starts afresh: what was lost before it is no longer told.
	restock := stock
	restock.Version, restock.Return = v(20, "us-east-1"), at.Add(time.Minute)
	if got := LostSales([]Operation{stock, virginia, singapore, restock}); len(got) != 0 {
		t.Errorf("after a restock: %+v", got)
	}
	// Other stores and refusals are not the replicated store's merge.
	other := singapore
	other.Store = Consensus
	failed := singapore
	failed.Outcome = Unavailable
	if got := LostSales([]Operation{stock, virginia, failed, other}); len(got) != 0 {
		t.Errorf("a refused buy or another store's sale was lost: %+v", got)
	}
}
