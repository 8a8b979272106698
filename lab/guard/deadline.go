package guard

import (
	"context"
	"fmt"
	"time"

	"caplab/lab/inventory"
)

// AnswerGrace is how long past its deadline a store call may take to
// return before its caller is answered without it. A store call ends soon
// after its context does (etcd's client and the lab's own stores return
// the context's error), but on a loaded machine "soon" has been measured
// at up to 1.5 s past a 1 s deadline inside the etcd client (issue 9,
// docs/benchmarks.md "Soak"): the answer does not wait for that.
const AnswerGrace = 50 * time.Millisecond

// WithinDeadline runs call with ctx bounded by timeout and returns its
// outcome, or, when the call has not returned AnswerGrace after that
// context ended, an unavailable outcome saying so (place names op's region
// for a person). The call goes on in the background until it returns (its
// context is over, so it ends soon); what it did counts as maybe done —
// exactly like any other unavailable write, which the checker treats as
// indeterminate.
func WithinDeadline(ctx context.Context, op inventory.Operation, timeout time.Duration, place func(region string) string, call func(context.Context) inventory.Outcome) inventory.Outcome {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	res := make(chan inventory.Outcome, 1)
	go func() {
		defer cancel()
		res <- call(ctx)
	}()
	select {
	case o := <-res:
		return o
	case <-ctx.Done():
	}
	grace := time.NewTimer(AnswerGrace)
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
	return inventory.Outcome{Outcome: inventory.Unavailable,
		Message: fmt.Sprintf("Unavailable: the %s store at %s %s — the request may or may not have taken effect.", op.Store, place(op.Region), why)}
}
