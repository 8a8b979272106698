package lessons

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCheckBrokenLesson(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main([]string{"check", "testdata/broken.md"}, &stdout, &stderr, nil)
	if code != ExitFail {
		t.Errorf("exit code = %d, want %d", code, ExitFail)
	}
	want := []string{
		`testdata/broken.md:14: unknown region "eu-west-9" (lesson regions: us-east-1, eu-west-1, ap-southeast-1)`,
		`testdata/broken.md:15: unknown outcome "maybe" (expected one of: ok, sold_out, unavailable, fail_fast, conflict, overloaded)`,
		`testdata/broken.md:16: unknown command "buyy" (expected one of: reset, stock, partition, cut, heal, latency, crash, restart, lead, quorum, buy, read, wait, expect, ask, load, clock, pause, reserve, groupcommit); did you mean "buy"?`,
		`testdata/broken.md:17: quorum: W must be a whole number from 1 to 3, got "0"`,
		`testdata/broken.md:18: unknown store "eventual" (expected consensus, replicated or geo)`,
		`testdata/broken.md:24: partition: ap-southeast-1 in no group (expected every lesson region in exactly one group: us-east-1, eu-west-1, ap-southeast-1)`,
		`testdata/broken.md:25: ask: answer "perhaps" is not one of the options (options: yes | no)`,
		`testdata/broken.md:26: wait: invalid duration "forever" (expected a duration like 2s or 500ms, or leader, or converged)`,
	}
	got := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("stderr:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(stdout.String(), "8 errors in 1 file\n") {
		t.Errorf("stdout = %q", stdout.String())
	}
}

func TestCheckExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.md")
	if err := os.WriteFile(good, []byte(lesson("reset")), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"built-ins", []string{"check"}, ExitOK},
		{"good file", []string{"check", good}, ExitOK},
		{"good dir", []string{"check", dir}, ExitOK},
		{"lessons flag", []string{"--lessons", dir, "check"}, ExitOK},
		{"broken file", []string{"check", "testdata/broken.md"}, ExitFail},
		{"good and broken", []string{"check", good, "testdata/broken.md"}, ExitFail},
		{"testdata dir holds broken.md", []string{"check", "testdata"}, ExitFail},
		{"missing file", []string{"check", filepath.Join(dir, "nope.md")}, ExitFail},
		{"empty dir", []string{"check", empty}, ExitFail},
		{"no command", nil, ExitUsage},
		{"unknown command", []string{"frobnicate"}, ExitUsage},
		{"unknown flag", []string{"check", "--verbose"}, ExitUsage},
		{"help", []string{"help"}, ExitOK},
		{"list", []string{"list"}, ExitOK},
		{"list with broken dir", []string{"list", "--lessons", "testdata"}, ExitFail},
		{"run without lesson", []string{"run"}, ExitUsage},
		{"run unknown lesson", []string{"run", "no-such-lesson"}, ExitUsage},
		{"run broken file", []string{"run", "testdata/broken.md"}, ExitFail},
		{"bad latency scale", []string{"run", "last-iphone", "--latency-scale", "fast"}, ExitUsage},
		{"negative latency scale", []string{"run", "last-iphone", "--latency-scale=-1"}, ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Main(tt.args, &stdout, &stderr, nil); code != tt.code {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, &stdout, &stderr)
			}
		})
	}
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"last-iphone.md": "---\ntitle: My own last iPhone\n---\n## S\n",
		"extra.md":       "---\ntitle: Extra\n---\n## S\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"list", "--lessons=" + dir}, &stdout, &stderr, nil); code != ExitOK {
		t.Fatalf("exit code %d, stderr:\n%s", code, &stderr)
	}
	out := stdout.String()
	for _, want := range []string{"meet-the-regions", "crash-and-recover", "My own last iPhone", "replaces the built-in lesson", "extra"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "The last iPhone") {
		t.Errorf("the replaced built-in is still listed:\n%s", out)
	}
}

