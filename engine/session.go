package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/ident"
	"github.com/gosync/gosync/queue"
)

// Session keeps one mirror in step with the source over time: a full sync
// first, then targeted syncs of the paths a watcher reported. It
// remembers what the mirror holds (its listing at the full sync, updated
// by every acknowledged change), so a batch costs no listing round trip.
type Session struct {
	m     Mirror
	opt   Options
	state *picture
	// KeepExtras makes deletes apply only to what gosync saw come from
	// the source: an entry the mirror had before it appeared in the
	// picture (user uploads on a server) is kept, as lsyncd's
	// delete = 'running' does. Set it before the first Full.
	KeepExtras bool
	// root is the mirror root's metadata as last set (haveRoot).
	root     fstree.Entry
	haveRoot bool
	// only holds the mirror-only entries that KeepExtras spares, until
	// the source makes one of them its own.
	only map[string]bool
	// place is where the mirror directory was at the last connection.
	place ident.Place
}

// NewSession starts keeping m in step with options opt.
func NewSession(m Mirror, opt Options) *Session {
	return &Session{m: m, opt: opt, state: newPicture(), only: map[string]bool{}, place: m.Place()}
}

// Attach continues the session on a new connection to the mirror (after
// a reconnect). What it remembers of the mirror is only a guide until
// the next Full: the catch-up deletes what the source deleted meanwhile
// and keeps what appeared on the mirror.
//
// If the mirror path now names another directory than at the last
// connection (the root was replaced or removed and made again, or it
// cannot be told), Attach forgets everything it remembered and reports
// replaced: the next Full syncs a new mirror, as at the start, so
// nothing of the new directory is deleted that a start would keep.
func (s *Session) Attach(m Mirror) (replaced bool) {
	old, now := s.place, m.Place()
	s.m, s.place = m, now
	if !old.Known() || now.Known() && now.Boot == old.Boot && now.Chain[0] == old.Chain[0] {
		return false
	}
	s.state = newPicture()
	s.only = map[string]bool{}
	s.root, s.haveRoot = fstree.Entry{}, false
	return true
}

// SetOptions replaces the options for the next Full or Apply.
func (s *Session) SetOptions(opt Options) { s.opt = opt }

// Refresh lists the mirror again at the given paths (and below them),
// replacing what the session remembers there: a path that failed may have
// been fixed by hand on the mirror, or have failed halfway.
func (s *Session) Refresh(ctx context.Context, paths []string) error {
	for _, p := range paths {
		entries, _, err := s.m.Scan(ctx, p, false)
		if err != nil {
			return err
		}
		s.state.del(p)
		s.state.delBelow(p)
		for _, e := range entries {
			s.state.set(e)
		}
	}
	return nil
}

// Full compares the whole source with the whole mirror and repairs every
// difference; with checksum it compares content too (reconciliation).
func (s *Session) Full(ctx context.Context, src *Source, checksum bool) Result {
	return s.full(checksum, func(opt Options, res *Result, _ *picture, done func(*plan)) error {
		p, err := sync1(ctx, func() (*Source, error) { return src, nil }, s.m, opt, res)
		if err == nil {
			done(p)
		}
		return err
	})
}

// FullTree is Full walking the source spec names in step with the
// mirror's listing (SyncTree); spec.Hash is the checksum.
func (s *Session) FullTree(ctx context.Context, spec SourceSpec) Result {
	return s.full(spec.Hash, func(opt Options, res *Result, pic *picture, done func(*plan)) error {
		return syncTree(ctx, spec, s.m, opt, res, pic, done)
	})
}

// full runs a full sync and makes the picture of the mirror anew from
// it: run puts in pic the entries it leaves as they are, and passes
// each plan it ran (a large sync runs in parts) to done, which records
// what the plan did.
func (s *Session) full(checksum bool, run func(Options, *Result, *picture, func(*plan)) error) Result {
	opt := s.opt
	opt.Checksum = checksum
	prev, only := s.state, s.only
	if s.KeepExtras {
		opt.Spare = func(path string) bool {
			if only[path] {
				return true
			}
			return !prev.has(path)
		}
	}
	start := time.Now()
	sent := s.m.BytesSent()
	res := Result{Mirror: s.m.Name()}
	pic := newPicture()
	if !opt.DryRun {
		s.state, s.only = pic, map[string]bool{}
	}
	err := run(opt, &res, pic, func(p *plan) {
		if opt.DryRun {
			return
		}
		if s.KeepExtras {
			for _, k := range p.kept {
				s.only[k] = true
			}
		}
		s.record(p)
	})
	res.Err = err
	switch {
	case err != nil:
		s.state, s.only = prev, only
	case !opt.DryRun:
		s.state.trim()
	}
	res.Stats.Sent = s.m.BytesSent() - sent
	res.Stats.Duration = time.Since(start)
	return res
}

