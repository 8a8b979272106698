package lab

import (
	"context"
	"fmt"
	"time"
)

// answerGrace is how long past its deadline a store call may take to
// return before its caller is answered without it. A store call ends soon
// after its context does (etcd's client and the lab's own stores return
// the context's error), but on a loaded machine "soon" has been measured
// at up to 1.5 s past a 1 s deadline inside the etcd client (issue 9,
// docs/benchmarks.md "Soak"): the answer does not wait for that.
const answerGrace = 50 * time.Millisecond

// withinDeadline runs call with ctx and returns its outcome, or, when the
// call has not returned answerGrace after ctx ended, an unavailable outcome
// saying so. The call goes on in the background until it returns (its
// context is over, so it ends soon); what it did counts as maybe done —
// exactly like any other unavailable write, which the checker treats as
// indeterminate.
func withinDeadline(ctx context.Context, op Operation, timeout time.Duration, call func(context.Context) Outcome) Outcome {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	res := make(chan Outcome, 1)
	go func() {
		defer cancel()
		res <- call(ctx)
	}()
	select {
	case o := <-res:
		return o
	case <-ctx.Done():
	}
	grace := time.NewTimer(answerGrace)
	defer grace.Stop()
	select {
	case o := <-res:
		return o
	case <-grace.C:
	}
	why := "did not answer within its " + timeout.String() + " deadline"
	if ctx.Err() == context.Canceled {
		why = "was cancelled by the caller before it answered"
	}
	return Outcome{Outcome: Unavailable,
		Message: fmt.Sprintf("Unavailable: the %s store at %s %s — the request may or may not have taken effect.", op.Store, cityOf(op.Region), why)}
}
