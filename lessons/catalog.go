package lessons

import (
	"embed"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// builtinFiles is the built-in course. It is read-only.
//
//go:embed builtin/*.md
var builtinFiles embed.FS

var numericPrefix = regexp.MustCompile(`^[0-9]+-`)

// Builtin parses the built-in course, in file order. Its lessons are named
// after their files without the numeric prefix and ".md":
// "02-last-iphone.md" is "last-iphone". The errors list is empty unless the
// binary was built with a broken lesson (a test guards against that).
func Builtin() ([]*Lesson, ErrorList) {
	ls, errs := loadFS(builtinFiles, "builtin", "builtin")
	for _, l := range ls {
		l.Builtin = true
		l.Name = numericPrefix.ReplaceAllString(l.Name, "")
	}
	return ls, errs
}

// ParseFile reads and parses one lesson file.
func ParseFile(name string) (*Lesson, ErrorList) {
	src, err := os.ReadFile(name)
	if err != nil {
		return nil, ErrorList{{File: name, Msg: "cannot read the lesson: " + err.Error()}}
	}
	return Parse(name, src)
}

// LoadDir parses every *.md file directly in dir, sorted by file name. A
// lesson's name is its file name without ".md". Files with errors are left
// out of the lessons; their errors are returned, so that a caller can list
// them and go on with the rest.
func LoadDir(dir string) ([]*Lesson, ErrorList) {
	return loadFS(os.DirFS(dir), ".", dir)
}

// loadFS parses the *.md files in dir of fsys; label prefixes file names.
func loadFS(fsys fs.FS, dir, label string) ([]*Lesson, ErrorList) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, ErrorList{{File: label, Msg: "cannot read the lesson directory: " + err.Error()}}
	}
	var lessons []*Lesson
	var errs ErrorList
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".md") {
			continue
		}
		file := filepath.Join(label, e.Name())
		src, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, &Error{File: file, Msg: "cannot read the lesson: " + err.Error()})
			continue
		}
		l, lerrs := Parse(file, src)
		if len(lerrs) > 0 {
			errs = append(errs, lerrs...)
			continue
		}
		lessons = append(lessons, l)
	}
	return lessons, errs
}

// Catalog is the lessons a learner can pick: the built-in course, plus an
// instructor's own. A user lesson named like a built-in one replaces it, in
// the built-in's place; other user lessons follow, sorted by name.
type Catalog struct {
	lessons  []*Lesson
	replaced map[string]bool
}

// NewCatalog combines built-in and user lessons (see Catalog).
func NewCatalog(builtin, user []*Lesson) *Catalog {
	c := &Catalog{replaced: map[string]bool{}}
	byName := map[string]*Lesson{}
	for _, u := range user {
		byName[u.Name] = u
	}
	for _, b := range builtin {
		if u, ok := byName[b.Name]; ok {
			c.lessons = append(c.lessons, u)
			c.replaced[b.Name] = true
			delete(byName, b.Name)
			continue
		}
		c.lessons = append(c.lessons, b)
	}
	var rest []*Lesson
	for _, u := range user {
		if byName[u.Name] == u {
			rest = append(rest, u)
		}
	}
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].Name < rest[j].Name })
	c.lessons = append(c.lessons, rest...)
	return c
}

// LoadCatalog loads the built-in course and, when dir is not "", the
// lessons in dir. The errors name the files that were skipped.
func LoadCatalog(dir string) (*Catalog, ErrorList) {
	builtin, errs := Builtin()
	var user []*Lesson
	if dir != "" {
		var uerrs ErrorList
		user, uerrs = LoadDir(dir)
		errs = append(errs, uerrs...)
	}
	return NewCatalog(builtin, user), errs
}

// Lessons returns the catalogue's lessons in display order.
func (c *Catalog) Lessons() []*Lesson { return slices.Clone(c.lessons) }

// Lookup finds a lesson by name.
func (c *Catalog) Lookup(name string) (*Lesson, bool) {
	for _, l := range c.lessons {
		if l.Name == name {
			return l, true
		}
	}
	return nil, false
}

// Names lists the lesson names in display order.
func (c *Catalog) Names() []string {
	names := make([]string, len(c.lessons))
	for i, l := range c.lessons {
		names[i] = l.Name
	}
	return names
}

// ReplacesBuiltin reports whether the lesson called name is a user's lesson
// standing in for the built-in of that name.
func (c *Catalog) ReplacesBuiltin(name string) bool { return c.replaced[name] }
