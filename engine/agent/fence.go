//go:build !windows

package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/ident"
	"github.com/gosync/gosync/engine/wire"
)

// A session fences itself in two ways before it changes the mirror.
//
// The root: the agent holds its root open, so a root path renamed away
// and made again (`mv /var/www /var/www.old; mkdir /var/www`, how deploy
// scripts swap releases) or removed would take every later write into the
// old directory. Before the first message after the agent was idle, and
// at least every rootRecheck while messages keep coming, it compares the
// device and inode its root path names now with those of the directory
// it holds; when they differ it stops, and the client reconnects to the
// path.
//
// The lock: one session per mirror root writes. A session that will
// write (wire.FlagLock) takes fstree.LockName in the root over, whoever
// held it: it writes a new lock file beside it, flock()s it and renames
// it into place. The older session sees before each change (one fstatat)
// that the name no longer holds its file, applies nothing more, tells
// its client and exits (a file begun before is dropped at its FileEnd).
// The flock says nothing about ownership; it tells
// whether the previous holder was alive (the kernel releases it when a
// process dies, so a crashed agent leaves a lock that is taken over
// silently).
type fence struct {
	rootID  ident.FileID // the directory held, as opened
	checked time.Time    // when the root path was last compared with it
	idle    bool         // the agent waited for input since
	lockFD  int          // our lock file, flock()ed; -1: no lock taken
	lockID  ident.FileID
	// The root's mtime before the lock was taken and right after: if
	// nothing else changed the root during the session, releasing the
	// lock puts back the first, so a session that changed nothing in
	// the root leaves its mtime as it found it.
	rootBefore, rootLocked unix.Timespec
	rootTimes              bool
}

// rootRecheck bounds how long a continuous stream of messages goes on
// without a look at the root path.
const rootRecheck = time.Second

// errStopped ends Serve after a Stop message: the client knows why.
var errStopped = errors.New("session stopped")

// overlapsSource reports whether the root is, or would be created,
// inside the client's source or around it on this very machine: the
// client refuses such a mirror, and the agent neither creates it nor
// takes a lock in it first, so nothing is left in the source.
func overlapsSource(root string, src ident.Place) bool {
	if !src.Known() {
		return false
	}
	p, missing := placeOf(root)
	switch ident.Relate(p, src) {
	case ident.Same, ident.Inside:
		return true // a missing root would be made at or below the source
	case ident.Contains:
		return !missing // a parent around the source says nothing of the root
	}
	return false
}

// placeOf locates root or, if it does not exist (yet), its nearest
// existing parent (missing is then set). Unknown on error.
func placeOf(root string) (p ident.Place, missing bool) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return ident.Place{}, false
	}
	for dir := abs; ; dir = filepath.Dir(dir) {
		p, err := ident.Locate(dir)
		if err == nil {
			return p, dir != abs
		}
		if !errors.Is(err, fs.ErrNotExist) || dir == filepath.Dir(dir) {
			return ident.Place{}, false
		}
	}
}

// place reports where the mirror is for the handshake: the directory
// held, or the nearest existing parent of a missing root.
func (s *server) place(root string) ident.Place {
	if s.rootFD < 0 {
		p, _ := placeOf(root)
		return p
	}
	p, err := ident.LocateFD(s.rootFD)
	if err != nil {
		return ident.Place{}
	}
	return p
}

// held records the identity of the opened root.
func (s *server) held() error {
	var st unix.Stat_t
	if err := unix.Fstat(s.rootFD, &st); err != nil {
		return fmt.Errorf("open mirror directory: %w", err)
	}
	s.fence.rootID = ident.FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}
	s.fence.checked = time.Now()
	return nil
}

// rootMoved says how the root path stopped naming the directory held,
// or "" while it still does.
func (s *server) rootMoved() string {
	name := s.root.Name()
	var st unix.Stat_t
	err := unix.Stat(name, &st)
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Sprintf("mirror directory %s was removed", name)
	case err != nil:
		return fmt.Sprintf("mirror directory %s cannot be looked up: %v", name, err)
	case (ident.FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}) != s.fence.rootID:
		return fmt.Sprintf("mirror directory %s was replaced by another directory (moved away, or removed and made again)", name)
	}
	return ""
}

