package inventory

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEcho(t *testing.T) {
	long := strings.Repeat("A", 2000)
	cases := []struct{ in, want string }{
		{"eu-west-2", `"eu-west-2"`},
		{"", `""`},
		{"a\"b\n", `"a\"b\n"`},
		{strings.Repeat("x", MaxEcho), `"` + strings.Repeat("x", MaxEcho) + `"`},
		{strings.Repeat("x", MaxEcho+1), `"` + strings.Repeat("x", MaxEcho-1) + `…" (61 characters)`},
		{long, `"` + strings.Repeat("A", MaxEcho-1) + `…" (2000 characters)`},
		{strings.Repeat("é", 100), `"` + strings.Repeat("é", MaxEcho-1) + `…" (100 characters)`},
	}
	for _, c := range cases {
		if got := Echo(c.in); got != c.want {
			t.Errorf("Echo(%.20q…) = %s, want %s", c.in, got, c.want)
		}
	}
	// Never longer than the limit plus the quoting and the length note,
	// and never a broken UTF-8 sequence.
	for _, in := range []string{long, strings.Repeat("日本", 500), strings.Repeat("\x00", 300)} {
		got := Echo(in)
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > 4*MaxEcho+30 {
			t.Errorf("Echo of %d bytes = %d characters: %s", len(in), utf8.RuneCountInString(got), got)
		}
	}
}

func TestEchoNumber(t *testing.T) {
	for in, want := range map[float64]string{1e308: "1e+308", 120: "120", 0.5: "0.5", -3: "-3"} {
		if got := EchoNumber(in); got != want {
			t.Errorf("EchoNumber(%v) = %s, want %s", in, got, want)
		}
	}
}
