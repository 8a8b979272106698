package lessons

import (
	"bytes"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"caplab/lab/inventory"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/text"
)

// DefaultRegions are the regions of a lesson whose front matter names none.
func DefaultRegions() []string {
	return []string{"us-east-1", "eu-west-1", "ap-southeast-1"}
}

// KnownRegions is the region catalogue a lesson may choose from.
func KnownRegions() []string {
	return []string{"us-east-1", "eu-west-1", "ap-southeast-1", "us-west-2", "eu-central-1", "ap-northeast-1", "sa-east-1"}
}

// Parse parses one lesson file. file names it in errors (and gives the
// lesson its Name: the base name without ".md"); src is its content. Parse
// does no I/O.
//
// Parse reports every problem it finds, not just the first. When the list
// is empty the lesson is valid; otherwise the returned lesson holds what
// could be parsed and must not be run.
func Parse(file string, src []byte) (*Lesson, ErrorList) {
	p := &parser{file: file}
	l := p.parse(src)
	sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
	return l, p.errs
}

// parser holds the state of one Parse call.
type parser struct {
	file    string
	errs    ErrorList
	regions []string // the lesson's regions, for validating commands
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) parse(src []byte) *Lesson {
	name := strings.TrimSuffix(path.Base(strings.ReplaceAll(p.file, "\\", "/")), ".md")
	l := &Lesson{Name: name, File: p.file}
	src = bytes.TrimPrefix(src, []byte("\ufeff"))
	lines := splitLines(src)

	body, bodyLine := src, 0 // bodyLine: file line of the body's first line, minus one
	if len(lines) > 0 && trimLine(lines[0]) == "---" {
		end := -1
		for i := 1; i < len(lines); i++ {
			if trimLine(lines[i]) == "---" {
				end = i
				break
			}
		}
		if end < 0 {
			p.errorf(1, "front matter opened with --- on line 1 is never closed (expected a line with only ---)")
			return l
		}
		p.frontMatter(l, lines[1:end])
		off := 0
		for _, ln := range lines[:end+1] {
			off += len(ln)
		}
		body, bodyLine = src[off:], end+1
	}
	if l.Title == "" {
		l.Title = l.Name
	}
	if l.Regions == nil {
		l.Regions = DefaultRegions()
	}
	p.regions = l.Regions
	p.body(l, body, bodyLine)
	if len(l.Steps) == 0 {
		p.errorf(1, "the lesson has no steps (expected at least one \"## \" heading followed by prose and ```lab blocks)")
	}
	return l
}

// splitLines splits src after each '\n', keeping the newlines.
func splitLines(src []byte) [][]byte {
	var lines [][]byte
	for len(src) > 0 {
		i := bytes.IndexByte(src, '\n')
		if i < 0 {
			lines = append(lines, src)
			break
		}
		lines = append(lines, src[:i+1])
		src = src[i+1:]
	}
	return lines
}

func trimLine(b []byte) string { return strings.TrimSpace(string(b)) }

// frontMatter parses the lines between the two "---" lines. The first of
// them is file line 2.
func (p *parser) frontMatter(l *Lesson, lines [][]byte) {
	seen := map[string]int{}
	for i, raw := range lines {
		line := i + 2
		s := trimLine(raw)
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		key, value, ok := strings.Cut(s, ":")
		key = strings.TrimSpace(key)
		value = strings.TrimSpace(value)
		if !ok || key == "" {
			p.errorf(line, "malformed front matter line %s (expected key: value, with key one of title, summary, regions)", inventory.Echo(s))
			continue
		}
		if prev, dup := seen[key]; dup {
			p.errorf(line, "front matter key %s appears twice (first on line %d)", inventory.Echo(key), prev)
			continue
		}
		seen[key] = line
		switch key {
		case "title":
			l.Title = unquoteValue(value)
			if l.Title == "" {
				p.errorf(line, "empty title (expected title: and the lesson's title)")
			}
		case "summary":
			l.Summary = unquoteValue(value)
		case "regions":
			l.Regions = p.regionList(line, value)
		default:
			p.errorf(line, "unknown front matter key %s (expected one of: title, summary, regions)", inventory.Echo(key))
		}
	}
}

