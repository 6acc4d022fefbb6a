//go:build !windows

package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/ident"
	"github.com/gosync/gosync/engine/wire"
)

// A batch (wire.Batch) changes how the operations up to its Commit land.
//
// Staging (--delay-updates): a received file or symlink stays under its
// temporary name, and the Commit renames every one into place in a row,
// so a change of many files becomes visible at once instead of file by
// file while they arrive. The agent keeps names, not descriptors: a
// staged file's descriptor is closed at its FileEnd like any other, so a
// batch of 100,000 files holds no more descriptors than a batch of one.
// At the Commit each staged file's directory is opened again beneath the
// root without following a symlink and must be the directory (device and
// inode) the temporary was made in; one replaced meanwhile gets an error
// and its file is not updated. A session that ends before the Commit
// removes what it staged; a killed agent leaves temporaries that the
// next full scan removes, as ever. No staged file becomes visible before
// the Commit.
//
// Backups (--backup-dir): until the next Batch, every file or symlink an
// operation replaces and every entry it deletes (a directory whole) is
// first moved to backupDir/stamp/<path>, and every path it creates is
// recorded in backupDir/stamp.created, so a rollback can put the old
// versions back and take the new paths away. A replaced file is linked
// into the backup, then the new one renamed over it, so its path is never
// empty; where linking is refused it is renamed instead. The backup
// directory must be on the mirror's file system (backups are renames);
// an unusable one fails the Batch, and every operation up to the next
// Batch is then refused, so nothing is replaced without its backup.
type batch struct {
	id     uint64
	delay  bool
	staged []staged
	failed error // the Batch could not be honoured
	backup *backup
}

// staged is a temporary waiting for the Commit.
type staged struct {
	path  string // the target, relative to the root
	dirID ident.FileID
	tmp   string
}

// backup is where a batch's replaced and deleted entries go.
type backup struct {
	dir     string // as the client gave it
	baseFD  int    // the backup directory
	stamp   string
	stampFD int // backupDir/stamp, -1 until the first backup
	dirs    map[string]int
	logFD   int             // backupDir/stamp.created, -1 until the first creation
	created map[string]bool // paths this batch created: never backed up
}

const createdSuffix = ".created"

func (b *backup) close() {
	for k, fd := range b.dirs {
		unix.Close(fd)
		delete(b.dirs, k)
	}
	for _, fd := range []int{b.stampFD, b.logFD, b.baseFD} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	b.stampFD, b.logFD, b.baseFD = -1, -1, -1
}

// beginBatch opens a batch, ending (and committing) any earlier one.
func (s *server) beginBatch(m *wire.Batch) error {
	if s.batch != nil && len(s.batch.staged) > 0 {
		return fmt.Errorf("%w: batch begun with files of the last one still staged", wire.ErrFrame)
	}
	s.endBatch()
	b := &batch{id: m.ID, delay: m.Flags&wire.BatchDelay != 0}
	s.batch = b
	if m.BackupDir == "" {
		return nil
	}
	if s.root == nil {
		b.failed = errNoRoot
		return s.opError(m.ID, "", b.failed)
	}
	fd, err := s.openBackupDir(m.BackupDir, true)
	if err != nil {
		b.failed = err
		return s.opError(m.ID, "", err)
	}
	b.backup = &backup{dir: m.BackupDir, baseFD: fd, stamp: m.Stamp, stampFD: -1, logFD: -1, dirs: map[string]int{}, created: map[string]bool{}}
	return nil
}

// endBatch drops the batch: what is still staged is removed.
func (s *server) endBatch() {
	b := s.batch
	if b == nil {
		return
	}
	s.batch = nil
	s.dropStaged(b.staged)
	if b.backup != nil {
		b.backup.close()
	}
}

// refused is the error for an operation of a batch that could not be
// honoured, or nil.
func (s *server) refused() error {
	if s.batch == nil || s.batch.failed == nil {
		return nil
	}
	return fmt.Errorf("not applied: %w", s.batch.failed)
}

