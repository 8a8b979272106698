package lessons

import (
	"strings"
	"testing"
)

func TestTimeCommands(t *testing.T) {
	lesson := func(line string) string {
		return "---\ntitle: t\n---\n\n## s\n\n```lab\n" + line + "\n```\n"
	}
	for _, line := range []string{
		"clock eu-west-1 +5s",
		"clock us-east-1 -200ms drift 100",
		"clock reset",
		"pause shop ap-southeast-1 8s",
		"reserve LAST from us-east-1",
		"reserve LAST from ap-southeast-1 fenced expect conflict",
		"read consensus LAST from eu-west-1 serializable expect unavailable",
	} {
		l, errs := Parse("t.md", []byte(lesson(line)))
		if len(errs) > 0 {
			t.Errorf("%q: %v", line, errs)
			continue
		}
		if got := l.Steps[0].Commands[0].Action.String(); got != line {
			t.Errorf("%q reads back as %q", line, got)
		}
	}
	for line, says := range map[string]string{
		"clock eu-west-1 +2h":                      "within ±1h",
		"clock eu-west-1 soon":                     "offset must be a duration",
		"clock mars-1 +5s":                         "unknown region",
		"pause shop ap-southeast-1 -1s":            "more than 0",
		"pause shop ap-southeast-1 2m":             "at most 1m0s",
		"pause ap-southeast-1 8s":                  `expected "shop"`,
		"reserve LAST from us-east-1 maybe":        "unexpected",
		"reserve LAST from us-east-1 expect later": "unknown outcome",
	} {
		_, errs := Parse("t.md", []byte(lesson(line)))
		if len(errs) == 0 || !strings.Contains(errs.Error(), says) {
			t.Errorf("%q: errors %v, want one saying %q", line, errs, says)
		}
	}
}