// unquoteValue strips one pair of matching quotes around a front matter
// value, as YAML writers tend to add them.
func unquoteValue(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// regionList parses "[a, b, c]". It returns nil when the list is unusable,
// so the lesson falls back to the default regions and commands are still
// checked.
func (p *parser) regionList(line int, v string) []string {
	if !strings.HasPrefix(v, "[") || !strings.HasSuffix(v, "]") {
		p.errorf(line, "regions must be a list in brackets, like [us-east-1, eu-west-1, ap-southeast-1] (got %s)", inventory.Echo(v))
		return nil
	}
	inner := strings.TrimSpace(v[1 : len(v)-1])
	if inner == "" {
		p.errorf(line, "regions is empty (expected at least one of: %s)", strings.Join(KnownRegions(), ", "))
		return nil
	}
	var regions []string
	bad := false
	for item := range strings.SplitSeq(inner, ",") {
		r := unquoteValue(strings.TrimSpace(item))
		switch {
		case r == "":
			p.errorf(line, "empty region name in regions list %s", v)
			bad = true
		case !slices.Contains(KnownRegions(), r):
			p.errorf(line, "unknown region %s in regions (known regions: %s)", inventory.Echo(r), strings.Join(KnownRegions(), ", "))
			bad = true
		case slices.Contains(regions, r):
			p.errorf(line, "region %s is listed twice in regions", inventory.Echo(r))
			bad = true
		default:
			regions = append(regions, r)
		}
	}
	if bad {
		return nil
	}
	return regions
}

// section is the intro or one step, in body coordinates.
type section struct {
	heading *ast.Heading // nil for the intro
	start   int          // first body line of the section (0-based), heading included
	end     int          // one past the last body line
	head    int          // body lines [start, start+head) are the heading
	blocks  []*ast.FencedCodeBlock
	ranges  [][2]int // body line ranges [from, to) of the lab blocks
}

// body parses the Markdown after the front matter. bodyLine is the number of
// file lines before it.
func (p *parser) body(l *Lesson, body []byte, bodyLine int) {
	md := goldmark.New()
	doc := md.Parser().Parse(text.NewReader(body))
	lines := splitLines(body)
	starts := make([]int, len(lines))
	off := 0
	for i, ln := range lines {
		starts[i] = off
		off += len(ln)
	}
	lineOf := func(offset int) int { // 0-based body line of a byte offset
		return max(sort.Search(len(starts), func(i int) bool { return starts[i] > offset })-1, 0)
	}

	// Lab blocks below the top level would be easy to miss: say so.
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if fb, ok := n.(*ast.FencedCodeBlock); ok && entering && n.Parent() != doc && isLab(fb, body) {
			p.errorf(bodyLine+lineOf(max(n.Pos(), 0))+1, "this lab block is inside a list or quote, where it is not run (expected ```lab blocks at the top level, not indented)")
		}
		return ast.WalkContinue, nil
	})

	secs := []*section{{start: 0}}
	for n := doc.FirstChild(); n != nil; n = n.NextSibling() {
		cur := secs[len(secs)-1]
		switch n := n.(type) {
		case *ast.Heading:
			if n.Level != 2 {
				continue
			}
			first := lineOf(max(n.Pos(), 0))
			last := first
			if n.Lines().Len() > 0 {
				last = lineOf(n.Lines().At(n.Lines().Len() - 1).Start)
				if last > first || !isATX(lines[first]) { // setext: the underline follows the text
					last++
				}
			}
			cur.end = first
			secs = append(secs, &section{heading: n, start: first, head: last + 1 - first})
		case *ast.FencedCodeBlock:
			if !isLab(n, body) {
				continue
			}
			from := lineOf(max(n.Pos(), 0))
			to := from + 1
			if n.Lines().Len() > 0 {
				to = lineOf(n.Lines().At(n.Lines().Len()-1).Start) + 1
			}
			if to < len(lines) && isClosingFence(lines[from], lines[to]) {
				to++
			}
			cur.blocks = append(cur.blocks, n)
			cur.ranges = append(cur.ranges, [2]int{from, to})
		}
	}
	secs[len(secs)-1].end = len(lines)

	for i, s := range secs {
		step := Step{Line: bodyLine + s.start + 1, Prose: p.prose(md, lines, s, s.start+s.head, s.end)}
		step.Pose = step.Prose
		for _, b := range s.blocks {
			for j := 0; j < b.Lines().Len(); j++ {
				seg := b.Lines().At(j)
				line := bodyLine + lineOf(seg.Start) + 1
				if cmd, ok := p.command(line, string(seg.Value(body))); ok {
					step.Commands = append(step.Commands, cmd)
					if ask, isAsk := cmd.Action.(Ask); isAsk {
						step.Polls = append(step.Polls, ask.Poll)
					}
				}
			}
		}
		if k := askBlock(s, step.Commands, bodyLine); k >= 0 {
			split := s.ranges[k][1]
			step.Pose = p.prose(md, lines, s, s.start+s.head, split)
			step.Reveal = p.prose(md, lines, s, split, s.end)
		}
		if i == 0 {
			if len(s.blocks) == 0 {
				l.Intro = step.Prose
				continue
			}
			step.Title = l.Title // an intro with lab blocks is a step of its own
		} else {
			step.Title = headingText(s.heading, body)
			if step.Title == "" {
				p.errorf(step.Line, "empty step heading (expected \"## \" and the step's title)")
			}
		}
		l.Steps = append(l.Steps, step)
	}
}

