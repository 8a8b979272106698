package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxFileLines bounds a hand-written, non-test Go file: past it, split the
// file by job (issue 20).
const maxFileLines = 600

// longFileExceptions are files allowed past maxFileLines for now, each
// with the issue that splits it.
var longFileExceptions = map[string]string{}

// TestNoLongFiles walks the repository and names every hand-written,
// non-test Go file longer than maxFileLines.
func TestNoLongFiles(t *testing.T) {
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, "_templ.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		n := bytes.Count(src, []byte("\n"))
		if n <= maxFileLines {
			return nil
		}
		if why, ok := longFileExceptions[filepath.ToSlash(path)]; ok {
			t.Logf("%s: %d lines, allowed for now: %s", path, n, why)
			return nil
		}
		t.Errorf("%s: %d lines, more than %d: split it by job", path, n, maxFileLines)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked %d Go files: the walk did not start at the repository's root", checked)
	}
}
