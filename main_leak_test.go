package main

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test of the command leaves no goroutine behind (the lessons run
// in this process).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// grpc and etcd start process-wide goroutines once.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	)
}
