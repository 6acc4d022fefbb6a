package engine

import "testing"

// Paths in -i lines, progress and logs: printable ones as they are, the
// rest quoted, each kind of odd name the same way.
func TestQuotePath(t *testing.T) {
	for in, want := range map[string]string{
		"index.html":        "index.html",
		"a b/c d.txt":       "a b/c d.txt",
		"ünïcødé/日本.txt":    "ünïcødé/日本.txt",
		`back\slash`:        `back\slash`,
		"esc\x1b[31mred":    `"esc\x1b[31mred"`,
		"new\nline":         `"new\nline"`,
		"cr\r":              `"cr\r"`,
		"bad\xffutf8":       `"bad\xffutf8"`,
		"rtl\u202eoverride": `"rtl\u202eoverride"`,
		" leading":          `" leading"`,
		"trailing ":         `"trailing "`,
		"d/ leading":        "d/ leading",
		`"quoted"`:          `"\"quoted\""`,
		"tab\there":         `"tab\there"`,
	} {
		if got := QuotePath(in); got != want {
			t.Errorf("QuotePath(%q) = %s, want %s", in, got, want)
		}
	}
}
