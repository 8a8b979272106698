package guard_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"caplab/lab/guard"
	"caplab/lab/inventory"
)

// TestWithinDeadlineAnswersOnTime: a store call that overruns its context
// (as the etcd client was measured to do on a loaded machine) does not hold
// the answer past the deadline + AnswerGrace; one that returns in time is
// answered with its own outcome; the overrunning call still ends.
func TestWithinDeadlineAnswersOnTime(t *testing.T) {
	op := inventory.Operation{Store: inventory.Consensus, Region: "us-east-1", Op: inventory.OpBuy, Qty: 1}
	ended := make(chan struct{})
	start := time.Now()
	out := guard.WithinDeadline(context.Background(), op, 100*time.Millisecond, city, func(ctx context.Context) inventory.Outcome {
		defer close(ended)
		<-ctx.Done()
		time.Sleep(time.Second) // ignores its deadline for a second
		return inventory.Outcome{Outcome: inventory.OK}
	})
	took := time.Since(start)
	if out.Outcome != inventory.Unavailable || !strings.Contains(out.Message, "deadline") {
		t.Fatalf("overrunning call answered %+v; want unavailable naming the deadline", out)
	}
	if took > 100*time.Millisecond+guard.AnswerGrace+300*time.Millisecond {
		t.Fatalf("overrunning call answered after %v; want about 100 ms + %v", took, guard.AnswerGrace)
	}
	select {
	case <-ended:
		t.Fatal("the call was waited for")
	default:
	}
	<-ended // it ends by itself: nothing leaks

	out = guard.WithinDeadline(context.Background(), op, time.Second, city, func(ctx context.Context) inventory.Outcome {
		if _, ok := ctx.Deadline(); !ok {
			return inventory.Outcome{Outcome: inventory.Conflict}
		}
		return inventory.Outcome{Outcome: inventory.SoldOut, Quantity: 7}
	})
	if out.Outcome != inventory.SoldOut || out.Quantity != 7 {
		t.Fatalf("call in time answered %+v; want its own outcome, with a deadline on its context", out)
	}
}

// city names a region as the lab's answers do.
func city(region string) string { return "City (" + region + ")" }
