package lessons

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"caplab/lab/inventory"
)

func TestBuiltinCourse(t *testing.T) {
	ls, errs := Builtin()
	if len(errs) > 0 {
		t.Fatalf("built-in lessons have errors:\n%v", errs)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Name)
		if !l.Builtin || l.Title == "" || l.Summary == "" || l.Intro.HTML == "" {
			t.Errorf("%s: builtin %v, title %q, summary %q, intro %d bytes", l.Name, l.Builtin, l.Title, l.Summary, len(l.Intro.HTML))
		}
		asks := 0
		for i, s := range l.Steps {
			asks += len(s.Polls)
			if s.Prose.HTML == "" {
				t.Errorf("%s: step %d %q has no prose", l.Name, i+1, s.Title)
			}
		}
		if asks == 0 {
			t.Errorf("%s: no ask predictions", l.Name)
		}
		if first := l.Steps[0].Commands; len(first) == 0 || first[0].Action != (Reset{}) {
			t.Errorf("%s: the first command is not reset", l.Name)
		}
		checkFailFast(t, l)
	}
	want := []string{"meet-the-regions", "last-iphone", "stale-reads", "global-tables", "quorum-dial",
		"optimistic-locking", "circuit-breaker", "latency-is-physics", "partial-partitions", "crash-and-recover", "black-friday", "geo-partitioning", "clocks-lie", "locks-and-fencing", "batching-and-caches"}
	if !slices.Equal(names, want) {
		t.Errorf("names = %v, want %v", names, want)
	}
}

// checkFailFast enforces the rule for deterministic breaker expectations:
// "expect fail_fast" only right after three unavailable buys from the same
// region and store.
func checkFailFast(t *testing.T, l *Lesson) {
	t.Helper()
	var prev []Buy
	for _, s := range l.Steps {
		for _, c := range s.Commands {
			b, ok := c.Action.(Buy)
			if !ok {
				if _, isAsk := c.Action.(Ask); !isAsk {
					prev = nil
				}
				continue
			}
			if b.Expect == inventory.FailFast {
				n := len(prev)
				if n < 3 {
					t.Errorf("%s:%d: fail_fast expected without three unavailable buys before it", l.File, c.Line)
					continue
				}
				for _, p := range prev[n-3:] {
					if p.Expect != inventory.Unavailable || p.Region != b.Region || p.Store != b.Store {
						t.Errorf("%s:%d: fail_fast expected, but the three buys before it are not unavailable buys from %s on %s", l.File, c.Line, b.Region, b.Store)
					}
				}
			}
			prev = append(prev, b)
		}
	}
}

func TestLoadDirSkipsBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"good.md":     lesson("reset"),
		"bad.md":      lesson("reset", "explode"),
		"notes.txt":   "not a lesson",
		"01-first.md": lesson("heal"),
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ls, errs := LoadDir(dir)
	var names []string
	for _, l := range ls {
		names = append(names, l.Name)
	}
	if !slices.Equal(names, []string{"01-first", "good"}) {
		t.Errorf("names = %v, want [01-first good]", names)
	}
	if len(errs) != 1 || errs[0].File != filepath.Join(dir, "bad.md") || errs[0].Line != 7 || !strings.Contains(errs[0].Msg, `unknown command "explode"`) {
		t.Errorf("errors = %v", errs)
	}
	if _, errs := LoadDir(filepath.Join(dir, "missing")); len(errs) != 1 || errs[0].Line != 0 {
		t.Errorf("missing dir: errors = %v", errs)
	}
}

func TestCatalogReplacesBuiltins(t *testing.T) {
	mk := func(name string, builtin bool) *Lesson { return &Lesson{Name: name, Builtin: builtin} }
	builtin := []*Lesson{mk("a", true), mk("b", true), mk("c", true)}
	mine := mk("b", false)
	c := NewCatalog(builtin, []*Lesson{mk("z", false), mine, mk("m", false)})
	if got := c.Names(); !slices.Equal(got, []string{"a", "b", "c", "m", "z"}) {
		t.Errorf("names = %v", got)
	}
	if l, ok := c.Lookup("b"); !ok || l != mine || !c.ReplacesBuiltin("b") || c.ReplacesBuiltin("a") || c.ReplacesBuiltin("z") {
		t.Errorf("lookup b = %v, %v; replaced b=%v", l, ok, c.ReplacesBuiltin("b"))
	}
	if _, ok := c.Lookup("nope"); ok {
		t.Error("found a lesson that does not exist")
	}
}
