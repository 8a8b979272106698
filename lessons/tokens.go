package lessons

import (
	"fmt"
	"strconv"
	"strings"

	"caplab/lab/inventory"
)

// --- a command line as tokens, and the line parser's primitives.

// token is one word, quoted string or punctuation mark of a command line.
type token struct {
	text   string
	quoted bool
}

func (t token) is(s string) bool { return !t.quoted && t.text == s }

// punct reports whether t is one of the punctuation tokens.
func (t token) punct() bool {
	if t.quoted {
		return false
	}
	switch t.text {
	case "|", ",", "->", "=", ">=":
		return true
	}
	return false
}

// show quotes a token for an error message.
func (t token) show() string { return inventory.Echo(t.text) }

// tokenize splits a command line. It returns the tokens and the line without
// its comment.
func tokenize(s string) ([]token, string, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '#':
			return toks, strings.TrimSpace(s[:i]), nil
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, "", fmt.Errorf("unterminated quoted string %s (expected a closing \")", s[i:])
			}
			v, err := strconv.Unquote(s[i : j+1])
			if err != nil {
				return nil, "", fmt.Errorf("malformed quoted string %s (expected Go-style escapes such as \\\" and \\\\)", s[i:j+1])
			}
			toks = append(toks, token{text: v, quoted: true})
			i = j + 1
		case c == '|' || c == ',' || c == '=':
			toks = append(toks, token{text: string(c)})
			i++
		case strings.HasPrefix(s[i:], "->") || strings.HasPrefix(s[i:], ">="):
			toks = append(toks, token{text: s[i : i+2]})
			i += 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n#\"|,=", rune(s[j])) &&
				!strings.HasPrefix(s[j:], "->") && !strings.HasPrefix(s[j:], ">=") {
				j++
			}
			toks = append(toks, token{text: s[i:j]})
			i = j
		}
	}
	return toks, strings.TrimSpace(s), nil
}

// lineParser parses the arguments of one command.
type lineParser struct {
	p    *parser
	cmd  string // command name for messages, e.g. "buy" or "expect read"
	toks []token
	i    int
}

// failure is a parse error of the current line; it carries the message.
type failure struct{ msg string }

func (f failure) Error() string { return f.msg }

func (lp *lineParser) fail(format string, args ...any) {
	panic(failure{fmt.Sprintf(format, args...)})
}

func (lp *lineParser) more() bool { return lp.i < len(lp.toks) }

func (lp *lineParser) peek() (token, bool) {
	if lp.i < len(lp.toks) {
		return lp.toks[lp.i], true
	}
	return token{}, false
}

// next returns the next token, which must be a word described by what.
func (lp *lineParser) next(what string) token {
	t, ok := lp.peek()
	if !ok {
		lp.fail("%s: missing %s (usage: %s)", lp.cmd, what, usage(lp.cmd))
	}
	if t.punct() {
		lp.fail("%s: unexpected %s where %s was expected (usage: %s)", lp.cmd, t.show(), what, usage(lp.cmd))
	}
	lp.i++
	return t
}

// keyword consumes the word kw.
func (lp *lineParser) keyword(kw, after string) {
	t, ok := lp.peek()
	if !ok {
		lp.fail("%s: missing %q after %s (usage: %s)", lp.cmd, kw, after, usage(lp.cmd))
	}
	if !t.is(kw) {
		lp.fail("%s: expected %q after %s, got %s (usage: %s)", lp.cmd, kw, after, t.show(), usage(lp.cmd))
	}
	lp.i++
}

// end fails when tokens are left over.
func (lp *lineParser) end() {
	if t, ok := lp.peek(); ok {
		lp.fail("%s: unexpected %s at the end (usage: %s)", lp.cmd, t.show(), usage(lp.cmd))
	}
}
