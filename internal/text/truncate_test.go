package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"an empty string", "", 10, ""},
		{"an empty string with no room", "", 0, ""},
		{"a string shorter than the bound is kept", "short", 10, "short"},
		{"a string of exactly the bound is kept", "exact", 5, "exact"},
		{"a multi-byte string of exactly the bound is kept", "héé", 5, "héé"},
		{"one byte over the bound is cut and marked", "abcdefghijk", 10, "abcdefg…"},
		{"the cut never splits a character", "ééééé", 8, "éé…"},
		{"the cut backs up to the start of a character", "aéééé", 8, "aéé…"},
		{"a cut right after a character keeps it", "aaéééé", 8, "aaé…"},
		{"four-byte characters", "😀😀😀", 8, "😀…"},
		{"the marker alone when nothing fits before it", "éééé", 4, "…"},
		{"the marker exactly", "abcdef", 3, "…"},
		{"no room for the marker: an unmarked prefix", "abcdef", 2, "ab"},
		{"no room for the marker or a whole character", "éé", 1, ""},
		{"a zero bound", "abc", 0, ""},
		{"a negative bound", "abc", -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Truncate(tt.s, tt.n)
			if got != tt.want {
				t.Errorf("Truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
			}
			if len(got) > max(tt.n, 0) && got != tt.s {
				t.Errorf("Truncate(%q, %d) has %d bytes", tt.s, tt.n, len(got))
			}
			if !utf8.ValidString(got) {
				t.Errorf("Truncate(%q, %d) = %q is not valid UTF-8", tt.s, tt.n, got)
			}
		})
	}
}

// A status message bound (1024) holds at most 1024 bytes, so the API's maxLength in
// characters always accepts it, whatever mix of characters the message has.
func TestTruncateBoundsBytesForEveryCut(t *testing.T) {
	s := strings.Repeat("aé€😀", 400)
	for n := range 1100 {
		got := Truncate(s, n)
		if len(got) > n || !utf8.ValidString(got) || !strings.HasPrefix(s, strings.TrimSuffix(got, Ellipsis)) {
			t.Fatalf("Truncate(s, %d) = %d bytes %q", n, len(got), got)
		}
		if n >= len(Ellipsis) && !strings.HasSuffix(got, Ellipsis) {
			t.Fatalf("Truncate(s, %d) is not marked", n)
		}
		if len(got) < n-utf8.UTFMax+1 {
			t.Fatalf("Truncate(s, %d) = %d bytes: more was cut than a character needs", n, len(got))
		}
	}
}

func FuzzTruncate(f *testing.F) {
	for _, s := range []string{"", "abc", "ééé", "😀a😀", "\xff\xfe"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := Truncate(s, n)
		if len(s) <= n {
			if got != s {
				t.Fatalf("Truncate(%q, %d) = %q, want it unchanged", s, n, got)
			}
			return
		}
		if len(got) > max(n, 0) {
			t.Fatalf("Truncate(%q, %d) = %q, longer than the bound", s, n, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Truncate(%q, %d) = %q split a character", s, n, got)
		}
	})
}