// openBackupDir opens the backup directory (making it if create is set):
// a relative one beneath the root without following a symlink, an
// absolute one as given, which a server-fixed root refuses. It must be
// on the mirror's file system, and an absolute one must not be inside
// the mirror (the client protects a relative one from its deletes).
func (s *server) openBackupDir(dir string, create bool) (int, error) {
	show := "--backup-dir " + dir
	if strings.IndexByte(dir, 0) >= 0 || dir == "" {
		return -1, fmt.Errorf("%s: not a usable directory name", show)
	}
	var fd int
	var err error
	if filepath.IsAbs(dir) {
		if s.policy.fixedRoot {
			return -1, fmt.Errorf("%s: this agent's root is fixed by the server; give a backup directory relative to the mirror", show)
		}
		inside := fmt.Errorf("%s is inside the mirror directory: give it relative to the mirror, so that it is never synced or deleted", show)
		if p, _ := placeOf(dir); slices.Contains(p.Chain, s.fence.rootID) {
			return -1, inside // before anything is made there
		}
		if create {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return -1, fmt.Errorf("%s: %w", show, errors.Unwrap(err))
			}
		}
		fd, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("%s: %w", show, err)
		}
		if p, err := ident.LocateFD(fd); err == nil && slices.Contains(p.Chain, s.fence.rootID) {
			unix.Close(fd)
			return -1, inside
		}
	} else {
		if err := wire.ValidPath(dir); err != nil {
			return -1, fmt.Errorf("%s: %w", show, err)
		}
		if create {
			fd, err = mkdirAllAt(s.rootFD, dir)
		} else {
			fd, err = fstree.OpenBeneath(s.rootFD, dir, unix.O_RDONLY|unix.O_DIRECTORY)
		}
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
				err = errors.New("a symlink or file is in the way")
			}
			return -1, fmt.Errorf("%s: %w", show, err)
		}
	}
	var bst, rst unix.Stat_t
	if err := unix.Fstat(fd, &bst); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: %w", show, err)
	}
	if err := unix.Fstat(s.rootFD, &rst); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if bst.Dev != rst.Dev {
		unix.Close(fd)
		return -1, fmt.Errorf("%s is on another file system than the mirror %s: backups are moves, so it must be on the same one", show, s.root.Name())
	}
	return fd, nil
}

// mkdirAllAt makes the directory rel beneath dirfd (0700 where new),
// opening each component without following a symlink, and returns it
// open. A directory it makes has its parent's mtime put back: the
// backup directory is not part of the mirror.
func mkdirAllAt(dirfd int, rel string) (int, error) {
	cur, own := dirfd, false
	for comp := range strings.SplitSeq(rel, "/") {
		var before unix.Stat_t
		unix.Fstat(cur, &before)
		err := unix.Mkdirat(cur, comp, 0o700)
		if err == nil {
			ts := []unix.Timespec{{Nsec: utimeOmit}, before.Mtim}
			unix.UtimesNanoAt(cur, ".", ts, 0)
		} else if !errors.Is(err, unix.EEXIST) {
			if own {
				unix.Close(cur)
			}
			return -1, err
		}
		next, err := unix.Openat(cur, comp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if own {
			unix.Close(cur)
		}
		if err != nil {
			return -1, err
		}
		cur, own = next, true
	}
	return cur, nil
}

// install puts the temporary tmp, made in dirfd for path, into place:
// staged until the Commit in a delaying batch, otherwise renamed over
// its target at once (after the target's backup).
func (s *server) install(dirfd int, tmp, path string) error {
	if b := s.batch; b != nil && b.delay {
		var st unix.Stat_t
		if err := unix.Fstat(dirfd, &st); err != nil {
			return err
		}
		b.staged = append(b.staged, staged{path: path, tmp: tmp, dirID: ident.FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}})
		return nil
	}
	return s.replace(dirfd, tmp, path)
}

// replace renames tmp over path's entry in dirfd, saving that entry into
// the backup first.
func (s *server) replace(dirfd int, tmp, path string) error {
	base := baseOf(path)
	if bk := s.backupOn(); bk != nil {
		if err := s.save(bk, dirfd, base, path, true); err != nil {
			return err
		}
	}
	return renameInto(dirfd, tmp, base)
}

func (s *server) backupOn() *backup {
	if s.batch == nil {
		return nil
	}
	return s.batch.backup
}

// stagedDirs are the directories of staged files, opened again beneath
// the root without following a symlink, with their identity; at most
// maxDirs at a time.
type stagedDirs struct {
	s   *server
	fds map[string]int
	ids map[string]ident.FileID
	err map[string]error
}

func (s *server) newStagedDirs() *stagedDirs {
	return &stagedDirs{s: s, fds: map[string]int{}, ids: map[string]ident.FileID{}, err: map[string]error{}}
}

// full tells whether rel would need a descriptor beyond the bound.
func (d *stagedDirs) full(rel string) bool {
	_, ok := d.fds[rel]
	_, bad := d.err[rel]
	return !ok && !bad && len(d.fds)+len(d.err) >= maxDirs
}

// open returns the directory st was staged in, as its path names it now;
// one replaced since is an error.
func (d *stagedDirs) open(st staged) (int, error) {
	rel := parentOf(st.path)
	if err, bad := d.err[rel]; bad {
		return -1, err
	}
	fd, ok := d.fds[rel]
	if !ok {
		var err error
		fd, err = fstree.OpenBeneath(d.s.rootFD, rel, unix.O_RDONLY|unix.O_DIRECTORY)
		var now unix.Stat_t
		if err == nil {
			if err = unix.Fstat(fd, &now); err != nil {
				unix.Close(fd)
			}
		}
		if err != nil {
			d.err[rel] = err
			return -1, d.replaced(rel)
		}
		d.fds[rel] = fd
		d.ids[rel] = ident.FileID{Dev: uint64(now.Dev), Ino: uint64(now.Ino)}
	}
	if d.ids[rel] != st.dirID {
		return -1, d.replaced(rel)
	}
	return fd, nil
}