// takeLock makes this session the mirror's only writer. It returns the
// lock line of a live session it took over from ("" if none), and an
// error when the lock cannot be taken (the session must not write).
func (s *server) takeLock(session string) (holder string, err error) {
	dirfd := s.rootFD
	tmp := tempName()
	refused := func(err error) error {
		return fmt.Errorf("take the session lock %s in %s: %w (gosync writes it in the mirror directory; the mirror host's user needs write permission there)",
			fstree.LockName, s.root.Name(), err)
	}
	var before unix.Stat_t
	beforeErr := unix.Fstat(dirfd, &before)
	fd, err := unix.Openat(dirfd, tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return "", refused(err)
	}
	fail := func(err error) (string, error) {
		unix.Close(fd)
		unix.Unlinkat(dirfd, tmp, 0)
		return "", refused(err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fail(err)
	}
	line := fmt.Sprintf("gosync session %s, agent pid %d on this host, since %s", sanitize(session), os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	if _, err := unix.Write(fd, []byte(line+"\n")); err != nil {
		return fail(err)
	}
	holder = liveHolder(dirfd)
	if err := unix.Renameat(dirfd, tmp, dirfd, fstree.LockName); err != nil {
		return fail(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fail(err)
	}
	s.fence.lockFD = fd
	s.fence.lockID = ident.FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}
	var locked unix.Stat_t
	if beforeErr == nil && unix.Fstat(dirfd, &locked) == nil {
		s.fence.rootBefore, s.fence.rootLocked, s.fence.rootTimes = before.Mtim, locked.Mtim, true
	}
	return holder, nil
}

// liveHolder returns the line of the current lock if a live process
// holds it, "" if there is none or its holder is gone.
func liveHolder(dirfd int) string {
	fd, err := unix.Openat(dirfd, fstree.LockName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return ""
	}
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
		return "" // nobody holds it: a crashed or finished session
	}
	return readLine(fd, "another gosync session")
}

// readLine reads the first line of a lock file, bounded and printable.
func readLine(fd int, unknown string) string {
	buf := make([]byte, wire.MaxHolder)
	n, _ := unix.Pread(fd, buf, 0)
	line, _, _ := strings.Cut(string(buf[:max(n, 0)]), "\n")
	if line = sanitize(line); line == "" {
		return unknown
	}
	return line
}

// sanitize keeps a lock line to printable ASCII: it is shown to users.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// lockLost says why this session no longer holds the mirror's lock, or
// "" while it does. A lock replaced by another file is a takeover; a
// removed one is not (someone deleted it), and the session reconnects.
func (s *server) lockLost() (code int, msg string) {
	var st unix.Stat_t
	err := unix.Fstatat(s.rootFD, fstree.LockName, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err != nil:
		return wire.StopReconnect, fmt.Sprintf("the session lock %s in %s was removed", fstree.LockName, s.root.Name())
	case (ident.FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}) == s.fence.lockID:
		return 0, ""
	}
	holder := "another gosync session"
	if fd, err := unix.Openat(s.rootFD, fstree.LockName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
		holder = readLine(fd, holder)
		unix.Close(fd)
	}
	return wire.StopTakenOver, holder
}

// releaseLock removes the lock file if it is still ours, and puts the
// root's mtime back as the session left it (as it found it, if the
// session did not change it: taking the lock did), so nothing of the
// session stays in the mirror; then it lets the flock go.
func (s *server) releaseLock() {
	if s.fence.lockFD < 0 {
		return
	}
	var st unix.Stat_t
	if code, _ := s.lockLost(); code == 0 && unix.Fstat(s.rootFD, &st) == nil {
		mtime := st.Mtim
		if s.fence.rootTimes && mtime == s.fence.rootLocked {
			mtime = s.fence.rootBefore
		}
		if unix.Unlinkat(s.rootFD, fstree.LockName, 0) == nil {
			ts := []unix.Timespec{{Nsec: utimeOmit}, mtime}
			unix.UtimesNanoAt(s.rootFD, ".", ts, 0)
		}
	}
	unix.Close(s.fence.lockFD)
	s.fence.lockFD = -1
}

// guard runs before each message: a message that reads or changes the
// tree first checks the root path (after idle, or every rootRecheck);
// one that changes it checks the lock. A session that lost either stops.
func (s *server) guard(m wire.Msg) error {
	if s.root == nil {
		return nil
	}
	// The lock is checked at each commit point: one fstatat beside the
	// dozen system calls a received file costs. A file begun before a
	// takeover only fills a temporary until its FileEnd.
	writes := false
	switch m.(type) {
	case *wire.Mkdir, *wire.Symlink, *wire.SetMeta, *wire.Delete, *wire.Rename, *wire.FileEnd, *wire.Run:
		writes = true
	case *wire.Scan:
		writes = true // it removes leftover temporaries
	case *wire.SigReq, *wire.FileBegin:
	default:
		return nil
	}
	if s.fence.idle || time.Since(s.fence.checked) >= rootRecheck {
		s.fence.idle = false
		s.fence.checked = time.Now()
		if why := s.rootMoved(); why != "" {
			return s.stop(wire.StopReconnect, why)
		}
	}
	if !writes || s.fence.lockFD < 0 {
		return nil
	}
	if code, why := s.lockLost(); code != 0 {
		if moved := s.rootMoved(); moved != "" {
			code, why = wire.StopReconnect, moved
		}
		return s.stop(code, why)
	}
	return nil
}

// stop tells the client why this session ends and ends it.
func (s *server) stop(code int, why string) error {
	s.log.Debug("session stopped; applying nothing more", slog.String("root", s.root.Name()), slog.String("why", why))
	if s.file != nil {
		s.file.discard()
		s.file = nil
	}
	if err := s.send(&wire.Stop{Code: code, Msg: why}); err == nil {
		s.flush()
	}
	return fmt.Errorf("%w: %s", errStopped, why)
}
