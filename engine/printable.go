package engine

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Printable escapes what a terminal would interpret in a string that
// came from a mirror, a remote command or a file name: control
// characters (ESC, CR, BEL, ...), C1 controls, line separators,
// bidirectional overrides and other invisible runes, and bytes that are
// not UTF-8. It writes them as Go's
// strconv.Quote does (\x1b, \r, \u202e) and leaves everything else,
// quotes and backslashes too, as it is, so a message stays readable.
// Every string from the peer passes through it, or through QuotePath,
// before it reaches a terminal or a log.
func Printable(s string) string { return printable(s, false) }

// PrintableLines is Printable keeping newlines and tabs, for a command's
// output shown as lines.
func PrintableLines(s string) string { return printable(s, true) }

// QuotePath shows a path: as it is when that is unambiguous, else quoted
// with strconv.Quote, so a name cannot move the cursor or end a line and
// the quotes say that the escapes are not part of the name. Quoted too:
// a name with spaces at either end (they would vanish in a column of
// output) and one that starts with a double quote (it would look quoted).
func QuotePath(p string) string {
	if printable(p, false) == p && !strings.HasPrefix(p, " ") && !strings.HasSuffix(p, " ") && !strings.HasPrefix(p, `"`) {
		return p
	}
	return strconv.Quote(p)
}

func printable(s string, multiline bool) string {
	clean := true
	for _, r := range s {
		if !safeRune(r, multiline) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case safeRune(r, multiline):
			b.WriteString(s[i : i+n])
		case r == utf8.RuneError || r < utf8.RuneSelf:
			// strconv.Quote's escapes for one byte: \n, \r, \x1b, \xff.
			for _, c := range []byte(s[i : i+n]) {
				q := strconv.QuoteToASCII(string([]byte{c}))
				b.WriteString(q[1 : len(q)-1])
			}
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

// safeRune is what strconv.Quote leaves as it is: unicode.IsPrint, which
// excludes controls, format characters (bidirectional overrides, zero
// widths) and separators other than the ASCII space.
func safeRune(r rune, multiline bool) bool {
	switch {
	case r == utf8.RuneError:
		return false
	case r == '\n' || r == '\t':
		return multiline
	}
	return unicode.IsPrint(r)
}
