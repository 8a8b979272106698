package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestLoadFailOn: "caplab load … --fail-on oversold>0" exits 1 on the
// replicated store (W=1) when a region is cut off while the doorbuster
// runs out, and 0 on the consensus store under the same schedule.
func TestLoadFailOn(t *testing.T) {
	common := []string{"load", "--latency-scale", "0", "--rate", "30", "--mix", "2", "--skus", "20", "--doorbuster-stock", "40",
		"--doorbuster-share", "0.3", "--duration", "4s", "--cut", "ap-southeast-1@500ms", "--heal", "@3500ms", "--fail-on", "oversold>0", "--quiet", "--seed", "3"}
	for _, tc := range []struct {
		store string
		exit  int
	}{{"replicated", 1}, {"consensus", 0}} {
		t.Run(tc.store, func(t *testing.T) {
			var out, errb strings.Builder
			code := run(append(common, "--stores", tc.store), &out, &errb)
			if code != tc.exit {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.exit, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tc.store+"  ap-southeast-1") || !strings.Contains(out.String(), "oversold") {
				t.Errorf("no table row for %s in ap-southeast-1:\n%s", tc.store, out.String())
			}
			if tc.exit == 1 && !strings.Contains(errb.String(), "--fail-on oversold>0: replicated: oversold") {
				t.Errorf("stderr does not say which condition held:\n%s", errb.String())
			}
		})
	}
}

// TestLoadBadFlags: bad flags are a usage error before any lab starts.
func TestLoadBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"load", "--cut", "ap-southeast-1"},
		{"load", "--fail-on", "happiness>3"},
		{"load", "--latency", "a/b@3s"},
		{"load", "--json", "--csv"},
	} {
		var out, errb strings.Builder
		if code := run(args, &out, &errb); code != 2 || strings.Contains(errb.String(), "starting a lab") {
			t.Errorf("%v: exit %d, want 2 without starting a lab; stderr:\n%s", args, code, errb.String())
		}
	}
}

// TestLoadSmallCatalogueAndPlainProgress: "caplab load --skus 3" runs (the
// checked sample follows the catalogue instead of refusing a field the
// user never set), and with stderr not a terminal progress is plain
// lines: no carriage returns, shares within 0..100 %.
func TestLoadSmallCatalogueAndPlainProgress(t *testing.T) {
	var out, errb strings.Builder
	code := run([]string{"load", "--latency-scale", "0", "--skus", "3", "--rate", "5", "--mix", "2", "--duration", "2s", "--seed", "7"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	progress := errb.String()
	if strings.Contains(progress, "\r") {
		t.Errorf("carriage returns in progress written to a file:\n%q", progress)
	}
	for _, want := range []string{"caplab load: running 0/2 s:", "caplab load: finished"} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress lacks %q:\n%s", want, progress)
		}
	}
	for _, m := range regexp.MustCompile(`(-?[0-9.]+)%`).FindAllStringSubmatch(progress, -1) {
		if v, err := strconv.ParseFloat(m[1], 64); err != nil || v < 0 || v > 100 {
			t.Errorf("progress shows %s%%:\n%s", m[1], progress)
		}
	}
}

// TestLoadCachedReads: "caplab load --mix 40 --consistency cached" runs
// the consensus store's reads from the regions' caches: every region
// answers reads, nothing is oversold, and the checker calls the recorded
// operations linearizable (cached reads counted like serializable ones).
func TestLoadCachedReads(t *testing.T) {
	var out, errb strings.Builder
	code := run([]string{"load", "--latency-scale", "0", "--stores", "consensus", "--consistency", "cached", "--mix", "40",
		"--rate", "10", "--skus", "50", "--duration", "3s", "--seed", "5", "--quiet", "--fail-on", "oversold>0"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	rows := regexp.MustCompile(`(?m)^\s*consensus\s+(\S+)\s+\d+\s+\S+\s+\d+\s+\d+\s+\S+\s+\S+\s+(\d+)`).FindAllStringSubmatch(out.String(), -1)
	if len(rows) != 3 {
		t.Fatalf("want a consensus row per region:\n%s", out.String())
	}
	for _, r := range rows {
		if n, _ := strconv.Atoi(r[2]); n == 0 {
			t.Errorf("%s answered no reads:\n%s", r[1], out.String())
		}
	}
	if !regexp.MustCompile(`checker \(\d+ recorded operations.*\): linearizable`).MatchString(out.String()) {
		t.Errorf("the checker's verdict is not linearizable:\n%s", out.String())
	}
}