func (d *stagedDirs) replaced(rel string) error {
	return fmt.Errorf("%w: its directory %s was replaced while the batch was staged; not updated", errMismatch, displayPath(rel))
}

func (d *stagedDirs) close() {
	for k, fd := range d.fds {
		unix.Close(fd)
		delete(d.fds, k)
	}
	clear(d.ids)
	clear(d.err)
}

// dropStaged removes staged temporaries that will not be committed.
func (s *server) dropStaged(list []staged) {
	dirs := s.newStagedDirs()
	defer dirs.close()
	for _, st := range list {
		if dirs.full(parentOf(st.path)) {
			dirs.close()
		}
		if fd, err := dirs.open(st); err == nil {
			unix.Unlinkat(fd, st.tmp, 0)
		}
	}
}

// commitBatch renames the batch's staged files into place. The
// directories are opened and checked first, up to maxDirs at a time, so
// the renames follow each other with nothing in between.
func (s *server) commitBatch(m *wire.Commit) error {
	b := s.batch
	if b == nil {
		return nil
	}
	list := b.staged
	b.staged = nil
	dirs := s.newStagedDirs()
	defer dirs.close()
	for len(list) > 0 {
		n := 0
		for n < len(list) && !dirs.full(parentOf(list[n].path)) {
			dirs.open(list[n]) // errors are met again below
			n++
		}
		for _, st := range list[:n] {
			dirfd, err := dirs.open(st)
			if err == nil {
				err = s.replace(dirfd, st.tmp, st.path)
				if errors.Is(err, unix.EACCES) {
					if restore, ok := s.widen(dirfd); ok {
						err = s.replace(dirfd, st.tmp, st.path)
						restore()
					}
				}
				if err != nil {
					unix.Unlinkat(dirfd, st.tmp, 0)
				}
			}
			if err != nil {
				if serr := s.opError(m.ID, st.path, err); serr != nil {
					return serr
				}
			}
		}
		list = list[n:]
		dirs.close()
	}
	return nil
}

// save moves (or with link, links) the entry base in dirfd, path on the
// mirror, into the backup; a missing entry is recorded as created. An
// entry the batch created, or one already saved, is left alone: the
// backup holds the version from before the batch.
func (s *server) save(bk *backup, dirfd int, base, path string, link bool) error {
	if bk.created[path] {
		return nil
	}
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return s.recordCreated(bk, path)
	}
	if err != nil {
		return err
	}
	if link && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return nil // never replaced: renameInto refuses
	}
	bdir, err := s.backupParent(bk, parentOf(path))
	if err != nil {
		return err
	}
	var had unix.Stat_t
	if unix.Fstatat(bdir, base, &had, unix.AT_SYMLINK_NOFOLLOW) == nil {
		return nil // saved before in this batch
	}
	if link && unix.Linkat(dirfd, base, bdir, base, 0) == nil {
		return nil
	}
	if err := unix.Renameat(dirfd, base, bdir, base); err != nil {
		if errors.Is(err, unix.EXDEV) {
			return fmt.Errorf("back up to --backup-dir %s: it is on another file system than the mirror", bk.dir)
		}
		return fmt.Errorf("back up to --backup-dir %s: %w", bk.dir, err)
	}
	return nil
}

// backupParent opens (making it) the directory in the batch's backup
// that holds the saved copy of an entry of rel.
func (s *server) backupParent(bk *backup, rel string) (int, error) {
	if bk.stampFD < 0 {
		fd, err := mkdirAllAt(bk.baseFD, bk.stamp)
		if err != nil {
			return -1, fmt.Errorf("--backup-dir %s: %w", bk.dir, err)
		}
		bk.stampFD = fd
	}
	if rel == "" {
		return bk.stampFD, nil
	}
	if fd, ok := bk.dirs[rel]; ok {
		return fd, nil
	}
	if len(bk.dirs) >= maxDirs {
		for k, fd := range bk.dirs {
			unix.Close(fd)
			delete(bk.dirs, k)
		}
	}
	fd, err := mkdirAllAt(bk.stampFD, rel)
	if err != nil {
		return -1, fmt.Errorf("--backup-dir %s: %w", bk.dir, err)
	}
	bk.dirs[rel] = fd
	return fd, nil
}

// recordCreated notes that the batch is about to create path, before it
// does: a rollback removes what the list names.
func (s *server) recordCreated(bk *backup, path string) error {
	if bk.logFD < 0 {
		if _, err := s.backupParent(bk, ""); err != nil {
			return err
		}
		fd, err := unix.Openat(bk.baseFD, bk.stamp+createdSuffix, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("--backup-dir %s: record created paths: %w", bk.dir, err)
		}
		bk.logFD = fd
	}
	if _, err := fdWriter(bk.logFD).Write([]byte(path + "\x00")); err != nil {
		return fmt.Errorf("--backup-dir %s: record created paths: %w", bk.dir, err)
	}
	bk.created[path] = true
	return nil
}

// errNotBackup is a name in the backup directory that is not a backup.
var errNoBackup = errors.New("no backup to roll back")

// isNotExist tells a missing entry.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOENT) }
