//go:build unix

package ident

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Locate returns the place of the directory dir (symlinks followed, as
// opening it follows them).
func Locate(dir string) (Place, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Place{}, fmt.Errorf("locate %s: %w", dir, err)
	}
	defer unix.Close(fd)
	return LocateFD(fd)
}

// LocateFD returns the place of the open directory fd: it climbs through
// ".." from the descriptor, so it names the directory held, whatever
// its path names now. A parent that cannot be opened (no search
// permission) ends the chain there.
func LocateFD(fd int) (Place, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Place{}, fmt.Errorf("locate: %w", err)
	}
	p := Place{Boot: Boot(), Chain: []FileID{{uint64(st.Dev), uint64(st.Ino)}}}
	cur := -1
	defer func() {
		if cur >= 0 {
			unix.Close(cur)
		}
	}()
	from := fd
	for len(p.Chain) < MaxChain {
		up, err := unix.Openat(from, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
				break
			}
			return Place{}, fmt.Errorf("locate: open parent: %w", err)
		}
		if cur >= 0 {
			unix.Close(cur)
		}
		cur, from = up, up
		if err := unix.Fstat(up, &st); err != nil {
			return Place{}, fmt.Errorf("locate: %w", err)
		}
		id := FileID{uint64(st.Dev), uint64(st.Ino)}
		if id == p.Chain[len(p.Chain)-1] {
			break // ".." of the root is the root
		}
		p.Chain = append(p.Chain, id)
	}
	return p, nil
}