// ErrSourceGone is returned while the source directory is missing or
// empty and the batch would delete from the mirror: a build tool
// recreating the tree must never wipe a mirror.
var ErrSourceGone = errors.New("source is missing or empty")

// Apply syncs the paths of one batch.
func (s *Session) Apply(ctx context.Context, src *Source, paths []queue.Path) Result {
	start := time.Now()
	sent := s.m.BytesSent()
	res := Result{Mirror: s.m.Name()}
	err := s.apply(ctx, src, paths, &res)
	res.Err = err
	res.Stats.Sent = s.m.BytesSent() - sent
	res.Stats.Duration = time.Since(start)
	return res
}

func (s *Session) apply(ctx context.Context, src *Source, paths []queue.Path, res *Result) error {
	root, err := src.stat("")
	if err != nil || root.Kind != fstree.Dir {
		return fmt.Errorf("%w: %s", ErrSourceGone, src.Dir)
	}
	root.Path = ""
	sc := scope{s: s, src: src, entries: map[string]fstree.Entry{}, dst: map[string]fstree.Entry{}}
	whole := false
	for _, p := range paths {
		if p.Subtree && p.Rel == "" {
			whole = true
		}
		if err := sc.add(ctx, p); err != nil {
			return err
		}
	}
	entries := sortedEntries(sc.entries)
	dst := sortedEntries(sc.dst)
	res.Stats.Scanned = len(entries)
	res.Failed = append(res.Failed, sc.failed...)
	opt := s.opt
	opt.Checksum = false
	if s.KeepExtras {
		opt.Spare = func(path string) bool { return s.only[path] }
	}
	// The empty-source guard only makes sense when the batch covers the
	// whole tree; a batch that deletes one file has no other entries.
	opt.AllowEmptySource = s.opt.AllowEmptySource || !whole
	if !s.opt.DeferDeletes && !s.opt.AllowEmptySource && sc.deletes() && src.empty() {
		return fmt.Errorf("%w: %s has no entries; not deleting anything on %s until it has content again", ErrSourceGone, src.Dir, s.m.Name())
	}
	var moves []move
	if s.opt.BackupDir == "" {
		// With backups a rename is sent as new content and a delete,
		// which the backup can undo.
		moves = sc.moves(ctx)
	}
	if len(moves) > 0 {
		dst = sortedEntries(sc.dst)
	}
	dstRoot := &s.root
	if !s.haveRoot {
		dstRoot = &fstree.Entry{} // unknown: set it once
	}
	p, err := execute(ctx, src, entries, root, dstRoot, dst, moves, skipped{unread: sc.failed, special: sc.special}, s.m, opt, res)
	if err != nil {
		return err
	}
	if !opt.DryRun {
		s.record(p)
	}
	return nil
}

// scope collects the source and remembered mirror entries a batch covers.
type scope struct {
	s       *Session
	src     *Source
	entries map[string]fstree.Entry
	dst     map[string]fstree.Entry
	failed  []OpError
	special []string // FIFOs, sockets, devices: not mirrored, their mirror namesakes kept
}

func (sc *scope) stat(rel string) (fstree.Entry, bool) {
	e, err := sc.src.stat(rel)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			sc.failed = append(sc.failed, OpError{Path: rel, Op: "read source", Msg: errString(err)})
		}
		return e, false
	}
	e.Path = rel
	if e.Kind == fstree.Other {
		sc.special = append(sc.special, rel)
		return e, false
	}
	if sc.s.opt.Ignore.Ignored(rel, e.Kind == fstree.Dir) {
		return e, false
	}
	return e, true
}

