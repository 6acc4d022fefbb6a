package wire

import (
	"errors"
	"strings"
)

// MaxPath bounds a relative path on the wire (Linux PATH_MAX).
const MaxPath = 4096

// ErrBadPath is wrapped by every path validation failure.
var ErrBadPath = errors.New("invalid path")

// ValidPath checks a relative, slash-separated path as both ends require:
// "" names the root itself; otherwise no leading or trailing slash, no
// empty, "." or ".." component, no NUL byte. Any other bytes are allowed,
// UTF-8 or not. This is the first line of defence; the agent's os.Root is
// the second.
func ValidPath(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > MaxPath {
		return pathErr(p, "too long")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return pathErr(p, "contains NUL")
	}
	for comp := range strings.SplitSeq(p, "/") {
		switch comp {
		case "":
			return pathErr(p, "empty component or leading/trailing slash")
		case ".", "..":
			return pathErr(p, "contains "+comp)
		}
	}
	return nil
}

func pathErr(p, why string) error {
	if len(p) > 200 {
		p = p[:200] + "..."
	}
	return &PathError{Path: p, Why: why}
}

// PathError is a path refused by ValidPath.
type PathError struct{ Path, Why string }

func (e *PathError) Error() string { return "invalid path " + quote(e.Path) + ": " + e.Why }
func (e *PathError) Unwrap() error { return ErrBadPath }

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			b.WriteString(`\x`)
			b.WriteByte("0123456789abcdef"[c>>4])
			b.WriteByte("0123456789abcdef"[c&15])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// StampLayout is the form of a backup's name (Batch.Stamp): the batch's
// start in UTC to the nanosecond, so names sort in time order.
const StampLayout = "20060102-150405.000000000"

// ValidStamp tells whether s has the form of StampLayout: digits, one
// '-' and one '.', where the layout has them. Nothing else can reach a
// path on the mirror.
func ValidStamp(s string) bool {
	if len(s) != len(StampLayout) {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch l := StampLayout[i]; {
		case l == '-' || l == '.':
			if s[i] != l {
				return false
			}
		case s[i] < '0' || s[i] > '9':
			return false
		}
	}
	return true
}
