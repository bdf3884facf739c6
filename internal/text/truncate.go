package text

import "unicode/utf8"

// Ellipsis marks where Truncate cut a string.
const Ellipsis = "…"

// Truncate returns s if it is at most n bytes long, and otherwise its longest prefix that
// ends on a character boundary and, with Ellipsis appended, is at most n bytes. When n is
// too small for Ellipsis (under 3), the prefix is returned unmarked; when n <= 0, "".
//
// The bound is in bytes, not characters, because a byte bound is accepted by every limit
// Homeostat writes to: the OpenAPI maxLength of a CRD field counts characters (code
// points), and a string of n bytes never has more than n of them, while the Events API
// checks its note against 1024 bytes. A valid UTF-8 s gives a valid UTF-8 result.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	cut, mark := n-len(Ellipsis), Ellipsis
	if cut < 0 {
		cut, mark = n, ""
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