func (sc *scope) add(ctx context.Context, p queue.Path) error {
	// Parents: the plan needs them to create missing directories and to
	// restore their mtimes after their contents change.
	for dir := parentDir(p.Rel); dir != ""; dir = parentDir(dir) {
		if _, ok := sc.entries[dir]; ok {
			break
		}
		if e, ok := sc.stat(dir); ok && e.Kind == fstree.Dir {
			sc.entries[dir] = e
		}
		if d, ok := sc.s.state.get(dir); ok {
			sc.dst[dir] = d
		}
	}
	var e fstree.Entry
	ok := true
	if p.Rel != "" {
		e, ok = sc.stat(p.Rel)
		if ok {
			sc.entries[p.Rel] = e
		}
		if d, had := sc.s.state.get(p.Rel); had {
			sc.dst[p.Rel] = d
		}
	}
	old, had := sc.s.state.get(p.Rel)
	subtree := p.Subtree || p.Rel == "" ||
		(ok && e.Kind == fstree.Dir && (!had || old.Kind != fstree.Dir)) // a new directory: all of it
	if had && old.Kind == fstree.Dir && (!ok || e.Kind != fstree.Dir) {
		sc.addMirrorBelow(p.Rel) // a directory went away: so did all below it
	}
	if !subtree || !ok && p.Rel != "" {
		return nil
	}
	sc.addMirrorBelow(p.Rel)
	return sc.walk(ctx, p.Rel)
}

func (sc *scope) addMirrorBelow(dir string) {
	sc.s.state.each(dir, func(e fstree.Entry) { sc.dst[e.Path] = e })
}

// walk adds the source subtree below dir.
func (sc *scope) walk(ctx context.Context, dir string) error {
	m := sc.s.opt.Ignore
	err := sc.src.root.Walk(ctx, dir, fstree.WalkOptions{
		Skip: func(rel string, isDir bool) bool { return m.Match(rel, isDir) },
		OnError: func(rel string, err error) {
			sc.failed = append(sc.failed, OpError{Path: rel, Op: "read source", Msg: errString(err)})
		},
		// Windows only: warned about by the full scans, not retried.
		SkippedLink: func(string, error) {},
	}, func(e *fstree.Entry) error {
		if e.Kind == fstree.Other {
			sc.special = append(sc.special, e.Path)
		} else {
			sc.entries[e.Path] = *e
		}
		return nil
	})
	switch {
	case err == nil || ctx.Err() != nil:
		return err
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ELOOP):
		return nil // gone or replaced since: the next batch tells
	}
	// The walk reports errors below dir through OnError: this is dir itself.
	sc.failed = append(sc.failed, OpError{Path: dir, Op: "read source", Msg: errString(err)})
	return nil
}

