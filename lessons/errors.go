package lessons

import (
	"fmt"
	"strings"
)

// Error is one problem in a lesson file, at a line of that file. Line counts
// from 1 and includes the front matter; Line 0 means the whole file (for
// example when it cannot be read).
type Error struct {
	File string
	Line int
	Msg  string
}

// Error formats the problem the way compilers do: "file:line: msg".
func (e *Error) Error() string {
	if e.Line <= 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// ErrorList is every problem found in one or more lesson files, in file and
// line order. A nil or empty ErrorList means no problems; use Err to turn it
// into a plain error.
type ErrorList []*Error

// Error joins the problems, one per line.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Err returns nil when the list is empty and the list otherwise, so that a
// caller never holds a non-nil error interface around an empty list.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Unwrap returns the individual problems, for errors.As.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}
