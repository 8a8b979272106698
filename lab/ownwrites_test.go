package lab_test

import (
	"slices"
	"testing"

	"caplab/lab"
	"caplab/lab/inventory"
)

// TestLedgerOfOneTxnAcrossSKUs: group commit writes several SKUs at one
// revision; each SKU's write there is the lab's own, once — and a write
// of a SKU the Txn did not carry, at that revision, is not.
func TestLedgerOfOneTxnAcrossSKUs(t *testing.T) {
	buy := func(sku string, rev int64) inventory.Operation {
		return inventory.Operation{Store: inventory.Consensus, Op: inventory.OpBuy, SKU: sku, Outcome: inventory.OK, Version: inventory.Version{Wall: rev}}
	}
	ops := []inventory.Operation{buy("IPHONE", 40), buy("IPHONE", 40), buy("PIXEL", 40), buy("GALAXY", 41)}
	seen := []inventory.Operation{buy("IPHONE", 40), buy("PIXEL", 40), buy("XPERIA", 40), buy("PIXEL", 40), buy("GALAXY", 41)}
	got := lab.LedgerExplains(ops, seen)
	want := []bool{true, true, false, false, true}
	if !slices.Equal(got, want) {
		t.Fatalf("explained %v, want %v (IPHONE and PIXEL at 40 once each, XPERIA never, GALAXY at 41)", got, want)
	}
}
