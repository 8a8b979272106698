package audit

import (
	"time"

	"caplab/lab/inventory"
)

// Operation builders for hand-made histories (the checker's own tests in
// package check have the same ones).

var checkEpoch = time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)

// ckMs is a time checkEpoch + n milliseconds.
func ckMs(n int64) time.Time { return checkEpoch.Add(time.Duration(n) * time.Millisecond) }

type ckOption func(*inventory.Operation)

func ckVersion(n int64) ckOption {
	return func(o *inventory.Operation) { o.Version = inventory.Version{Wall: n} }
}
func ckBase(n int64) ckOption {
	return func(o *inventory.Operation) { o.BaseVersion = inventory.Version{Wall: n} }
}
func ckRegion(r string) ckOption { return func(o *inventory.Operation) { o.Region = r } }

// ckOp builds one consensus-store operation on SKU "X" from us-east-1,
// called at call ms and returned at ret ms.
func ckOp(id int, op inventory.Op, outcome inventory.Kind, qty, quantity int, call, ret int64, opts ...ckOption) inventory.Operation {
	o := inventory.Operation{
		ID: id, Region: "us-east-1", Store: inventory.Consensus, SKU: "X", Op: op, Qty: qty,
		Outcome: outcome, Quantity: quantity, Call: ckMs(call), Return: ckMs(ret),
	}
	if op == inventory.OpRead {
		o.Qty = 0
		o.Consistency = inventory.Linearizable
	}
	for _, f := range opts {
		f(&o)
	}
	return o
}
