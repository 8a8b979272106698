package lab_test

import (
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// LostSales names the sales a merge overwrote: both sides of a partition
// sold from the same count, last writer wins kept one chain.
func TestLostSales(t *testing.T) {
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	v := func(wall int64, region string) inventory.Version {
		return inventory.Version{Wall: wall, Region: region}
	}
	stock := inventory.Operation{Store: inventory.Replicated, SKU: "X", Op: inventory.OpStock, Region: "us-east-1", Qty: 3, Outcome: inventory.OK, Quantity: 3, Version: v(1, "us-east-1"), Return: at}
	virginia := inventory.Operation{Store: inventory.Replicated, SKU: "X", Op: inventory.OpBuy, Region: "us-east-1", Qty: 1, Outcome: inventory.OK, Quantity: 2, Version: v(5, "us-east-1"), BaseVersion: v(1, "us-east-1"), Return: at.Add(time.Second)}
	singapore := inventory.Operation{Store: inventory.Replicated, SKU: "X", Op: inventory.OpBuy, Region: "ap-southeast-1", Qty: 1, Outcome: inventory.OK, Quantity: 2, Version: v(6, "ap-southeast-1"), BaseVersion: v(1, "us-east-1"), Return: at.Add(2 * time.Second)}
	after := inventory.Operation{Store: inventory.Replicated, SKU: "X", Op: inventory.OpBuy, Region: "eu-west-1", Qty: 1, Outcome: inventory.OK, Quantity: 1, Version: v(9, "eu-west-1"), BaseVersion: v(6, "ap-southeast-1"), Return: at.Add(3 * time.Second)}

	// One side's sale is lost; the one after the merge builds on the winner.
	got := lab.LostSales([]inventory.Operation{stock, virginia, singapore, after})
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
	if got := lab.LostSales([]inventory.Operation{stock, virginia, chain}); len(got) != 0 {
		t.Errorf("a chain lost %+v", got)
	}
	// A restock starts afresh: what was lost before it is no longer told.
	restock := stock
	restock.Version, restock.Return = v(20, "us-east-1"), at.Add(time.Minute)
	if got := lab.LostSales([]inventory.Operation{stock, virginia, singapore, restock}); len(got) != 0 {
		t.Errorf("after a restock: %+v", got)
	}
	// Other stores and refusals are not the replicated store's merge.
	other := singapore
	other.Store = inventory.Consensus
	failed := singapore
	failed.Outcome = inventory.Unavailable
	if got := lab.LostSales([]inventory.Operation{stock, virginia, failed, other}); len(got) != 0 {
		t.Errorf("a refused buy or another store's sale was lost: %+v", got)
	}
}