func TestRunUsesNewLab(t *testing.T) {
	var gotScale float64
	var gotRegions []string
	closed := false
	newLab := func(ctx context.Context, scale float64, regions []string) (Lab, func() error, error) {
		gotScale, gotRegions = scale, regions
		return newFakeLab(regions), func() error { closed = true; return nil }, nil
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "two.md")
	src := "---\nregions: [us-east-1, eu-west-1]\n---\n## S\n```lab\nreset\nwait leader\nstock X 1\nbuy consensus X from eu-west-1 expect ok\nbuy consensus X from us-east-1 expect ok\n```\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := Main([]string{"run", file, "--latency-scale", "0.5", "--no-timing"}, &stdout, &stderr, newLab)
	if code != ExitFail {
		t.Errorf("exit code = %d, want %d", code, ExitFail)
	}
	if gotScale != 0.5 || !slices.Equal(gotRegions, []string{"us-east-1", "eu-west-1"}) || !closed {
		t.Errorf("newLab got scale %v, regions %v; closed %v", gotScale, gotRegions, closed)
	}
	if want := file + ":10: expected buy consensus X from us-east-1 → ok, got sold_out (0 left)\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
}

// Every line of "lessons list" starts with a name "lessons run" accepts,
// followed by the title: no header line.
func TestListLinesStartWithRunnableName(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"list"}, &stdout, &stderr, nil); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	cat, _ := LoadCatalog("")
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != len(cat.Lessons()) {
		t.Fatalf("%d lines for %d lessons:\n%s", len(lines), len(cat.Lessons()), stdout.String())
	}
	for i, line := range lines {
		l := cat.Lessons()[i]
		name, rest, _ := strings.Cut(line, " ")
		if _, ok := cat.Lookup(name); !ok || name != l.Name {
			t.Errorf("line %d starts with %q, not a lesson name", i+1, name)
		}
		if !strings.HasPrefix(strings.TrimSpace(rest), l.Title) {
			t.Errorf("line %d: title %q does not follow the name: %q", i+1, l.Title, line)
		}
		if want := fmt.Sprintf("~%d min", l.Minutes()); !strings.Contains(rest, want) || l.Minutes() < 3 {
			t.Errorf("line %d: no duration %q (or an implausible one): %q", i+1, want, line)
		}
	}
}

// "check" warns about a spoiler and still passes.
func TestCheckWarnsAboutSpoilers(t *testing.T) {
	dir := t.TempDir()
	src := strings.Replace(spoilerLesson, "Singapore is cut off from the others.", "Singapore is cut off, so it will refuse.", 1)
	file := filepath.Join(dir, "spoiler.md")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"check", file}, &stdout, &stderr, nil); code != ExitOK {
		t.Errorf("exit code %d, want %d (a warning does not fail)", code, ExitOK)
	}
	if !strings.Contains(stderr.String(), `spoiler.md:20: warning: the prose before this ask says "refuse", which gives away "unavailable"`) {
		t.Errorf("stderr = %q", stderr.String())
	}
	if !strings.Contains(stdout.String(), "1 lesson, all valid; 1 warning") {
		t.Errorf("stdout = %q", stdout.String())
	}
}

// TestHelpAnywhere: -h or --help after a command prints the usage and
// starts nothing (it was read as a lesson named "--help").
func TestHelpAnywhere(t *testing.T) {
	for _, args := range [][]string{{"run", "--help"}, {"run", "-h"}, {"check", "--help"}, {"help"}, {"--latency-scale", "0", "run", "help"}} {
		var stdout, stderr bytes.Buffer
		started := false
		newLab := func(context.Context, float64, []string) (Lab, func() error, error) {
			started = true
			return nil, nil, os.ErrInvalid
		}
		if code := Main(args, &stdout, &stderr, newLab); code != ExitOK || started {
			t.Errorf("%v: exit %d, lab started %v, stderr %q; want 0 and no lab", args, code, started, stderr.String())
		}
		if !strings.HasPrefix(stdout.String(), "usage: caplab lessons") {
			t.Errorf("%v: stdout %q, want the usage", args, stdout.String())
		}
	}
}