// moves pairs entries gone from the source with new ones of the same
// inode: renames in the source. The mirror renames its copy (and, for a
// directory, everything below moves with it) instead of receiving the
// content again; sc.dst is rewritten to show the mirror after the move,
// so the plan only fixes what differs beyond the move.
//
// The same inode alone proves nothing: file systems hand a freed inode
// to the next new file at once (ext4 does), and tar, cp -p and npm give
// new files old mtimes. So a pair is a rename only when it is known to
// be one (knownMove): a file by the same content hash on both sides, a
// symlink by the same target, a directory by descendants that moved
// along untouched. Anything else is sent as new.
func (sc *scope) moves(ctx context.Context) []move {
	type id struct{ dev, ino uint64 }
	fresh := map[id]string{}
	for k, e := range sc.entries {
		if _, onMirror := sc.dst[k]; !onMirror && e.Ino != 0 {
			fresh[id{e.Dev, e.Ino}] = k
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	var moves []move
	apply := func(from fstree.Entry, to string) {
		moves = append(moves, move{from: from.Path, to: to, kind: from.Kind})
		delete(fresh, id{from.Dev, from.Ino})
		// The mirror after the move.
		prefix := from.Path + "/"
		for k, d := range sc.dst {
			if k == from.Path || strings.HasPrefix(k, prefix) {
				delete(sc.dst, k)
				d.Path = to + k[len(from.Path):]
				sc.dst[d.Path] = d
			}
		}
	}
	// Directories first, so that a file moved into a renamed directory
	// finds its new parent on the mirror.
	for _, dirs := range []bool{true, false} {
		list := sortedEntries(sc.dst)
		var pairs [][2]fstree.Entry // files and symlinks: checked together
		for i, from := range list {
			if (from.Kind == fstree.Dir) != dirs {
				continue
			}
			if _, still := sc.entries[from.Path]; still || from.Ino == 0 {
				continue
			}
			to, ok := fresh[id{from.Dev, from.Ino}]
			if !ok || underAny(from.Path, moves) || strings.HasPrefix(to, from.Path+"/") {
				continue
			}
			e := sc.entries[to]
			if e.Kind != from.Kind || e.Kind == fstree.File && (e.Size != from.Size || e.Mtime != from.Mtime) {
				continue // not the same content: no use checking further
			}
			parent := parentDir(to)
			if _, ok := sc.dst[parent]; parent != "" && !ok {
				continue // its new parent is not on the mirror yet: send it
			}
			if !dirs {
				pairs = append(pairs, [2]fstree.Entry{from, e})
			} else if sc.knownMove(ctx, from, e, list[i+1:], moves) {
				apply(from, to)
			}
		}
		for i, known := range sc.knownMoves(ctx, pairs) {
			from, to := pairs[i][0], pairs[i][1].Path
			if known && fresh[id{from.Dev, from.Ino}] == to {
				apply(from, to)
			}
		}
	}
	return moves
}

// knownMoves runs knownMove for pairs of files and symlinks, a few at a
// time: each file costs a round trip to the mirror, and a batch that
// moved many files should not wait for them one after the other.
func (sc *scope) knownMoves(ctx context.Context, pairs [][2]fstree.Entry) []bool {
	known := make([]bool, len(pairs))
	var wg sync.WaitGroup
	slots := make(chan struct{}, 8)
	for i, p := range pairs {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			known[i] = sc.knownMove(ctx, p[0], p[1], nil, nil)
		}()
	}
	wg.Wait()
	return known
}

// knownMove reports whether the mirror's from, whose inode the source's
// new entry to has, is known to hold what to holds: then renaming it on
// the mirror is right whether or not the source renamed it.
//
//   - A file: the same content hash, the source hashing its new file and
//     the mirror its old one (its hash cache often has it). Both read the
//     file once, which is cheaper than sending it.
//   - A symlink: the same target.
//   - A directory: at least one descendant the session recorded is at
//     the same place below to as the same inode with an unchanged ctime.
//     An inode that was freed and handed out again gets a new ctime, and
//     renaming a file changes its ctime, so such a descendant moved along
//     with its directory: the directory was renamed. Its own inode and
//     ctime prove nothing (a rename changes the ctime too). Beyond that,
//     every recorded regular file that has a namesake of the same size
//     and mtime below to must be that unchanged inode (the plan compares
//     the rest by size and mtime, which these would fool), and every
//     recorded descendant that to lacks must be one the plan deletes:
//     with --no-delete, or one the source still has but ignores, the
//     directory is sent, so nothing old appears inside the new one.
//     An empty directory is never renamed: making it is as cheap.
//
// after is what follows from in the sorted listing of the mirror taken
// before the moves so far: from's descendants first. Those moves changed
// nothing below from unless one went into it; then the answer is no.
func (sc *scope) knownMove(ctx context.Context, from, to fstree.Entry, after []fstree.Entry, before []move) bool {
	switch from.Kind {
	case fstree.Symlink:
		return from.Target == to.Target
	case fstree.File:
		return sc.sameContent(ctx, from, to)
	case fstree.Dir:
	default:
		return false
	}
	prefix := from.Path + "/"
	for _, m := range before {
		if strings.HasPrefix(m.to, prefix) {
			return false
		}
	}
	moved := false
	for _, d := range after {
		k := d.Path
		if !strings.HasPrefix(k, prefix) {
			break // past the subtree
		}
		rel := to.Path + k[len(from.Path):]
		e, ok := sc.entries[rel]
		switch {
		case !ok:
			if !sc.s.opt.Delete || sc.s.only[k] || sc.s.opt.Ignore.Ignored(rel, d.Kind == fstree.Dir) {
				return false
			}
		case e.Ino != 0 && e.Dev == d.Dev && e.Ino == d.Ino && e.CtimeNs == d.CtimeNs && e.Kind == d.Kind:
			moved = true
		case e.Kind == fstree.File && d.Kind == fstree.File && e.Size == d.Size && e.Mtime == d.Mtime:
			return false
		}
	}
	return moved
}

// sameContent compares the source's file to with the mirror's file from
// by content hash. Any doubt (a read error, an agent that does not hash
// a single file) answers false: the file is sent.
func (sc *scope) sameContent(ctx context.Context, from, to fstree.Entry) bool {
	// Both sides read at once.
	type answer struct {
		got []fstree.Entry
		err error
	}
	mirror := make(chan answer, 1)
	go func() {
		got, _, err := sc.s.m.Scan(ctx, from.Path, true)
		mirror <- answer{got, err}
	}()
	sum, err := sc.hashSource(to.Path)
	a := <-mirror
	if err != nil || a.err != nil || len(a.got) != 1 {
		return false
	}
	d := a.got[0]
	return d.Kind == fstree.File && d.HasHash && d.Hash == sum && d.Size == to.Size
}

func (sc *scope) hashSource(rel string) (fstree.Hash, error) {
	f, err := sc.src.open(rel)
	if err != nil {
		return fstree.Hash{}, err
	}
	defer f.Close()
	sum, _, err := fstree.HashReader(f)
	return sum, err
}

func underAny(p string, moves []move) bool {
	for _, m := range moves {
		if p == m.from || strings.HasPrefix(p, m.from+"/") {
			return true
		}
	}
	return false
}

// deletes reports whether the batch may delete something on the mirror.
func (sc *scope) deletes() bool {
	for k := range sc.dst {
		if _, ok := sc.entries[k]; !ok {
			return true
		}
	}
	return false
}

func sortedEntries(m map[string]fstree.Entry) []fstree.Entry {
	out := make([]fstree.Entry, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b fstree.Entry) int { return comparePaths(a.Path, b.Path) })
	return out
}

