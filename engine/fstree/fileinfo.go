package fstree

import (
	"io/fs"
	"os"
)

// FromFileInfo converts what os.Lstat, os.Root.Lstat or File.Stat returned.
// The identity fields (Dev, Ino, CtimeNs) and the owner come from what the
// system reports (see statSys); ok is false when it reports nothing of
// them, so a caller comparing identities knows not to trust them.
func FromFileInfo(rel string, fi os.FileInfo) (e Entry, ok bool) {
	m := fi.Mode()
	e = Entry{Path: rel, Perm: uint32(m.Perm()), MtimeNs: fi.ModTime().UnixNano()}
	if m&fs.ModeSetuid != 0 {
		e.Perm |= 04000
	}
	if m&fs.ModeSetgid != 0 {
		e.Perm |= 02000
	}
	if m&fs.ModeSticky != 0 {
		e.Perm |= 01000
	}
	switch m.Type() {
	case 0:
		e.Kind = File
		e.Size = fi.Size()
	case fs.ModeDir:
		e.Kind = Dir
	case fs.ModeSymlink:
		e.Kind = Symlink
	default:
		e.Kind = Other
	}
	ok = statSys(fi, &e)
	return e, ok
}

// StatOpen describes the open file f as FromFileInfo does, plus what
// Windows tells only through a handle (file index and change time), so a
// comparison of two StatOpen results sees a write that put the mtime back
// on every platform.
// It returns the FileInfo too.
func StatOpen(rel string, f *os.File) (Entry, os.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return Entry{}, nil, err
	}
	e, _ := FromFileInfo(rel, fi)
	fromHandle(f, &e)
	return e, fi, nil
}
