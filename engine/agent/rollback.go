//go:build !windows

package agent

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/wire"
)

// A rollback puts the newest backup in the backup directory back (see
// batch): first every path the batch created is moved out of the way
// (into stamp.undone/, deepest first; a created directory is removed
// when empty), then every saved entry of stamp/ is renamed back to its
// path, the version found there moved into stamp.undone/ too, so a
// rollback loses nothing either. Each step is one rename, and each is
// found again by a second run: after the first phase stamp.created is
// renamed to stamp.created.done, and at the end stamp/ becomes
// stamp.rolled-back. A second rollback then finds the newest backup
// rolled back already and changes nothing.
const (
	rolledSuffix = ".rolled-back"
	undoneSuffix = ".undone"
	doneSuffix   = ".done"
	// maxCreatedList bounds the list of created paths read back: a
	// million paths of 64 bytes.
	maxCreatedList = 64 << 20
	rollChunk      = 1024
)

type roller struct {
	s       *server
	id      uint64
	dry     bool
	stamp   string
	baseFD  int
	undoFD  int
	undo    map[string]int
	items   []wire.RollItem
	sendErr error
	problem []string // paths left as they are, and why
}

func (s *server) rollback(m *wire.Rollback) error {
	r := &roller{s: s, id: m.ID, dry: m.Flags&wire.RollbackDryRun != 0, baseFD: -1, undoFD: -1, undo: map[string]int{}}
	already, err := r.run(m.Dir)
	r.close()
	if r.sendErr != nil {
		return r.sendErr
	}
	end := &wire.Rollback{ID: m.ID, Flags: wire.RollbackEnd, Stamp: r.stamp, Items: r.items}
	if already {
		end.Flags |= wire.RollbackAlready
	}
	if err == nil && len(r.problem) > 0 {
		err = fmt.Errorf("%d %s left as %s: %s", len(r.problem), plural(len(r.problem), "path", "paths"),
			plural(len(r.problem), "it is", "they are"), strings.Join(r.problem[:min(len(r.problem), 5)], "; "))
	}
	if err != nil {
		end.Err = err.Error()
		if len(end.Err) > wire.MaxErrorMsg {
			end.Err = end.Err[:wire.MaxErrorMsg]
		}
	}
	return s.send(end)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (r *roller) close() {
	for k, fd := range r.undo {
		unix.Close(fd)
		delete(r.undo, k)
	}
	for _, fd := range []int{r.undoFD, r.baseFD} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

func (r *roller) emit(action uint8, kind fstree.Kind, path string) {
	r.items = append(r.items, wire.RollItem{Action: action, Kind: kind, Path: path})
	if len(r.items) == rollChunk && r.sendErr == nil {
		r.sendErr = r.s.send(&wire.Rollback{ID: r.id, Items: r.items})
		r.items = r.items[:0]
	}
}

func (r *roller) run(dir string) (already bool, err error) {
	s := r.s
	if s.root == nil {
		return false, errNoRoot
	}
	r.baseFD, err = s.openBackupDir(dir, false)
	if err != nil {
		if isNotExist(err) {
			return false, fmt.Errorf("%w: --backup-dir %s does not exist on the mirror", errNoBackup, dir)
		}
		return false, err
	}
	names, err := readNames(r.baseFD)
	if err != nil {
		return false, err
	}
	latest, rolled := "", false
	for _, n := range names {
		st, isRolled := strings.CutSuffix(n, rolledSuffix)
		if wire.ValidStamp(st) && (st > latest || st == latest && !isRolled) {
			latest, rolled = st, isRolled
		}
	}
	if latest == "" {
		return false, fmt.Errorf("%w: --backup-dir %s holds none", errNoBackup, dir)
	}
	r.stamp = latest
	if rolled {
		return true, nil
	}
	stampFD, err := unix.Openat(r.baseFD, latest, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("--backup-dir %s: open %s: %w", dir, latest, err)
	}
	defer unix.Close(stampFD)
	if err := r.removeCreated(); err != nil {
		return false, err
	}
	if err := r.restore(stampFD, ""); err != nil {
		return false, err
	}
	if r.dry || len(r.problem) > 0 || r.sendErr != nil {
		return false, nil
	}
	if err := unix.Renameat(r.baseFD, latest, r.baseFD, latest+rolledSuffix); err != nil {
		return false, fmt.Errorf("--backup-dir %s: mark %s rolled back: %w", dir, latest, err)
	}
	return false, nil
}

func readNames(fd int) ([]string, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "backup")
	defer f.Close()
	if _, err := f.Seek(0, 0); err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

// removeCreated moves the paths the batch created out of the way,
// deepest first.
func (r *roller) removeCreated() error {
	name := r.stamp + createdSuffix
	fd, err := unix.Openat(r.baseFD, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if isNotExist(err) {
		return nil // none created, or done by an earlier run
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxCreatedList {
		return fmt.Errorf("%s is not a list of created paths (not a file, or over %d bytes)", name, maxCreatedList)
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	var paths []string
	for p := range strings.SplitSeq(strings.TrimSuffix(string(b), "\x00"), "\x00") {
		if p == "" || wire.ValidPath(p) != nil {
			continue
		}
		paths = append(paths, p)
	}
	// A path sorts after its parent: descending is deepest first.
	slices.Sort(paths)
	paths = slices.Compact(paths)
	slices.Reverse(paths)
	for _, p := range paths {
		if err := r.removeOne(p); err != nil {
			return err
		}
	}
	if r.dry {
		return nil
	}
	if err := unix.Renameat(r.baseFD, name, r.baseFD, name+doneSuffix); err != nil {
		return fmt.Errorf("mark %s done: %w", name, err)
	}
	return nil
}

func (r *roller) removeOne(p string) error {
	s := r.s
	err := s.withParent(p, func(dirfd int, base string) error {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		kind := kindOf(uint32(st.Mode))
		if kind == fstree.Dir {
			if !r.dry {
				s.forget(p)
				if err := unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR); err != nil {
					if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
						r.problem = append(r.problem, displayPath(p)+" (created by the batch, holds other entries now)")
						return nil
					}
					return err
				}
			}
			r.emit(wire.RollRemoved, kind, p)
			return nil
		}
		if !r.dry {
			udir, err := r.undoParent(parentOf(p))
			if err != nil {
				return err
			}
			if err := unix.Renameat(dirfd, base, udir, base); err != nil {
				return err
			}
		}
		r.emit(wire.RollRemoved, kind, p)
		return nil
	})
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove created %s: %w", displayPath(p), err)
	}
	return nil
}

// undoParent opens (making it) the directory of stamp.undone/ that takes
// entries of rel moved out of the way.
func (r *roller) undoParent(rel string) (int, error) {
	if r.undoFD < 0 {
		fd, err := mkdirAllAt(r.baseFD, r.stamp+undoneSuffix)
		if err != nil {
			return -1, err
		}
		r.undoFD = fd
	}
	if rel == "" {
		return r.undoFD, nil
	}
	if fd, ok := r.undo[rel]; ok {
		return fd, nil
	}
	fd, err := mkdirAllAt(r.undoFD, rel)
	if err != nil {
		return -1, err
	}
	r.undo[rel] = fd
	return fd, nil
}

// restore puts the entries of the backup directory bfd (rel in the
// mirror) back.
func (r *roller) restore(bfd int, rel string) error {
	names, err := readNames(bfd)
	if err != nil {
		return err
	}
	for _, n := range names {
		if r.sendErr != nil {
			return nil
		}
		p := n
		if rel != "" {
			p = rel + "/" + n
		}
		if wire.ValidPath(p) != nil {
			continue
		}
		if err := r.restoreOne(bfd, n, p); err != nil {
			return fmt.Errorf("restore %s: %w", displayPath(p), err)
		}
	}
	return nil
}

func (r *roller) restoreOne(bfd int, name, p string) error {
	s := r.s
	var bst unix.Stat_t
	if err := unix.Fstatat(bfd, name, &bst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if isNotExist(err) {
			return nil
		}
		return err
	}
	bkind := kindOf(uint32(bst.Mode))
	err := s.withParent(p, func(dirfd int, base string) error {
		var tst unix.Stat_t
		terr := unix.Fstatat(dirfd, base, &tst, unix.AT_SYMLINK_NOFOLLOW)
		tkind := kindOf(uint32(tst.Mode))
		switch {
		case terr == nil && tkind == fstree.Dir && bkind == fstree.Dir:
			// Holds saved entries of the directory, which is still there.
			sub, err := unix.Openat(bfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(sub)
			return r.restore(sub, p)
		case terr == nil && tkind == fstree.Dir:
			r.problem = append(r.problem, displayPath(p)+" (a directory now; its saved "+bkind.String()+" stays in the backup)")
			return nil
		case terr != nil && !isNotExist(terr):
			return terr
		}
		if !r.dry {
			if terr == nil {
				udir, err := r.undoParent(parentOf(p))
				if err != nil {
					return err
				}
				var had unix.Stat_t
				if unix.Fstatat(udir, base, &had, unix.AT_SYMLINK_NOFOLLOW) == nil {
					unix.Unlinkat(udir, base, 0)
				}
				if unix.Linkat(dirfd, base, udir, base, 0) != nil {
					if err := unix.Renameat(dirfd, base, udir, base); err != nil {
						return err
					}
				}
			}
			s.forget(p)
			if err := unix.Renameat(bfd, name, dirfd, base); err != nil {
				return err
			}
		}
		r.emit(wire.RollRestored, bkind, p)
		return nil
	})
	if isNotExist(err) {
		r.problem = append(r.problem, displayPath(p)+" (its directory is gone; it stays in the backup)")
		return nil
	}
	return err
}
