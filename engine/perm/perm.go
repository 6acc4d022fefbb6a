// Package perm parses and applies rsync's --chmod and --chown values.
//
// A Chmod changes the permission bits the source supplies before they
// are compared with the mirror's and applied, exactly as rsync's
// tweak_mode does (rsync's chmod.c), so a second run finds nothing to
// change. A Chown names the owner and group every mirrored entry gets;
// the names are resolved on the mirror's host, not here.
//
// The package knows nothing of files, mirrors or the wire.
package perm

import (
	"errors"
	"fmt"
	"strings"
)

// Chmod is one or more --chmod values: comma-separated items applied in
// order.
type Chmod struct {
	items []item
	text  []string
}

type op uint8

const (
	opAdd op = iota + 1
	opSub
	opEq
	opSet
)

// item is one chmod item as rsync reduces it: the bits kept, the bits
// added, and the bits copied from another class.
type item struct {
	and, or          uint32
	copySrc, copyDst uint32
	copyAnd          uint32
	op               op
	dirsOnly         bool
	filesOnly        bool
	xKeep            bool // X: execute only where some execute bit was set, or on a directory
}

// Bits are the mode bits a chmod item may touch.
const Bits = 0o7777

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("invalid chmod item")

// Add parses value (rsync's --chmod syntax: comma-separated items such as
// D2775, F664, Du=rwx,Fg=r, u+rwX, a-w, o=, g=u) and appends its items.
// umask is the mask applied to items that name no class (+x), as chmod(1)
// and rsync do.
func (c *Chmod) Add(value string, umask uint32) error {
	var items []item
	for _, s := range strings.Split(value, ",") {
		it, err := parseItem(s, umask&0o777)
		if err != nil {
			return fmt.Errorf("--chmod %q: %w %q (rsync's syntax: [D|F][ugoa][+-=][rwxXst] or [D|F]OCTAL, comma-separated, e.g. D2775,F664 or u+rwX,g+rX,o-w)", value, ErrSyntax, s)
		}
		items = append(items, it)
	}
	c.items = append(c.items, items...)
	c.text = append(c.text, value)
	return nil
}

// Parse parses one --chmod value.
func Parse(value string, umask uint32) (*Chmod, error) {
	c := &Chmod{}
	if err := c.Add(value, umask); err != nil {
		return nil, err
	}
	return c, nil
}

// Empty reports whether c changes nothing because it has no items (a nil
// Chmod is empty).
func (c *Chmod) Empty() bool { return c == nil || len(c.items) == 0 }

func (c *Chmod) String() string {
	if c == nil {
		return ""
	}
	return strings.Join(c.text, ",")
}

func parseItem(s string, umask uint32) (item, error) {
	var it item
	var where, what, topBits, topOct, copyBits uint32
	var o op
	bad := func() (item, error) { return item{}, ErrSyntax }
	i := 0
	// First half: D or F, the classes, then the operator or an octal mode.
first:
	for ; i < len(s); i++ {
		switch c := s[i]; c {
		case 'D':
			if it.filesOnly {
				return bad()
			}
			it.dirsOnly = true
		case 'F':
			if it.dirsOnly {
				return bad()
			}
			it.filesOnly = true
		case 'u':
			where |= 0o100
			topBits |= 0o4000
		case 'g':
			where |= 0o010
			topBits |= 0o2000
		case 'o':
			where |= 0o001
		case 'a':
			where |= 0o111
			topBits |= 0o6000
		case '+', '-', '=':
			o = map[byte]op{'+': opAdd, '-': opSub, '=': opEq}[c]
			i++
			break first
		default:
			if c < '0' || c > '7' || where != 0 {
				return bad()
			}
			o, where = opSet, 1
			for ; i < len(s); i++ {
				if s[i] < '0' || s[i] > '7' {
					return bad()
				}
				what = what*8 + uint32(s[i]-'0')
				if what > Bits {
					return bad()
				}
			}
			break first
		}
	}
	if o == 0 {
		return bad()
	}
	if o != opSet {
		for ; i < len(s); i++ {
			c := s[i]
			if copyBits != 0 {
				return bad() // a copy item names one class and nothing else
			}
			switch c {
			case 'r':
				what |= 4
			case 'w':
				what |= 2
			case 'X':
				it.xKeep = true
				what |= 1
			case 'x':
				what |= 1
			case 's':
				// rsync: the classes' set-id bits, setuid when none is
				// named (so o+s and +s set setuid).
				if topBits != 0 {
					topOct |= topBits
				} else {
					topOct = 0o4000
				}
			case 't':
				topOct |= 0o1000
			case 'u', 'g', 'o':
				if what != 0 || topOct != 0 {
					return bad()
				}
				copyBits = map[byte]uint32{'u': 0o100, 'g': 0o010, 'o': 0o001}[c]
			default:
				return bad()
			}
		}
	}
	specified := where != 0
	var bits uint32
	if specified {
		bits = where * what
	} else {
		where = 0o111
		bits = (where * what) &^ umask
	}
	it.op = o
	it.copySrc, it.copyDst = copyBits, where
	it.copyAnd = Bits
	if !specified {
		it.copyAnd = Bits &^ umask
	}
	switch o {
	case opAdd:
		it.and, it.or = Bits, bits+topOct
	case opSub:
		it.and, it.or = Bits-bits-topOct, 0
	case opEq:
		and := Bits - where*7
		if topOct != 0 {
			and -= topBits
		}
		if copyBits != 0 {
			and -= specialBits(where)
		}
		it.and, it.or = and, bits+topOct
	case opSet:
		it.and, it.or = 0, bits
		it.copySrc, it.copyDst = 0, 0
	}
	it.and &= Bits
	return it, nil
}

// specialBits are the set-id and sticky bits of the classes in where.
func specialBits(where uint32) uint32 {
	var b uint32
	if where&0o100 != 0 {
		b |= 0o4000
	}
	if where&0o010 != 0 {
		b |= 0o2000
	}
	if where&0o001 != 0 {
		b |= 0o1000
	}
	return b
}

func copyBits(mode, src, dst, and uint32) uint32 {
	var b uint32
	if src&0o100 != 0 {
		b |= mode >> 6 & 7
	}
	if src&0o010 != 0 {
		b |= mode >> 3 & 7
	}
	if src&0o001 != 0 {
		b |= mode & 7
	}
	return dst * b & and
}

// Apply returns mode (permission bits, Bits) changed by c's items, for a
// directory when dir is set and a file otherwise. Symlinks have no mode
// to change: callers do not apply it to them.
func (c *Chmod) Apply(mode uint32, dir bool) uint32 {
	if c == nil {
		return mode
	}
	mode &= Bits
	isX := mode&0o111 != 0 // X looks at the mode before any item, as rsync
	for _, it := range c.items {
		if it.dirsOnly && !dir || it.filesOnly && dir {
			continue
		}
		cp := copyBits(mode, it.copySrc, it.copyDst, it.copyAnd)
		mode &= it.and
		if it.xKeep && !isX && !dir {
			mode |= it.or &^ 0o111
		} else {
			mode |= it.or
		}
		if it.op == opSub {
			mode &^= cp
		} else {
			mode |= cp
		}
	}
	return mode & Bits
}
