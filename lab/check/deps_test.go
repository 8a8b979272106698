package check_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCheckerIsPure: the checker imports neither etcd nor the regions of
// package nodes, nor the lab's history: a verdict is computed from the
// records it is handed, so an export reproduces it anywhere.
func TestCheckerIsPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "caplab/lab/check").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 2 {
		t.Fatalf("go list named %d packages; want the checker's dependencies", len(deps))
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "go.etcd.io/") || d == "caplab/nodes" || d == "caplab/lab/history" || d == "caplab/lab" {
			t.Errorf("package check depends on %s", d)
		}
	}
}
