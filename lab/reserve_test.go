package lab_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"caplab/lab"
	"caplab/lab/inventory"
)

// TestLockAndFencing: a shop in Singapore takes the SKU's etcd lock, reads
// the last unit and freezes in a pause longer than its lease TTL; Virginia
// then takes the lock and sells it. Without fencing the woken shop writes
// anyway: two sales of one unit, and the checker reports it. With a
// fencing token the storage refuses the late write: oversold 0.
func TestLockAndFencing(t *testing.T) {
	l := newLab(t, lab.Config{})
	ctx := ctxT(t, 60*time.Second)
	leadFrom(t, l, "us-east-1")
	for _, fenced := range []bool{false, true} {
		sku := "LAST"
		if fenced {
			sku = "LAST-FENCED"
		}
		must(t)(l.Stock(ctx, inventory.Consensus, sku, "us-east-1", 1))
		if err := l.Time().Pause("ap-southeast-1", 4); err != nil {
			t.Fatal(err)
		}
		late, err := l.ReserveAsync(ctx, sku, "ap-southeast-1", fenced) // returns once it froze holding the lock
		if err != nil {
			t.Fatal(err)
		}
		if l.Time().Paused("ap-southeast-1") <= 0 {
			t.Fatal("the reservation returned before the pause: it did not freeze")
		}
		first := must(t)(l.Reserve(ctx, sku, "us-east-1", fenced))
		if first.Outcome != inventory.OK {
			t.Fatalf("fenced=%v: Virginia's reservation: %s (%s), want ok once Singapore's lease expired", fenced, first.Outcome, first.Message)
		}
		woke := <-late
		res, _ := l.Check(inventory.Consensus, sku)
		if !fenced {
			if woke.Outcome != inventory.OK || res.Oversold != 1 || res.Linearizable {
				t.Fatalf("without fencing: Singapore's late write %s (%s), check %+v; want ok, a double sale: oversold 1, not linearizable", woke.Outcome, woke.Message, res)
			}
			continue
		}
		if woke.Outcome != inventory.Conflict || !strings.Contains(woke.Message, "Refused") || res.Oversold != 0 {
			t.Fatalf("with fencing: Singapore's late write %s (%s), check %+v; want refused, oversold 0", woke.Outcome, woke.Message, res)
		}
		if o := must(t)(l.Read(ctx, inventory.Consensus, sku, "eu-west-1", inventory.Linearizable)); o.Quantity != 0 {
			t.Fatalf("with fencing the stock reads %d, want 0", o.Quantity)
		}
	}
}

func TestPauseBadInputChangesNothing(t *testing.T) {
	l := newLab(t, lab.Config{})
	for _, c := range []struct {
		region  string
		seconds float64
		want    error
	}{
		{"ap-southeast-1", -1, inventory.ErrBadInput},
		{"ap-southeast-1", 0, inventory.ErrBadInput},
		{"ap-southeast-1", 61, inventory.ErrBadInput},
		{"mars-1", 8, inventory.ErrUnknownRegion},
	} {
		if err := l.Time().Pause(c.region, c.seconds); !errors.Is(err, c.want) {
			t.Errorf("Pause(%s, %g) = %v, want %v", c.region, c.seconds, err, c.want)
		}
	}
	if d := l.Time().Paused("ap-southeast-1"); d != 0 {
		t.Fatalf("a refused pause paused the shop for %v", d)
	}
}

// TestResetWakesPausedShops: a reset does not wait out a long pause.
func TestResetWakesPausedShops(t *testing.T) {
	l := newLab(t, lab.Config{})
	ctx := ctxT(t, 60*time.Second)
	must(t)(l.Stock(ctx, inventory.Consensus, "P", "us-east-1", 1))
	if err := l.Time().Pause("eu-west-1", 60); err != nil {
		t.Fatal(err)
	}
	late, err := l.ReserveAsync(ctx, "P", "eu-west-1", false)
	if err != nil {
		t.Fatal(err)
	}
	// Without waking the shop, the reset would wait 30 s for the gate and fail.
	if err := l.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	<-late
	if d := l.Time().Paused("eu-west-1"); d != 0 {
		t.Fatalf("after the reset the shop is still paused for %v", d)
	}
}
