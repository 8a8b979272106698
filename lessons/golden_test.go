package lessons

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"caplab/lab"
)

var (
	update      = flag.Bool("update", false, "rewrite testdata/golden/*.txt from this run")
	goldenScale = flag.Float64("golden-latency-scale", 0, "latency scale of the labs the golden tests start")
	goldenAll   = flag.Bool("golden-all", false, "run every built-in lesson against the real lab, not only the golden two")
)

// TestGolden runs lessons headless against a real lab and compares the
// timing-free transcripts with testdata/golden/NAME.txt. -update rewrites
// them; -golden-all also runs (without comparing) every other built-in.
func TestGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real etcd servers")
	}
	builtin, errs := Builtin()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	golden := map[string]bool{"last-iphone": true, "global-tables": true}
	for _, l := range builtin {
		if !golden[l.Name] && !*goldenAll {
			continue
		}
		t.Run(l.Name, func(t *testing.T) {
			ctx := t.Context()
			lb, err := lab.New(ctx, lab.Config{Regions: l.Regions, LatencyScale: *goldenScale})
			if err != nil {
				t.Fatalf("lab.New: %v", err)
			}
			t.Cleanup(func() {
				if err := lb.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			var out bytes.Buffer
			r := NewRunner(l, LabOf(lb), &out)
			r.NoTiming = true
			if _, err := r.RunAll(context.WithoutCancel(ctx)); err != nil {
				t.Errorf("%v\n%s", err, &out)
				return
			}
			if !golden[l.Name] {
				return
			}
			file := filepath.Join("testdata", "golden", l.Name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("transcript differs from %s (run with -update to accept):\ngot:\n%s\nwant:\n%s", file, &out, want)
			}
		})
	}
}
