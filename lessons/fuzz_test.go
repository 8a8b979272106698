package lessons

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error points at a
// line of the file, and that every parsed command's canonical spelling
// parses back to the same action.
func FuzzParse(f *testing.F) {
	f.Add([]byte(lesson("reset", "stock X 1", `ask "Q" answer yes`)))
	f.Add([]byte("---\ntitle: A\nregions: [us-east-1, eu-west-1]\n---\n## S\n```lab\npartition us-east-1 | eu-west-1\n```\n"))
	f.Add([]byte("---\nregions: [\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		l, errs := Parse("f.md", src)
		if l == nil {
			t.Fatal("Parse returned a nil lesson")
		}
		lines := max(bytes.Count(src, []byte("\n"))+1, 1)
		for _, e := range errs {
			if e.Line < 1 || e.Line > lines {
				t.Errorf("error at line %d, file has %d lines: %v", e.Line, lines, e)
			}
			if e.File != "f.md" || e.Msg == "" {
				t.Errorf("malformed error %#v", e)
			}
		}
		if len(errs) > 0 {
			return
		}
		for _, s := range l.Steps {
			for _, c := range s.Commands {
				if c.Line < 1 || c.Line > lines {
					t.Errorf("command at line %d, file has %d lines", c.Line, lines)
				}
				p := &parser{file: "f.md", regions: l.Regions}
				back, ok := p.command(c.Line, c.Action.String())
				if !ok || !reflect.DeepEqual(back.Action, c.Action) {
					t.Errorf("%q: canonical form %q parses to %#v, %v", c.Source, c.Action.String(), back.Action, p.errs)
				}
			}
		}
	})
}
