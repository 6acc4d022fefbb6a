// Package ident tells whether two directories are the same one, or one
// lies inside the other, even when they were named on different hosts,
// through different paths, bind mounts or symlinks: a directory is known
// by its device and inode number with those of each of its parents, and
// the machine by the id of its current boot. Two directories compare only
// when both boot ids are known and equal; otherwise nothing can be said.
//
// The package knows nothing of mirrors or the protocol: the agent reports
// a Place in the handshake, the client compares it with its source's.
package ident

// FileID is a directory's identity on one running system.
type FileID struct{ Dev, Ino uint64 }

// MaxChain bounds a chain: a path of MaxPath (4096) bytes has at most
// 2048 components.
const MaxChain = 2048

// Place is where a directory is: the machine's boot and the directory
// with each of its parents up to the file system root, innermost first.
// The zero Place is unknown and compares with nothing.
type Place struct {
	Boot  string
	Chain []FileID
}

// MaxBoot bounds a boot id.
const MaxBoot = 128

// Known reports whether the place can be compared at all.
func (p Place) Known() bool { return p.Boot != "" && len(p.Chain) > 0 }

// Relation is how one directory lies relative to another.
type Relation int

const (
	Apart    Relation = iota // neither contains the other, or unknown
	Same                     // the same directory
	Inside                   // the first is below the second
	Contains                 // the second is below the first
)

// Relate tells how directory a lies relative to directory b.
func Relate(a, b Place) Relation {
	if !a.Known() || !b.Known() || a.Boot != b.Boot {
		return Apart
	}
	if a.Chain[0] == b.Chain[0] {
		return Same
	}
	for _, id := range a.Chain[1:] {
		if id == b.Chain[0] {
			return Inside
		}
	}
	for _, id := range b.Chain[1:] {
		if id == a.Chain[0] {
			return Contains
		}
	}
	return Apart
}
