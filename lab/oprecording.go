package lab

import "context"

// OpRecording says what the lab keeps of one operation besides its counters
// and its answer. The zero value is what the lab does for every click,
// lesson step and script: the operation goes into the History and is
// published to subscribers (the page's live feed).
//
// A load generator runs thousands of operations a second. Publishing each
// one would flood every viewer, and recording each one would fill the
// History (capped at MaxHistoryOperations) in seconds, crowding out what
// the checker needs. A load therefore records only what it will check (the
// doorbuster SKU and a fixed sample, see package lab/load) and publishes
// nothing one by one; it reports its own aggregates instead.
type OpRecording struct {
	// SkipHistory leaves the operation out of the History (its Outcome's
	// OpID is then 0).
	SkipHistory bool
	// SkipPublish sends no EventOperation for it to subscribers.
	SkipPublish bool
}

type opRecordingKey struct{}

// WithOpRecording returns a context under which Stock, Buy and Read follow
// rec. Everything else about the operation is unchanged: the same checks,
// breaker, store path, deadline, counters and Outcome.
func WithOpRecording(ctx context.Context, rec OpRecording) context.Context {
	return context.WithValue(ctx, opRecordingKey{}, rec)
}

// opRecordingOf is the OpRecording ctx carries (the zero value if none).
func opRecordingOf(ctx context.Context) OpRecording {
	rec, _ := ctx.Value(opRecordingKey{}).(OpRecording)
	return rec
}
