package perm

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxName bounds a user or group name (here and on the wire): Linux
// allows 32 bytes, other systems a little more.
const MaxName = 256

// Chown is a parsed --chown value: the owner and group every mirrored
// entry gets. An empty field leaves that part alone.
type Chown struct {
	User, Group string
}

// ParseChown parses rsync's --chown syntax: USER:GROUP, USER, USER: or
// :GROUP. A name that is all digits is a numeric id.
func ParseChown(value string) (Chown, error) {
	user, group, _ := strings.Cut(value, ":")
	c := Chown{User: user, Group: group}
	if user == "" && group == "" {
		return c, fmt.Errorf("--chown %q: give USER:GROUP, USER or :GROUP", value)
	}
	for _, n := range []string{user, group} {
		if err := ValidName(n); n != "" && err != nil {
			return c, fmt.Errorf("--chown %q: %w", value, err)
		}
	}
	return c, nil
}

// IsZero reports whether c changes nothing.
func (c Chown) IsZero() bool { return c.User == "" && c.Group == "" }

// ValidName checks a user or group name: not empty, at most MaxName
// bytes, no colon, comma, space or control character.
func ValidName(n string) error {
	if n == "" || len(n) > MaxName {
		return fmt.Errorf("name %.40q: must have 1 to %d bytes", n, MaxName)
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c <= ' ' || c == 0x7f || c == ':' || c == ',' {
			return fmt.Errorf("name %q: contains %q", n, c)
		}
	}
	return nil
}

// ID returns the numeric id a name stands for, if it is all digits.
func ID(n string) (uint32, bool) {
	if n == "" || n[0] == '+' || n[0] == '-' {
		return 0, false
	}
	v, err := strconv.ParseUint(n, 10, 32)
	return uint32(v), err == nil
}
