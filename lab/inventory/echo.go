package inventory

import (
	"strconv"
	"unicode/utf8"
)

// MaxEcho is the most characters of a person's input that an error
// message repeats. A 2,000-character SKU or a 309-digit number is
// shortened, so the sentence around it stays readable.
const MaxEcho = 60

// Echo quotes input for an error message: Go-quoted (so control
// characters and quotes show as escapes), and when input is longer than
// MaxEcho characters, its first MaxEcho−1 characters, an ellipsis and its
// length: "AAAA…" (2000 characters). Every message of lab, lessons and web
// that repeats what a person typed goes through Echo.
func Echo(input string) string {
	n := utf8.RuneCountInString(input)
	if n <= MaxEcho {
		return strconv.Quote(input)
	}
	cut, i := 0, 0
	for i = range input {
		if cut == MaxEcho-1 {
			break
		}
		cut++
	}
	return strconv.Quote(input[:i]+"…") + " (" + strconv.Itoa(n) + " characters)"
}

// EchoNumber writes a number from a person's input for an error message:
// the shortest form that reads back as the same number, in exponent form
// when that is shorter (1e+308, not 309 digits).
func EchoNumber(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}