// record updates the picture of the mirror after a plan ran: entries it
// made like the source take the source's state, deleted ones go, failed
// ones are forgotten (unknown until the next full sync).
func (s *Session) record(p *plan) {
	if p.rootSet != nil {
		s.root, s.haveRoot = *p.rootSet, true
	}
	failed := map[string]bool{}
	for _, f := range p.res.Failed {
		failed[f.Path] = true
	}
	for _, sp := range p.res.Special {
		failed[sp] = true // not sent: unknown until the next full sync
	}
	deleted := map[string]bool{}
	for _, it := range p.items {
		switch {
		case it.Action == Deleted && !failed[it.Path]:
			deleted[it.Path] = true
		case it.Action == Renamed:
			deleted[it.Target] = true // the old path is gone either way or unknown
		}
	}
	for d := range deleted {
		s.state.del(d)
		s.state.delBelow(d)
		delete(s.only, d)
	}
	// The mirror's entries the plan left as they were, and those of
	// paths it held back, stay in the picture as listed, unless the
	// picture knows better.
	var listed []fstree.Entry
	for i := range p.dstList {
		d := &p.dstList[i]
		k := d.Path
		switch {
		case p.gone[k]:
			s.state.del(k)
		case s.state.has(k) || isDeleted(k, deleted):
		case p.srcEntry(k) != nil && !p.held[k]:
			// The source's entry replaces it below.
		default:
			listed = append(listed, *d)
		}
	}
	slices.SortFunc(listed, func(a, b fstree.Entry) int { return comparePaths(a.Path, b.Path) })
	for i := range p.entries {
		if k := p.entries[i].Path; failed[k] && !p.held[k] {
			s.state.del(k)
		}
	}
	// Both lists are in walk order: merged, they go in as one sorted run.
	s.state.setSorted(len(listed)+len(p.entries), func(yield func(fstree.Entry)) {
		j := 0
		for i := range p.entries {
			e := &p.entries[i]
			if p.held[e.Path] || failed[e.Path] {
				continue // the mirror still has what it had; or unknown
			}
			for j < len(listed) && comparePaths(listed[j].Path, e.Path) < 0 {
				yield(listed[j])
				j++
			}
			yield(p.mirrored(*e))
			delete(s.only, e.Path) // the source's now
		}
		for ; j < len(listed); j++ {
			yield(listed[j])
		}
	})
}

// isDeleted reports whether p or one of its parents is in deleted.
func isDeleted(p string, deleted map[string]bool) bool {
	if len(deleted) == 0 {
		return false
	}
	for ; p != ""; p = parentDir(p) {
		if deleted[p] {
			return true
		}
	}
	return false
}

// empty reports whether the source directory has no entries at all.
func (s *Source) empty() bool { return s.root.Empty() }
