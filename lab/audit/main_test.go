package audit

import (
	"testing"

	"go.uber.org/goleak"
)

// The log's writer goroutine must end with Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
