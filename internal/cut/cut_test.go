package cut

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short", "app", 8, "app"},
		{"exact", "12345678", 8, "12345678"},
		{"long", strings.Repeat("r", 20), 4, "rrrr…[20 bytes, sha256 "},
		{"multibyte straddling the cut", "aéé", 2, "a…[5 bytes, sha256 "},
		{"zero", "abc", 0, "…[3 bytes, sha256 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := String(tc.in, tc.n)
			if !strings.HasPrefix(got, tc.want) || !utf8.ValidString(got) || len(got) > tc.n+51 {
				t.Errorf("String(%q, %d) = %q, want prefix %q, valid UTF-8, at most n+51 bytes", tc.in, tc.n, got, tc.want)
			}
		})
	}
	huge := strings.Repeat("x", 1<<20)
	if String(huge, 4) == String(huge+"y", 4) {
		t.Error("distinct long values must stay distinct")
	}
	if got := String(huge+"y", 128); len(got) > 128+51 {
		t.Errorf("%d bytes", len(got))
	}
}