// askBlock is the index of the section's lab block that holds the step's
// first ask, or -1 when the step asks nothing.
func askBlock(s *section, cmds []Command, bodyLine int) int {
	for _, c := range cmds {
		if _, ok := c.Action.(Ask); !ok {
			continue
		}
		for k, r := range s.ranges {
			if c.Line > bodyLine+r[0] && c.Line <= bodyLine+r[1] {
				return k
			}
		}
	}
	return -1
}

// isLab reports whether a fenced block's info string starts with "lab".
func isLab(b *ast.FencedCodeBlock, src []byte) bool {
	return string(b.Language(src)) == "lab"
}

func isATX(line []byte) bool {
	return strings.HasPrefix(strings.TrimLeft(string(line), " "), "#")
}

// isClosingFence reports whether line closes the fence opened by open.
func isClosingFence(open, line []byte) bool {
	o := strings.TrimLeft(string(open), " ")
	if o == "" || (o[0] != '`' && o[0] != '~') {
		return false
	}
	n := len(o) - len(strings.TrimLeft(o, o[:1]))
	c := strings.TrimSpace(string(line))
	return len(c) >= n && strings.Trim(c, o[:1]) == ""
}

// headingText is the plain text of a heading, without Markdown markup.
func headingText(h *ast.Heading, src []byte) string {
	var b strings.Builder
	_ = ast.Walk(h, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Text:
			b.Write(n.Segment.Value(src))
			if n.SoftLineBreak() || n.HardLineBreak() {
				b.WriteByte(' ')
			}
		case *ast.String:
			b.Write(n.Value)
		case *ast.RawHTML:
			return ast.WalkSkipChildren, nil
		}
		return ast.WalkContinue, nil
	})
	return strings.Join(strings.Fields(b.String()), " ")
}

// prose is a section's Markdown in body lines [from, to), without its
// heading and lab blocks, and that Markdown rendered. Raw HTML is left out of the rendering (goldmark's
// safe default), so a user's lesson cannot script the page.
func (p *parser) prose(md goldmark.Markdown, lines [][]byte, s *section, from, to int) Prose {
	var b strings.Builder
	for i := from; i < to; i++ {
		inBlock := false
		for _, r := range s.ranges {
			if i >= r[0] && i < r[1] {
				inBlock = true
			}
		}
		if !inBlock {
			b.Write(lines[i])
		}
	}
	src := strings.Trim(b.String(), "\r\n")
	if strings.TrimSpace(src) == "" {
		return Prose{}
	}
	src += "\n"
	var html bytes.Buffer
	if err := md.Convert([]byte(src), &html); err != nil {
		// goldmark's HTML renderer fails only when its writer does; a
		// bytes.Buffer does not.
		html.Reset()
	}
	return Prose{Markdown: src, HTML: html.String()}
}
