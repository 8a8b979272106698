package lab_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// maxLabMethods bounds the methods of Lab (issue 20): it is a facade over
// rooms with one job each, not a building without walls. A new concern
// gets a room (Faults, Time, Geo, Recorder, or a new one), not more Lab
// methods.
const maxLabMethods = 30

// TestLabIsAFacade counts the methods declared on *Lab in the package's
// non-test files, and names them when there are too many.
func TestLabIsAFacade(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var methods []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 {
				continue
			}
			if star, ok := fd.Recv.List[0].Type.(*ast.StarExpr); ok {
				if id, ok := star.X.(*ast.Ident); ok && id.Name == "Lab" {
					methods = append(methods, fd.Name.Name+" ("+name+")")
				}
			}
		}
	}
	if len(methods) == 0 {
		t.Fatal("found no methods of *Lab: the test reads the wrong directory")
	}
	if len(methods) > maxLabMethods {
		sort.Strings(methods)
		t.Errorf("Lab has %d methods, at most %d: move concerns into rooms. They are:\n%s", len(methods), maxLabMethods, strings.Join(methods, "\n"))
	}
	t.Logf("Lab has %d methods", len(methods))
}
