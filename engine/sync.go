package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/zeebo/blake3"

	"github.com/gosync/gosync/engine/delta"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/perm"
	"github.com/gosync/gosync/engine/wire"
	"github.com/gosync/gosync/ignore"
)

// Options control what a sync changes.
type Options struct {
	Delete           bool // remove what the source does not have
	MaxDelete        int  // refuse a sync that would delete more entries; <0 for no limit
	Checksum         bool // compare content hashes instead of size and mtime
	DryRun           bool // plan and report, change nothing
	WholeFile        bool // never send deltas
	AllowEmptySource bool // let an empty source with Delete empty the mirror
	// Sparse (rsync's -S) sends the holes of a file, found with
	// SEEK_DATA/SEEK_HOLE where the system tells, and the whole blocks of
	// zeros it reads, as holes: they are neither read nor sent nor
	// written. The mirror's client needs ClientOptions.Sparse too.
	Sparse bool
	Ignore *ignore.Matcher
	Logger *slog.Logger
	// OnItem is called for every change applied (or, in a dry run,
	// planned). It may be called from several goroutines at once when
	// several mirrors sync concurrently.
	OnItem func(Item)
	// DeferDeletes leaves the extras on the mirror and lists them in
	// Result.Deferred instead: watch mode deletes only once the source
	// has been quiet for a while, so a rebuild never leaves a gap. An
	// entry of another kind in the way of a new one is still replaced.
	DeferDeletes bool
	// Spare, if set, names mirror entries that are never deleted as
	// extras, like ignored ones: what only the mirror had when a watch
	// started (user uploads).
	Spare func(path string) bool
	// Writing decides about a file that another process still has open
	// for writing; nil sends it as it is, like rsync.
	Writing func(path string) WritingAction
	// Chmod changes the source's permission bits before they are
	// compared and applied (rsync's --chmod); Chown gives every entry
	// this owner and group (--chown); NumericIDs keeps the source's ids
	// instead of mapping their names on the mirror's host (rsync's
	// --numeric-ids). None of them touches a mirror root that existed.
	Chmod      *perm.Chmod
	Chown      perm.Chown
	NumericIDs bool
	// Progress, if set, hears what a sync is about to send and how far
	// it got. Each mirror needs its own: it is called from that mirror's
	// goroutine only.
	Progress Progress
	// DelayUpdates (rsync's --delay-updates) stages a batch's new and
	// changed files and symlinks on the mirror and renames them into
	// place together once all are there, so a change of many files
	// becomes visible at once. An entry of another kind in the way of
	// one of them is removed just before (a directory in the way of a
	// new directory at once), deletes of extras come after, and
	// directory metadata last. New directories and metadata-only changes
	// are applied as the batch goes, as rsync does.
	DelayUpdates bool
	// BackupDir (rsync's --backup --backup-dir) makes the mirror move
	// every file or symlink a batch replaces and every entry it deletes
	// into BackupDir/<stamp>/<path>, one stamp per batch, and record what
	// the batch created, so that Client.Rollback undoes the batch.
	// Relative to the mirror root unless absolute; a relative one is
	// never listed, compared or deleted, like an ignored path. Renames in
	// the source are sent as new content while it is set.
	BackupDir string
	// checkBatch waits for the mirror to accept the backup directory
	// before anything is sent (the full syncs).
	checkBatch bool
	// morePlan: this plan is a later part of one sync (SyncTree applies a
	// large one in parts); its files add to the progress total.
	morePlan bool
}

// Progress follows the file data of one sync of one mirror.
type Progress interface {
	// Plan is called once the comparison is done, with the files whose
	// content will be sent and their total size.
	Plan(files int, bytes int64)
	// File is called when a file starts, Read as its data is read
	// (again from the start if the file is read again).
	File(path string, size int64)
	Read(n int64)
}

// progressMore is a Progress that takes a plan in parts: More adds to
// the totals Plan set (a large full sync is applied a part at a time).
type progressMore interface {
	More(files int, bytes int64)
}

// WritingAction is what to do with a file still open for writing.
type WritingAction int

const (
	// Hold leaves the file alone for now; it is listed in Result.Held.
	Hold WritingAction = iota
	// SendPrefix sends what the file holds now, up to its current size,
	// even if it grows meanwhile (a log that is never closed).
	SendPrefix
)

// DeltaMin is the smallest existing file worth a delta: below it the
// signature round trip costs more than sending the (compressed) file.
const DeltaMin = 16 << 10

// Action is what happened to a path.
type Action string

const (
	Created Action = "created"
	Updated Action = "updated"
	MetaSet Action = "meta"
	Deleted Action = "deleted"
	Renamed Action = "renamed" // Target holds the old path
)

// Item is one change to one path of one mirror.
type Item struct {
	Mirror  string
	Action  Action
	Kind    fstree.Kind
	Path    string
	Target  string // symlinks
	Literal int64  // file bytes sent as data
	Matched int64  // file bytes reused from the mirror's old copy
	Count   int    // deletes: entries removed, the directory's contents included
}

// Stats are the totals of one sync of one mirror.
type Stats struct {
	Scanned  int // source entries
	Created  int
	Updated  int
	MetaOnly int
	Renamed  int // moved on the mirror instead of sent again
	Deleted  int // entries removed, contents of removed directories included
	Literal  int64
	Matched  int64
	Sent     int64 // bytes written to the mirror's stream, after compression
	Duration time.Duration
}

// Result is the outcome for one mirror.
type Result struct {
	Mirror string
	Stats  Stats
	Failed []OpError // paths not mirrored; the rest was
	Err    error     // the sync of this mirror stopped
	// Deferred lists the extras left for later (Options.DeferDeletes),
	// only the top-most of each removed subtree.
	Deferred []string
	// Kept lists extras left on the mirror because deletes are off or
	// spared, only the top-most of each subtree.
	Kept []string
	// Held lists files not sent because they are still being written.
	Held []string
	// Vanished lists source files that were deleted between the listing
	// and their reading: nothing to mirror, as rsync's "file has
	// vanished", and the watcher reports the delete.
	Vanished []string
	// Special lists files that were regular when the source was listed
	// and were something else when opened to be sent (a FIFO, socket or
	// device put in their place): skipped, like special files found by
	// the scan, and never opened for I/O, so a FIFO does not block.
	Special []string
}

// ErrRefused wraps every safety refusal: nothing was changed.
var ErrRefused = errors.New("refused")

// ErrBackupDir wraps a backup directory (Options.BackupDir) the mirror
// cannot use: nothing was changed.
var ErrBackupDir = errors.New("unusable backup directory")

// backupDirError is ErrBackupDir, a refusal, with the mirror's words.
type backupDirError struct{ msg string }

func (e *backupDirError) Error() string { return e.msg }

func (e *backupDirError) Is(target error) bool { return target == ErrBackupDir || target == ErrRefused }

// maxAttempts bounds re-reads of a file that keeps changing while sent.
const maxAttempts = 3

// Sync makes m a copy of src.
func Sync(ctx context.Context, src *Source, m Mirror, opt Options) Result {
	return SyncFrom(ctx, func() (*Source, error) { return src, nil }, m, opt)
}

// SyncFrom is Sync with the source still being scanned: the mirror's
// listing is requested first, so both trees are walked at once, then
// source() waits for the source.
func SyncFrom(ctx context.Context, source func() (*Source, error), m Mirror, opt Options) Result {
	start := time.Now()
	sentBefore := m.BytesSent()
	res := Result{Mirror: m.Name()}
	_, err := sync1(ctx, source, m, opt, &res)
	res.Stats.Sent = m.BytesSent() - sentBefore
	res.Stats.Duration = time.Since(start)
	res.Err = err
	return res
}

type plan struct {
	src     *Source        // for reading files
	entries []fstree.Entry // the source entries in scope, in walk order
	root    fstree.Entry   // the source directory itself
	m       Mirror
	opt     Options
	res     *Result
	// The mirror's entries in walk order; dstOf[i] is the index in it of
	// entries[i]'s path (-1: none), and gone holds the paths whose mirror
	// entry was removed to make way for another kind. cur is the index of
	// the source entry being applied.
	dstList []fstree.Entry
	dstOf   []int32
	gone    map[string]bool
	cur     int
	// dropped are source paths (and, in droppedBelow, directories whose
	// contents) left out of this sync because of a conflict.
	dropped, droppedBelow map[string]bool
	kids                  map[string]int // dst directory -> number of direct children
	// touched directories get their metadata set after everything else,
	// children first, since creating or removing entries bumps their mtime.
	touched map[string]bool
	items   []Item
	kept    []string        // extras left in place, every one (Session.Full)
	held    map[string]bool // files not sent because still being written
	rootSet *fstree.Entry   // the root's metadata as set on the mirror
	owner   bool
	strip   [2]uint32 // mode bits the mirror does not apply to [other entries, directories] (a restricted one)
	buf     []byte    // file read buffer, reused
	fhash   *wire.FileHash
	hasher  *blake3.Hasher // reused by sendOnce
	// skipped source paths (see type skipped) and whether the root's own
	// listing failed.
	skipped    map[string]bool
	unreadRoot bool
	// The mirror directory as the session found it, whether it keeps its
	// mode, owner and group (it existed), and as last set (nil: unknown).
	rootFound fstree.Entry
	rootKeep  bool
	dstRoot   *fstree.Entry
	ids       owners // the source's owners in the mirror's ids
}

// sync1 lists the mirror, waits for the source, and runs the plan for the
// whole tree.
func sync1(ctx context.Context, source func() (*Source, error), m Mirror, opt Options, res *Result) (*plan, error) {
	dstList, scanErrs, err := m.Scan(ctx, "", opt.Checksum)
	if err != nil {
		return nil, err
	}
	res.Failed = append(res.Failed, scanErrs...)
	src, err := source()
	if err != nil {
		return nil, err
	}
	res.Stats.Scanned = len(src.Entries)
	opt.checkBatch = true
	return execute(ctx, src, src.Entries, src.RootEnt, nil, dstList, nil, skipped{unread: src.Errors, special: src.Special}, m, opt, res)
}

// skipped are source paths that exist but are not mirrored this run:
// paths that could not be listed or stat-ed, and special files (FIFOs,
// sockets, devices). Like ignored paths, they protect their mirror
// counterparts, and an unread directory everything below it: a failed
// listing never turns into deletes (rsync deletes nothing after an I/O
// error; gosync still deletes elsewhere).
type skipped struct {
	unread  []OpError
	special []string
}

// move is a rename in the source that the mirror repeats instead of
// receiving the content again.
type move struct {
	from, to string
	kind     fstree.Kind
}

// execute makes the mirror's entries dstList match the source entries
// (both in walk order, both covering the same scope: the whole tree, or
// the paths of a watch batch).
// moves are applied first; dstList already shows their entries at the
// new paths.
// dstRoot is the mirror's root as last set, if known: the root's metadata
// is set when it differs, not only when a top-level entry changes.
func execute(ctx context.Context, src *Source, entries []fstree.Entry, root fstree.Entry, dstRoot *fstree.Entry, dstList []fstree.Entry, moves []move, skip skipped, m Mirror, opt Options, res *Result) (*plan, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	log := opt.Logger
	entries, skip = tooLong(entries, skip, res)
	entries = withoutBackups(entries, opt.backupRel(), log)
	if !slices.IsSortedFunc(entries, byPath) {
		// Walks list in this order; anything else is put in it, on a
		// copy (concurrent mirrors share the source's entries).
		entries = slices.Clone(entries)
		slices.SortStableFunc(entries, byPath)
	}
	p := &plan{src: src, entries: entries, root: root, m: m, opt: opt, res: res, cur: -1,
		kids: map[string]int{}, touched: map[string]bool{}, held: map[string]bool{}, owner: m.SetsOwner(), strip: [2]uint32{0o7777 &^ m.PermBits(false), 0o7777 &^ m.PermBits(true)}}
	srcOf := p.join(dstList)
	for i := range dstList {
		p.kids[parentDir(dstList[i].Path)]++
	}
	if err := p.prepareOwners(ctx, entries); err != nil {
		return nil, err
	}
	if len(skip.unread)+len(skip.special) > 0 {
		p.skipped = make(map[string]bool, len(skip.unread)+len(skip.special))
		for _, e := range skip.unread {
			p.skipped[e.Path] = true
			if e.Path == "" {
				p.unreadRoot = true
			}
		}
		for _, pth := range skip.special {
			p.skipped[pth] = true
		}
	}
	// The mirror directory itself: one this session created takes the
	// source root's metadata; one that existed keeps its own mode, owner
	// and group (the server's admin set them: a 2775 www-data web root
	// stays so) and takes only the mtime.
	if found, created, ok := m.Root(); ok {
		p.rootKeep, p.rootFound = !created, found
		if dstRoot == nil {
			dstRoot = &p.rootFound
		}
	}
	p.dstRoot = dstRoot
	if dstRoot != nil && p.rootDiffers(&root, dstRoot) || dstRoot == nil && len(dstList) == 0 {
		// An empty mirror may be one the agent just created, private
		// (0700) until it gets the source root's mode last, even when
		// the source is empty too.
		p.touched[""] = true
	}
	p.warnStripped(log)

	// Deletions: what the mirror has and the source does not.
	var conflicts, extras []*fstree.Entry
	deletes := 0
	protected := p.protectedDirs(dstList)
	gone := map[string]bool{}  // dst directories removed whole
	later := map[string]bool{} // dst directories whose removal is deferred
	kept := map[string]bool{}  // dst directories kept as extras
	for i := range dstList {
		d := &dstList[i]
		dir := parentDir(d.Path)
		switch {
		case gone[dir]:
			gone[d.Path] = d.Kind == fstree.Dir
			deletes++
			continue
		case later[dir]:
			later[d.Path] = d.Kind == fstree.Dir
			continue
		}
		var s *fstree.Entry
		if k := srcOf[i]; k >= 0 && !p.isDropped(d.Path) {
			s = &entries[k]
		}
		switch {
		case s != nil && s.Kind == d.Kind:
			continue
		case s != nil: // a different kind is in the way
			if d.Kind == fstree.Dir && (protected[d.Path] || (p.kids[d.Path] > 0 && !opt.Delete)) {
				res.Failed = append(res.Failed, OpError{Path: d.Path, Msg: fmt.Sprintf("a non-empty directory on the mirror is in the way of a %s; use --delete to replace it", s.Kind)})
				p.drop(d.Path)
				continue
			}
			conflicts = append(conflicts, d)
		case p.ignored(d) || p.notRead(d.Path):
			continue
		case !opt.Delete || p.spared(d):
			p.kept = append(p.kept, d.Path)
			if !kept[dir] {
				res.Kept = append(res.Kept, d.Path)
			}
			kept[d.Path] = d.Kind == fstree.Dir
			continue
		case d.Kind == fstree.Dir && protected[d.Path]:
			continue // holds ignored or spared entries: only its other contents go
		case opt.DeferDeletes:
			res.Deferred = append(res.Deferred, d.Path)
			later[d.Path] = d.Kind == fstree.Dir
			continue
		default:
			extras = append(extras, d)
		}
		deletes++
		gone[d.Path] = d.Kind == fstree.Dir
	}
	if opt.MaxDelete >= 0 && deletes > opt.MaxDelete {
		return nil, fmt.Errorf("%w: %s: would delete %d entries, more than --max-delete %d; nothing was changed", ErrRefused, m.Name(), deletes, opt.MaxDelete)
	}
	if len(entries) == 0 && len(extras) > 0 && !opt.AllowEmptySource {
		return nil, fmt.Errorf("%w: source %s is empty and %s is not; refusing to delete everything on it (if that is what you want, pass --allow-empty-source)", ErrRefused, src.Dir, m.Name())
	}

	// Files that get a delta need the mirror's signatures first: one round
	// trip for all of them.
	sigs := map[string]*delta.Signature{}
	// A dry run asks for them too, so it reports the same literal and
	// matched bytes as the real run would.
	if !opt.WholeFile && !m.Missing() {
		var reqs []SigRequest
		for i := range entries {
			s := &entries[i]
			d := p.dstAt(i)
			if s.Kind == fstree.File && !p.isDropped(s.Path) && d != nil && d.Kind == fstree.File && d.Size >= DeltaMin && p.contentDiffers(s, d) {
				r := SigRequest{Path: s.Path, Size: d.Size}
				if p.refines(d.Size) {
					r.BlockSize = delta.CoarseBlockSize(d.Size)
				}
				reqs = append(reqs, r)
			}
		}
		got, errs, err := m.Signatures(ctx, reqs)
		if err != nil {
			return nil, err
		}
		for i, r := range reqs {
			if errs[i] == nil {
				sigs[r.Path] = got[i]
			} else {
				log.Debug("no signature, sending whole file", slog.String("path", r.Path), slog.String("err", errs[i].Error()))
			}
		}
	}

	if opt.Progress != nil && !opt.DryRun {
		files, bytes := 0, int64(0)
		for i := range entries {
			s := &entries[i]
			if d := p.dstAt(i); s.Kind == fstree.File && !p.isDropped(s.Path) && (d == nil || d.Kind != fstree.File || p.contentDiffers(s, d)) {
				files++
				bytes += s.Size
			}
		}
		if more, ok := opt.Progress.(progressMore); ok && opt.morePlan {
			more.More(files, bytes)
		} else {
			opt.Progress.Plan(files, bytes)
		}
	}

	w := m.Writer()
	batch := !opt.DryRun && (opt.DelayUpdates || opt.BackupDir != "")
	if batch {
		stamp := ""
		if opt.BackupDir != "" {
			stamp = time.Now().UTC().Format(wire.StampLayout)
		}
		if err := w.Batch(opt.DelayUpdates, opt.BackupDir, stamp); err != nil {
			return nil, err
		}
		if opt.BackupDir != "" && opt.checkBatch {
			// Nothing is replaced before the backup directory is known
			// to work.
			errs, err := m.Barrier(ctx)
			if err != nil {
				return nil, err
			}
			for _, e := range errs {
				if e.Op == BatchOp {
					return nil, &backupDirError{fmt.Sprintf("%s: %s: %s; nothing was changed", ErrRefused, m.Name(), e.Msg)}
				}
			}
			res.Failed = append(res.Failed, errs...)
		}
	}
	for _, mv := range moves {
		p.items = append(p.items, Item{Mirror: m.Name(), Action: Renamed, Kind: mv.kind, Path: mv.to, Target: mv.from})
		p.touch(mv.from)
		p.touch(mv.to)
		if !opt.DryRun {
			if err := w.Rename(mv.from, mv.to, mv.kind); err != nil {
				return nil, err
			}
		}
	}
	// Staged, a file or symlink whose path holds an entry of another
	// kind has that entry removed just before the commit; a new
	// directory needs its path at once.
	var late []*fstree.Entry
	for _, d := range conflicts {
		if opt.DelayUpdates && p.srcEntry(d.Path).Kind != fstree.Dir {
			late = append(late, d)
			continue
		}
		if err := p.remove(w, d); err != nil {
			return nil, err
		}
		p.removed(d.Path)
	}
	for i := range entries {
		s := &entries[i]
		if p.isDropped(s.Path) {
			continue
		}
		p.cur = i
		if err := p.apply(ctx, w, s, sigs[s.Path]); err != nil {
			return nil, err
		}
	}
	p.cur = -1
	for _, d := range late {
		if err := p.remove(w, d); err != nil {
			return nil, err
		}
		p.removed(d.Path)
	}
	if batch && opt.DelayUpdates {
		if err := w.Commit(); err != nil {
			return nil, err
		}
	}
	for _, d := range extras {
		if err := p.remove(w, d); err != nil {
			return nil, err
		}
	}
	if err := p.finishDirs(w); err != nil {
		return nil, err
	}
	if opt.DryRun {
		p.emit(nil)
		return p, nil
	}
	opErrs, err := m.Barrier(ctx)
	if err != nil {
		return nil, err
	}
	if opErrs, err = p.retryWhole(ctx, w, opErrs, sigs); err != nil {
		return nil, err
	}
	res.Failed = append(res.Failed, opErrs...)
	p.emit(opErrs)
	return p, nil
}

// retryWhole sends again, whole, the files whose delta did not reproduce
// the source on the mirror: a false block match (strong sums are kept
// short) or a mirror copy that changed after its signature was taken.
// The agent verified the hash and kept the old file, so nothing wrong was
// ever visible.
func (p *plan) retryWhole(ctx context.Context, w Writer, opErrs []OpError, sigs map[string]*delta.Signature) ([]OpError, error) {
	var keep []OpError
	var retry []*fstree.Entry
	for _, e := range opErrs {
		if s := p.srcEntry(e.Path); e.Code == wire.CodeVerify && sigs[e.Path] != nil && s != nil {
			retry = append(retry, s)
			continue
		}
		keep = append(keep, e)
	}
	if len(retry) == 0 {
		return opErrs, nil
	}
	var sent []string
	// The files' items, by path: found in one pass.
	items := make(map[string][]int, len(retry))
	for _, s := range retry {
		items[s.Path] = nil
	}
	for i := range p.items {
		if it := &p.items[i]; it.Kind == fstree.File {
			if l, ok := items[it.Path]; ok {
				items[it.Path] = append(l, i)
			}
		}
	}
	for _, s := range retry {
		p.opt.Logger.Debug("delta did not verify, sending whole", slog.String("path", s.Path))
		lit, matched, err := p.sendFile(ctx, w, s, nil)
		if errors.Is(err, errHeld) {
			p.held[s.Path] = true
			p.res.Held = append(p.res.Held, s.Path)
			continue
		}
		if errors.Is(err, fstree.ErrNotRegular) {
			p.res.Special = append(p.res.Special, s.Path)
			continue
		}
		if err != nil {
			var fe *fileError
			if !errors.As(err, &fe) {
				return nil, err
			}
			if fe.vanished {
				p.res.Vanished = append(p.res.Vanished, s.Path)
			} else {
				keep = append(keep, fe.opError(s.Path))
			}
			continue
		}
		for _, i := range items[s.Path] {
			p.items[i].Literal, p.items[i].Matched = lit, matched
		}
		sent = append(sent, s.Path)
	}
	if p.opt.DelayUpdates && !p.opt.DryRun && len(sent) > 0 {
		if err := w.Commit(); err != nil {
			return nil, err
		}
	}
	for _, pth := range sent {
		// The rename bumped the parent's mtime again.
		dir := parentDir(pth)
		ds := &p.root
		if dir != "" {
			ds = p.srcEntry(dir)
		}
		if ds != nil {
			if err := w.SetMeta(dir, fstree.Dir, p.meta(ds)); err != nil {
				return nil, err
			}
		}
	}
	more, err := p.m.Barrier(ctx)
	if err != nil {
		return nil, err
	}
	return append(keep, more...), nil
}

// protectedDirs marks mirror directories that hold ignored, spared or
// unread entries: they are never removed whole, since those are never
// deleted.
func (p *plan) protectedDirs(dst []fstree.Entry) map[string]bool {
	prot := map[string]bool{}
	for i := range dst {
		d := &dst[i]
		if !p.ignored(d) && !p.spared(d) && !p.notRead(d.Path) {
			continue
		}
		for dir := parentDir(d.Path); dir != "" && !prot[dir]; dir = parentDir(dir) {
			prot[dir] = true
		}
	}
	return prot
}

func (p *plan) ignored(d *fstree.Entry) bool {
	if rel := p.opt.backupRel(); rel != "" && within(d.Path, rel) {
		return true // the backups, protected as ignored paths are
	}
	return p.opt.Ignore != nil && p.opt.Ignore.Ignored(d.Path, d.Kind == fstree.Dir)
}

// backupRel is the backup directory's path in the mirror, or "" when it
// is not inside it (none, or absolute: the agent refuses an absolute one
// inside the mirror).
func (o *Options) backupRel() string {
	if o.BackupDir == "" || path.IsAbs(o.BackupDir) {
		return ""
	}
	rel := path.Clean(o.BackupDir)
	if rel == "." || wire.ValidPath(rel) != nil {
		return ""
	}
	return rel
}

// withoutBackups leaves out of the source entries the backup directory's
// path and all below it: the mirror keeps its backups there.
func withoutBackups(entries []fstree.Entry, rel string, log *slog.Logger) []fstree.Entry {
	if rel == "" || !slices.ContainsFunc(entries, func(e fstree.Entry) bool { return within(e.Path, rel) }) {
		return entries
	}
	log.Warn("the source has the backup directory's path; it is not mirrored", slog.String("path", printable(rel, false)))
	return slices.DeleteFunc(slices.Clone(entries), func(e fstree.Entry) bool { return within(e.Path, rel) })
}

func (p *plan) spared(d *fstree.Entry) bool { return p.opt.Spare != nil && p.opt.Spare(d.Path) }

// tooLong leaves out of entries the paths (and symlink targets) longer
// than the protocol carries, each reported once at its topmost entry, and
// adds them to skip so their mirror counterparts are kept. The rest of
// the tree is mirrored as usual.
func tooLong(entries []fstree.Entry, skip skipped, res *Result) ([]fstree.Entry, skipped) {
	long := func(e *fstree.Entry) bool { return len(e.Path) > wire.MaxPath || len(e.Target) > wire.MaxPath }
	i := slices.IndexFunc(entries, func(e fstree.Entry) bool { return long(&e) })
	if i < 0 {
		return entries, skip
	}
	kept := slices.Clone(entries[:i])
	var top string
	for j := i; j < len(entries); j++ {
		e := &entries[j]
		if !long(e) {
			kept = append(kept, *e)
			continue
		}
		if top != "" && strings.HasPrefix(e.Path, top+"/") {
			continue
		}
		top = e.Path
		what := fmt.Sprintf("path of %d bytes", len(e.Path))
		if len(e.Path) <= wire.MaxPath {
			what = fmt.Sprintf("symlink target of %d bytes", len(e.Target))
		}
		res.Failed = append(res.Failed, OpError{Path: e.Path, Msg: fmt.Sprintf("%s, longer than the %d gosync can send: not mirrored (nor anything below it)", what, wire.MaxPath)})
		skip.unread = append(skip.unread, OpError{Path: e.Path})
	}
	return kept, skip
}

// notRead tells whether pth is a skipped source path or lies below one.
func (p *plan) notRead(pth string) bool {
	if p.skipped == nil {
		return false
	}
	if p.unreadRoot {
		return true
	}
	for ; pth != ""; pth = parentDir(pth) {
		if p.skipped[pth] {
			return true
		}
	}
	return false
}

// join puts dstList in walk order (an agent lists in it; one that does
// not is sorted) and pairs it with the source entries, in walk order
// too: it sets p.dstOf and returns, for each mirror entry, the index
// of the source entry of its path (-1: none). Both walks list a
// directory's names sorted bytewise, so one pass pairs them.
func (p *plan) join(dstList []fstree.Entry) []int32 {
	if !slices.IsSortedFunc(dstList, byPath) {
		slices.SortStableFunc(dstList, byPath)
	}
	p.dstList = dstList
	p.dstOf = make([]int32, len(p.entries))
	srcOf := make([]int32, len(dstList))
	i, j := 0, 0
	for i < len(p.entries) || j < len(dstList) {
		c := -1
		switch {
		case i == len(p.entries):
			c = 1
		case j < len(dstList):
			c = comparePaths(p.entries[i].Path, dstList[j].Path)
		}
		switch {
		case c < 0:
			p.dstOf[i] = -1
			i++
		case c > 0:
			srcOf[j] = -1
			j++
		default:
			// One string for both: the mirror's copy is garbage at once.
			dstList[j].Path = p.entries[i].Path
			p.dstOf[i], srcOf[j] = int32(j), int32(i)
			// A repeated path on the mirror (an agent that lists one
			// twice) pairs its last listing, as a map would.
			for j+1 < len(dstList) && dstList[j+1].Path == dstList[j].Path {
				srcOf[j] = -1
				j++
				p.dstOf[i], srcOf[j] = int32(j), int32(i)
			}
			i++
			j++
		}
	}
	return srcOf
}

func byPath(a, b fstree.Entry) int { return comparePaths(a.Path, b.Path) }

// dstAt is the mirror's entry at the path of source entry i, or nil.
func (p *plan) dstAt(i int) *fstree.Entry {
	j := p.dstOf[i]
	if j < 0 {
		return nil
	}
	d := &p.dstList[j]
	if p.gone != nil && p.gone[d.Path] {
		return nil
	}
	return d
}

// dstFor is the mirror's entry at s's path, or nil.
func (p *plan) dstFor(s *fstree.Entry) *fstree.Entry {
	if c := p.cur; c >= 0 && c < len(p.entries) && s == &p.entries[c] {
		return p.dstAt(c)
	}
	return p.dstEntry(s.Path)
}

// dstEntry is the mirror's entry at pth, or nil.
func (p *plan) dstEntry(pth string) *fstree.Entry {
	j, ok := slices.BinarySearchFunc(p.dstList, pth, func(e fstree.Entry, t string) int { return comparePaths(e.Path, t) })
	if !ok {
		return nil
	}
	for j+1 < len(p.dstList) && p.dstList[j+1].Path == pth {
		j++
	}
	if p.gone != nil && p.gone[pth] {
		return nil
	}
	return &p.dstList[j]
}

// removed notes that the mirror's entry at pth is gone.
func (p *plan) removed(pth string) {
	if p.gone == nil {
		p.gone = map[string]bool{}
	}
	p.gone[pth] = true
}

// drop leaves the source entry at pth and everything below it out of
// this sync.
func (p *plan) drop(pth string) {
	if p.dropped == nil {
		p.dropped, p.droppedBelow = map[string]bool{}, map[string]bool{}
	}
	p.dropped[pth], p.droppedBelow[pth] = true, true
}

// isDropped reports whether the source entry at pth is left out (drop).
func (p *plan) isDropped(pth string) bool {
	if p.dropped == nil {
		return false
	}
	if p.dropped[pth] {
		return true
	}
	for dir := parentDir(pth); dir != ""; dir = parentDir(dir) {
		if p.droppedBelow[dir] {
			return true
		}
	}
	return false
}

func (p *plan) contentDiffers(s, d *fstree.Entry) bool {
	if s.Size != d.Size {
		return true
	}
	if p.opt.Checksum {
		return !s.HasHash || !d.HasHash || s.Hash != d.Hash
	}
	return s.Mtime != d.Mtime
}

func (p *plan) metaDiffers(s, d *fstree.Entry) bool {
	if s.Mtime != d.Mtime {
		return true
	}
	if s.Kind != fstree.Symlink && p.perm(s, d) != d.Perm {
		return true
	}
	uid, setUid := p.ids.uid(s)
	gid, setGid := p.ids.gid(s)
	if p.owner {
		return setUid && uid != d.Uid || setGid && gid != d.Gid
	}
	return setGid && gid != d.Gid && p.m.SetsGroup(gid)
}

// rootDiffers is metaDiffers for the mirror directory itself: only the
// mtime counts for one that keeps its own mode, owner and group.
func (p *plan) rootDiffers(s, d *fstree.Entry) bool {
	if p.rootKeep {
		return s.Mtime != d.Mtime
	}
	return p.metaDiffers(s, d)
}

// meta is what the mirror's copy of s is given: the mode after --chmod,
// and the owner and group in the mirror's ids (after --chown) where the
// mirror sets them.
func (p *plan) meta(s *fstree.Entry) wire.Meta { return p.metaOver(s, p.dstFor(s)) }

// metaOver is meta for s replacing d, the mirror's entry at its path
// (nil: none).
func (p *plan) metaOver(s, d *fstree.Entry) wire.Meta {
	m := wire.Meta{Perm: p.perm(s, d), Mtime: s.Mtime}
	uid, setUid := p.ids.uid(s)
	gid, setGid := p.ids.gid(s)
	switch {
	case p.owner && (setUid || setGid):
	case !p.owner && setGid && p.m.SetsGroup(gid):
	default:
		return m
	}
	// The half not set stays as it is: the mirror's copy's, or the
	// agent's own for an entry it creates.
	if !setUid {
		uid = p.ids.selfUid
		if d != nil && d.Kind == s.Kind {
			uid = d.Uid
		}
	}
	if !setGid {
		gid = p.ids.selfGid
		if d != nil && d.Kind == s.Kind {
			gid = d.Gid
		}
	}
	m.Owner, m.Uid, m.Gid = true, uid, gid
	return m
}

// mirrored is s as the mirror holds it once s is applied: what a watch
// session remembers, so the next batch compares like with like.
func (p *plan) mirrored(s fstree.Entry) fstree.Entry { return p.mirroredOver(s, p.dstFor(&s)) }

// mirroredOver is mirrored for s replacing d (nil: none).
func (p *plan) mirroredOver(s fstree.Entry, d *fstree.Entry) fstree.Entry {
	m := p.metaOver(&s, d)
	if s.Kind != fstree.Symlink {
		s.Perm = m.Perm
	}
	if m.Owner {
		if p.owner {
			s.Uid = m.Uid
		}
		s.Gid = m.Gid
	}
	return s
}

// perm is the mode to give the mirror's copy of s, whose copy there now is
// d (nil if none): the source's after --chmod. A source without
// permission bits (Windows: 0644 files, 0755 directories) keeps the
// executable bits the mirror's copy has, so a deploy script made
// executable on the server stays executable; with --chmod it gets
// 0644 and 0755 changed by --chmod, nothing of the mirror's.
func (p *plan) perm(s, d *fstree.Entry) uint32 {
	strip := p.stripOf(s.Kind)
	if !p.opt.Chmod.Empty() && s.Kind != fstree.Symlink {
		return p.opt.Chmod.Apply(s.Perm, s.Kind == fstree.Dir) &^ strip
	}
	if !s.NoPerm || d == nil || d.Kind != s.Kind {
		return s.Perm &^ strip
	}
	return (s.Perm | d.Perm&0o111) &^ strip
}

// stripOf is the mode bits the mirror does not apply to an entry of kind k.
func (p *plan) stripOf(k fstree.Kind) uint32 {
	if k == fstree.Dir {
		return p.strip[1]
	}
	return p.strip[0]
}

// warnStripped tells, once per plan, which new entries the mirror
// creates without bits of their source mode (a restricted agent).
func (p *plan) warnStripped(log *slog.Logger) {
	if p.strip == [2]uint32{} {
		return
	}
	n, first := 0, ""
	for i := range p.entries {
		s := &p.entries[i]
		if s.Kind != fstree.Symlink && p.opt.Chmod.Apply(s.Perm, s.Kind == fstree.Dir)&p.stripOf(s.Kind) != 0 && p.dstAt(i) == nil {
			if n == 0 {
				first = s.Path
			}
			n++
		}
	}
	if n > 0 {
		log.Warn("the mirror's agent is restricted: setuid, setgid and sticky bits are not applied", slog.String("mirror", p.m.Name()),
			slog.Int("entries", n), slog.String("first", printable(first, false)))
	}
}

func (p *plan) touch(pth string) { p.touched[parentDir(pth)] = true }

func (p *plan) remove(w Writer, d *fstree.Entry) error {
	count := 1
	if d.Kind == fstree.Dir {
		count += p.countBelow(d.Path)
	}
	p.items = append(p.items, Item{Mirror: p.m.Name(), Action: Deleted, Kind: d.Kind, Path: d.Path, Count: count})
	p.touch(d.Path)
	if p.opt.DryRun {
		return nil
	}
	return w.Delete(d.Path, d.Kind)
}

func (p *plan) countBelow(dir string) int {
	prefix := dir + "/"
	n := 0
	j, _ := slices.BinarySearchFunc(p.dstList, dir, func(e fstree.Entry, t string) int { return comparePaths(e.Path, t) })
	for ; j < len(p.dstList); j++ {
		k := p.dstList[j].Path
		if k == dir {
			continue
		}
		if !strings.HasPrefix(k, prefix) {
			break
		}
		if p.gone == nil || !p.gone[k] {
			n++
		}
	}
	return n
}

func (p *plan) apply(ctx context.Context, w Writer, s *fstree.Entry, sig *delta.Signature) error {
	d := p.dstFor(s)
	name := p.m.Name()
	switch s.Kind {
	case fstree.Dir:
		if d == nil {
			p.items = append(p.items, Item{Mirror: name, Action: Created, Kind: s.Kind, Path: s.Path})
			p.touch(s.Path)
			p.touched[s.Path] = true
			if p.opt.DryRun {
				return nil
			}
			return w.Mkdir(s.Path, p.meta(s))
		}
		if p.metaDiffers(s, d) {
			p.touched[s.Path] = true
		}
		return nil
	case fstree.Symlink:
		if d == nil || d.Target != s.Target {
			act := Created
			if d != nil {
				act = Updated
			}
			p.items = append(p.items, Item{Mirror: name, Action: act, Kind: s.Kind, Path: s.Path, Target: s.Target})
			p.touch(s.Path)
			if p.opt.DryRun {
				return nil
			}
			return w.Symlink(s.Path, s.Target, p.meta(s))
		}
		if p.metaDiffers(s, d) {
			return p.setMeta(w, s)
		}
		return nil
	case fstree.File:
		if d != nil && !p.contentDiffers(s, d) {
			if p.metaDiffers(s, d) {
				return p.setMeta(w, s)
			}
			return nil
		}
		act := Created
		if d != nil {
			act = Updated
		}
		p.touch(s.Path)
		if !p.opt.DryRun && p.outOfSpace() {
			// Sending the rest would only fill the link: each file would
			// fail the same way on the mirror.
			p.res.Failed = append(p.res.Failed, errNoSpace.opError(s.Path))
			return nil
		}
		var lit, matched int64
		var err error
		if p.opt.DryRun {
			lit, matched, err = p.dryDelta(ctx, s, sig)
		} else {
			lit, matched, err = p.sendFile(ctx, w, s, sig)
		}
		if err != nil {
			var fe *fileError
			switch {
			case errors.Is(err, errHeld):
				p.held[s.Path] = true
				p.res.Held = append(p.res.Held, s.Path)
				return nil
			case errors.As(err, &fe) && fe.vanished:
				p.res.Vanished = append(p.res.Vanished, s.Path)
				return nil
			case errors.Is(err, fstree.ErrNotRegular):
				p.res.Special = append(p.res.Special, s.Path)
				return nil
			case errors.As(err, &fe):
				p.res.Failed = append(p.res.Failed, fe.opError(s.Path))
				return nil
			}
			return err
		}
		p.items = append(p.items, Item{Mirror: name, Action: act, Kind: s.Kind, Path: s.Path, Literal: lit, Matched: matched})
	}
	return nil
}

func (p *plan) setMeta(w Writer, s *fstree.Entry) error {
	p.items = append(p.items, Item{Mirror: p.m.Name(), Action: MetaSet, Kind: s.Kind, Path: s.Path})
	if p.opt.DryRun {
		return nil
	}
	return w.SetMeta(s.Path, s.Kind, p.meta(s))
}

// finishDirs sets the metadata of every directory that was created or
// whose contents changed, deepest first, the root last.
func (p *plan) finishDirs(w Writer) error {
	var dirs []string
	for d := range p.touched {
		dirs = append(dirs, d)
	}
	// Reverse lexical order puts every directory before its parent.
	slices.Sort(dirs)
	slices.Reverse(dirs)
	for _, dir := range dirs {
		var s *fstree.Entry
		if dir == "" {
			s = &p.root
		} else {
			s = p.srcEntry(dir)
		}
		if s == nil || s.Kind != fstree.Dir {
			continue // removed, or not a directory in the source
		}
		if !p.opt.DryRun {
			// As it is now: an entry made in it since it was listed (and
			// sent, since the walk saw it) changed its mtime, and no later
			// batch touches it again. A copy: entries may be shared by
			// concurrent mirrors.
			rel := dir
			if rel == "" {
				rel = "."
			}
			if now, err := p.src.stat(rel); err == nil && now.Kind == fstree.Dir {
				fresh := mergeStat(*s, now)
				s = &fresh
			}
		}
		if dir == "" {
			// What the mirror's root is given (would be, in a dry run).
			set := p.mirrored(*s)
			if p.rootKeep {
				set.Perm, set.Uid, set.Gid = p.rootFound.Perm, p.rootFound.Uid, p.rootFound.Gid
			}
			p.rootSet = &set
		}
		if d := p.dstEntry(dir); d != nil && dir != "" && p.metaDiffers(s, d) || dir == "" && p.rootKeep && p.dstRoot != nil && p.rootDiffers(s, p.dstRoot) {
			p.items = append(p.items, Item{Mirror: p.m.Name(), Action: MetaSet, Kind: fstree.Dir, Path: dir})
		}
		if p.opt.DryRun {
			continue
		}
		meta := p.meta(s)
		if dir == "" && p.rootKeep {
			meta.Perm, meta.Owner = p.rootFound.Perm, false
		}
		if err := w.SetMeta(dir, fstree.Dir, meta); err != nil {
			return err
		}
	}
	return nil
}

func (p *plan) srcEntry(pth string) *fstree.Entry {
	i, ok := slices.BinarySearchFunc(p.entries, pth, func(e fstree.Entry, t string) int { return comparePaths(e.Path, t) })
	if !ok {
		return nil
	}
	return &p.entries[i]
}

// comparePaths orders paths as the walk lists them: depth-first with
// names sorted bytewise, i.e. component by component.
func comparePaths(a, b string) int {
	for {
		ia, ib := indexSlash(a), indexSlash(b)
		ca, cb := a[:ia], b[:ib]
		if c := compareStrings(ca, cb); c != 0 {
			return c
		}
		if ia == len(a) || ib == len(b) {
			return len(a) - len(b)
		}
		a, b = a[ia+1:], b[ib+1:]
	}
}

func indexSlash(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return i
		}
	}
	return len(s)
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// emit reports the planned or applied items, leaving out failed ones.
func (p *plan) emit(failed []OpError) {
	bad := map[string]bool{}
	for _, f := range failed {
		bad[f.Path] = true
	}
	st := &p.res.Stats
	for _, it := range p.items {
		if bad[it.Path] || p.held[it.Path] && it.Kind == fstree.File {
			continue
		}
		switch it.Action {
		case Created:
			st.Created++
		case Updated:
			st.Updated++
		case MetaSet:
			st.MetaOnly++
		case Deleted:
			st.Deleted += it.Count
		case Renamed:
			st.Renamed++
		}
		st.Literal += it.Literal
		st.Matched += it.Matched
		if p.opt.OnItem != nil {
			p.opt.OnItem(it)
		}
	}
}

// fileError is a problem with one file: it is reported and the sync goes
// on.
type fileError struct {
	msg      string
	vanished bool // deleted from the source since the listing
	noSpace  bool // not sent: the mirror is out of space
}

func (e *fileError) Error() string { return e.msg }

func (e *fileError) opError(path string) OpError {
	if e.noSpace {
		return OpError{Path: path, Op: "write", Code: wire.CodeNoSpace, Msg: e.msg}
	}
	return OpError{Path: path, Op: "read source", Msg: e.msg}
}

// errNoSpace: a file not sent, or abandoned, because the mirror reported
// a full disk or quota during this batch.
var errNoSpace = &fileError{msg: "not sent: the mirror is out of space", noSpace: true}

// outOfSpace reports whether the mirror has refused a write for want of
// space since the last barrier.
func (p *plan) outOfSpace() bool {
	ns, ok := p.m.(interface{ NoSpace() bool })
	return ok && ns.NoSpace()
}

// errHeld: the file is still open for writing and Options.Writing said
// to leave it for now.
var errHeld = errors.New("still being written")

// sendFile streams one file, whole or as a delta against sig, and
// re-reads it if it changed while being read.
func (p *plan) sendFile(ctx context.Context, w Writer, s *fstree.Entry, sig *delta.Signature) (lit, matched int64, err error) {
	for attempt := 1; ; attempt++ {
		lit, matched, changed, err := p.sendOnce(ctx, w, s, sig)
		if err != nil || !changed {
			return lit, matched, err
		}
		if attempt == maxAttempts {
			return 0, 0, &fileError{msg: fmt.Sprintf("changed while being read %d times; will be retried by the next run", maxAttempts)}
		}
	}
}

// openSource opens a file to send and describes what it holds now. prefix
// is set when the file is still open for writing elsewhere and only what
// it holds now is to be sent; errHeld when it is to be left alone.
func (p *plan) openSource(scanned *fstree.Entry) (f *os.File, s fstree.Entry, prefix bool, err error) {
	f, before, err := p.src.openStat(scanned.Path)
	if err != nil {
		if fileBusy(err) && p.opt.Writing != nil && p.opt.Writing(scanned.Path) == Hold {
			return nil, s, false, errHeld
		}
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, s, false, &fileError{msg: "vanished before it could be sent", vanished: true}
		}
		if errors.Is(err, fstree.ErrNotRegular) {
			return nil, s, false, fstree.ErrNotRegular
		}
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Op == "stat" {
			return nil, s, false, &fileError{msg: "stat: " + errString(err)}
		}
		return nil, s, false, &fileError{msg: "open: " + errString(err)}
	}
	if before.Kind != fstree.File {
		f.Close()
		return nil, s, false, fstree.ErrNotRegular
	}
	if p.opt.Writing != nil && openForWriting(f) {
		if p.opt.Writing(scanned.Path) == Hold {
			f.Close()
			return nil, s, false, errHeld
		}
		prefix = true
	}
	// The freshest metadata wins: what we read is what we describe. A
	// copy: the scanned entries are shared by concurrent mirrors.
	return f, mergeStat(*scanned, before), prefix, nil
}

func (p *plan) sendOnce(ctx context.Context, w Writer, scanned *fstree.Entry, sig *delta.Signature) (lit, matched int64, changed bool, err error) {
	f, fresh, prefix, err := p.openSource(scanned)
	if err != nil {
		return 0, 0, false, err
	}
	defer f.Close()
	s := &fresh
	if p.twoRounds(sig) {
		return p.sendRefined(ctx, w, f, s, prefix, sig)
	}
	blockSize := 0
	if sig != nil {
		blockSize = sig.BlockSize
	}
	if err := w.BeginFile(s.Path, s.Size, p.meta(s), blockSize); err != nil {
		return 0, 0, false, err
	}
	if p.opt.Sparse {
		return p.sendSparse(ctx, w, f, s, prefix, sig)
	}
	// One hasher for the plan: a new one is about 10 KiB, which for
	// a million small files was 10 GB of garbage.
	if p.hasher == nil {
		p.hasher = fstree.NewHasher()
	}
	h := p.hasher
	h.Reset()
	r := io.TeeReader(p.sourceReader(f, s, prefix), h)
	var readErr error
	if sig != nil {
		var st delta.Stats
		st, err = delta.Diff(ctx, sig, readErrTrap{r, &readErr}, func(op delta.Op) error {
			if op.Kind == delta.OpCopy {
				return w.Copy(op.Block, op.Count)
			}
			if p.outOfSpace() {
				return errNoSpace
			}
			return w.Data(op.Data)
		})
		lit, matched = st.Literal, st.Matched
	} else {
		if p.buf == nil {
			p.buf = make([]byte, 256<<10)
		}
		buf := p.buf
		for err == nil {
			if err = ctx.Err(); err != nil {
				break
			}
			if p.outOfSpace() {
				err = errNoSpace
				break
			}
			var n int
			n, readErr = r.Read(buf)
			if n > 0 {
				lit += int64(n)
				err = w.Data(buf[:n])
			}
			if readErr == io.EOF {
				readErr = nil
				break
			}
			if readErr != nil {
				break
			}
		}
	}
	if readErr != nil {
		if err := w.AbortFile(); err != nil {
			return 0, 0, false, err
		}
		return 0, 0, false, &fileError{msg: "read: " + errString(readErr)}
	}
	if errors.Is(err, errNoSpace) {
		if err := w.AbortFile(); err != nil {
			return 0, 0, false, err
		}
		return 0, 0, false, errNoSpace
	}
	if err != nil {
		return 0, 0, false, err // the mirror's stream failed, or ctx ended
	}
	if lit+matched != s.Size || p.changedWhileRead(f, s, prefix) {
		if err := w.AbortFile(); err != nil {
			return 0, 0, false, err
		}
		return 0, 0, true, nil
	}
	var sum fstree.Hash
	h.Sum(sum[:0])
	if err := w.EndFile(sum); err != nil {
		return 0, 0, false, err
	}
	return lit, matched, false, nil
}

// sendSparse is sendOnce with --sparse: the holes of the file (where the
// system tells where its data is) are sent as holes without reading
// them; the data between them is sent whole, where whole blocks of zeros
// become holes too, or as a delta against sig, one piece per run of data.
func (p *plan) sendSparse(ctx context.Context, w Writer, f *os.File, s *fstree.Entry, prefix bool, sig *delta.Signature) (lit, matched int64, changed bool, err error) {
	h := p.fileHash()
	var skipped, read int64 // bytes in holes of the file, bytes read
	pr := p.opt.Progress
	if pr != nil {
		pr.File(s.Path, s.Size)
	}
	// Adjacent holes (a hole, then blocks of zeros read after it) go as
	// one.
	var pending int64
	hole := func(n int64) {
		h.Hole(n)
		pending += n
	}
	flush := func() error {
		if pending == 0 {
			return nil
		}
		n := pending
		pending = 0
		return w.Hole(n)
	}
	var differ *delta.Differ
	if sig != nil {
		differ, err = delta.NewDiffer(ctx, sig, func(op delta.Op) error {
			if err := flush(); err != nil {
				return err
			}
			if op.Kind == delta.OpCopy {
				return w.Copy(op.Block, op.Count)
			}
			if p.outOfSpace() {
				return errNoSpace
			}
			return w.Data(op.Data)
		})
	}
	if p.buf == nil {
		p.buf = make([]byte, 256<<10)
	}
	var readErr error
	for off := int64(0); off < s.Size && err == nil && readErr == nil; {
		start, end, _ := fstree.NextData(f, off, s.Size)
		if start > off {
			skipped += start - off
			if pr != nil {
				pr.Read(start - off)
			}
			hole(start - off)
		}
		if start >= s.Size {
			break
		}
		var in io.Reader = io.NewSectionReader(f, start, end-start)
		if pr != nil {
			in = progressReader{in, pr}
		}
		cr := &countReader{r: readErrTrap{in, &readErr}}
		if differ != nil {
			err = differ.Piece(io.TeeReader(cr, h))
		} else {
			err = p.sendZeros(ctx, cr, start, func(run []byte, zero bool) error {
				if zero {
					hole(int64(len(run)))
					return nil
				}
				h.Write(run)
				lit += int64(len(run))
				if err := flush(); err != nil {
					return err
				}
				return w.Data(run)
			})
		}
		read += cr.n
		if cr.n != end-start {
			break // the file shrank: told below
		}
		off = end
	}
	if differ != nil {
		st := differ.Stats()
		lit, matched = st.Literal, st.Matched
	}
	if readErr != nil {
		if err := w.AbortFile(); err != nil {
			return 0, 0, false, err
		}
		return 0, 0, false, &fileError{msg: "read: " + errString(readErr)}
	}
	if errors.Is(err, errNoSpace) {
		if err := w.AbortFile(); err != nil {
			return 0, 0, false, err
		}
		return 0, 0, false, errNoSpace
	}
	if err != nil {
		return 0, 0, false, err
	}
	grew := false
	if !prefix {
		// One byte more tells a file that grew.
		n, _ := f.ReadAt(p.buf[:1], s.Size)
		grew = n > 0
	}
	if grew || read+skipped != s.Size || p.changedWhileRead(f, s, prefix) {
		if err := w.AbortFile(); err != nil {
			return 0, 0, false, err
		}
		return 0, 0, true, nil
	}
	if err := flush(); err != nil {
		return 0, 0, false, err
	}
	if err := w.EndFile(h.Sum()); err != nil {
		return 0, 0, false, err
	}
	return lit, matched, false, nil
}

// sendZeros reads r, a file's bytes from offset off, and hands send its
// runs of data and of whole blocks of zeros.
func (p *plan) sendZeros(ctx context.Context, r io.Reader, off int64, send func(run []byte, zero bool) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p.outOfSpace() {
			return errNoSpace
		}
		n, rerr := io.ReadFull(r, p.buf)
		err := fstree.SplitZeros(p.buf[:n], off, send)
		off += int64(n)
		if err != nil {
			return err
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// fileHash returns the plan's reusable FileHash, reset.
func (p *plan) fileHash() *wire.FileHash {
	if p.fhash == nil {
		p.fhash = wire.NewFileHash()
	}
	p.fhash.Reset()
	return p.fhash
}

// countReader counts what was read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// changedWhileRead tells whether what was read of f may mix two versions.
// It looks at the descriptor, not the path: a file renamed away or
// replaced while it was read (an editor's save) is a consistent snapshot
// of its inode, and the new version comes with the next batch. Renaming
// or unlinking changes an inode's ctime but not its mtime or size; a
// write changes the mtime. A prefix of a file still being appended to
// only needs the bytes read to stay in place.
func (p *plan) changedWhileRead(f *os.File, before *fstree.Entry, prefix bool) bool {
	after, fi, err := fstree.StatOpen(before.Path, f)
	if err != nil {
		return true
	}
	if prefix {
		return after.Size < before.Size
	}
	if after.Size != before.Size || after.Mtime != before.Mtime {
		return true
	}
	if after.CtimeNs == before.CtimeNs {
		return false
	}
	// Same size and mtime, another ctime: renamed, unlinked, chmod-ed,
	// or written with its mtime put back. Only the first two are safe.
	if fstree.Unlinked(fi) {
		return false
	}
	now, err := p.src.stat(before.Path)
	if err != nil {
		return false // gone from its path: what was read is a snapshot
	}
	if now.Ino == 0 && now.Dev == 0 {
		// The stat has no identity to compare (Windows, where an open
		// file cannot be renamed over anyway): read it again.
		return true
	}
	return now.Ino == after.Ino && now.Dev == after.Dev
}

// dryDelta works out what a real run would send of a file: all of it, or
// with sig the literal and matched bytes of its delta.
func (p *plan) dryDelta(ctx context.Context, s *fstree.Entry, sig *delta.Signature) (lit, matched int64, err error) {
	if sig == nil {
		return s.Size, 0, nil
	}
	f, fresh, _, err := p.openSource(s)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	if p.twoRounds(sig) {
		// Both rounds, as a real run does them (the second asks the
		// mirror for fine signatures, which writes nothing), into a
		// writer that keeps nothing.
		fs := *s
		fs.Size = fresh.Size
		lit, matched, changed, err := p.sendRefined(ctx, discardWriter{}, f, &fs, false, sig)
		if err == nil && changed {
			return 0, 0, &fileError{msg: "changed while it was read"}
		}
		return lit, matched, err
	}
	st, err := delta.Diff(ctx, sig, io.LimitReader(f, fresh.Size), func(delta.Op) error { return nil })
	if err != nil {
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		return 0, 0, &fileError{msg: "read: " + errString(err)}
	}
	return st.Literal, st.Matched, nil
}

// discardWriter is a dry run's mirror stream: it takes a file's
// operations and keeps nothing.
type discardWriter struct{}

func (discardWriter) Mkdir(string, wire.Meta) error                 { return nil }
func (discardWriter) Symlink(string, string, wire.Meta) error       { return nil }
func (discardWriter) SetMeta(string, fstree.Kind, wire.Meta) error  { return nil }
func (discardWriter) Delete(string, fstree.Kind) error              { return nil }
func (discardWriter) Rename(string, string, fstree.Kind) error      { return nil }
func (discardWriter) BeginFile(string, int64, wire.Meta, int) error { return nil }
func (discardWriter) Data([]byte) error                             { return nil }
func (discardWriter) Copy(uint64, uint32) error                     { return nil }
func (discardWriter) CopyAt(int64, uint32) error                    { return nil }
func (discardWriter) Hole(int64) error                              { return nil }
func (discardWriter) EndFile(fstree.Hash) error                     { return nil }
func (discardWriter) AbortFile() error                              { return nil }
func (discardWriter) Batch(bool, string, string) error              { return nil }
func (discardWriter) Commit() error                                 { return nil }

type progressReader struct {
	r  io.Reader
	pr Progress
}

func (r progressReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.pr.Read(int64(n))
	}
	return n, err
}

// readErrTrap records a read error of the source, so a delta that failed
// because of the source is told apart from one that failed on the mirror.
type readErrTrap struct {
	r   io.Reader
	err *error
}

func (t readErrTrap) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		*t.err = err
	}
	return n, err
}

func mergeStat(s, fresh fstree.Entry) fstree.Entry {
	s.Size, s.Mtime, s.Perm, s.Uid, s.Gid, s.CtimeNs = fresh.Size, fresh.Mtime, fresh.Perm, fresh.Uid, fresh.Gid, fresh.CtimeNs
	return s
}

func parentDir(p string) string {
	d := path.Dir(p)
	if d == "." {
		return ""
	}
	return d
}

// sourceReader reads what is to be sent of f, and one byte more that
// tells a file that grew (unless only a prefix is sent), counting it as
// progress.
func (p *plan) sourceReader(f *os.File, s *fstree.Entry, prefix bool) io.Reader {
	limit := s.Size + 1
	if prefix {
		limit = s.Size
	}
	var in io.Reader = io.LimitReader(f, limit)
	if pr := p.opt.Progress; pr != nil {
		pr.File(s.Path, s.Size)
		in = progressReader{in, pr}
	}
	return in
}

// refines tells whether a changed file with a basis of size bytes gets
// two signature rounds (delta.CoarseBlockSize, then finer blocks where
// the first left literals). --sparse sends the data between holes piece
// by piece and keeps one round.
func (p *plan) refines(size int64) bool {
	return size >= delta.RefineMin && !p.opt.Sparse
}

// twoRounds tells whether sig is the coarse first round of a file that
// gets a second, finer one (sendRefined).
func (p *plan) twoRounds(sig *delta.Signature) bool {
	return sig != nil && p.refines(sig.Size) && sig.BlockSize == delta.CoarseBlockSize(sig.Size)
}

// Bounds of a second round: stretches of the basis larger than
// maxRefineGap (a rewrite, not an edit) or literals larger than
// maxRefineLit go as they are, and one file asks for at most
// maxRefineSigs fine signatures.
const (
	maxRefineGap  = 4 << 20
	maxRefineLit  = 4 << 20
	maxRefineSigs = 4096
)

// firstOp is an op of the first round: a copy of coarse blocks, or a
// stretch of the target [off, off+n) left literal, with what its second
// round asked for.
type firstOp struct {
	lit    bool
	off, n int64
	block  uint64
	count  uint32
	// A literal stretch: from is where the basis stretch it replaced
	// starts (the end of the copy before it); open while the first
	// round may still add to it; ans and base, when a fine signature
	// of the basis from base was asked for.
	from int64
	open bool
	ans  *SigAnswer
	base int64
}

// sendRefined is sendOnce for a file whose signature has coarse blocks.
// The first round's copies go to the mirror as the diff finds them. Each
// literal stretch, once the copy after it is found, is held back with
// what follows it while a fine signature of the basis stretch it
// replaced (between the copies around it) is asked for; when that has
// come, the stretch is read again and diffed against it, and what was
// held back goes on. The mirror so patches while the file is read, and
// the extra round trips overlap the diff. A file changed between the
// reads fails the whole-file hash on the mirror, or the check here.
func (p *plan) sendRefined(ctx context.Context, w Writer, f *os.File, s *fstree.Entry, prefix bool, sig *delta.Signature) (lit, matched int64, changed bool, err error) {
	asker, _ := p.m.(sigAsker)
	if err := w.BeginFile(s.Path, s.Size, p.meta(s), sig.BlockSize); err != nil {
		return 0, 0, false, err
	}
	// abort drops the file; a nil e means it changed under the reads.
	abort := func(e error) (int64, int64, bool, error) {
		if err := w.AbortFile(); err != nil {
			return 0, 0, false, err
		}
		return 0, 0, e == nil, e
	}
	h := fstree.NewHasher()
	in := p.sourceReader(f, s, prefix)
	if p.buf == nil {
		p.buf = make([]byte, 256<<10)
	}
	bs := int64(sig.BlockSize)
	fine := delta.FineBlockSize(sig.BlockSize)
	var (
		queue    []firstOp // not yet sent, in order
		pos      int64     // target bytes the first round has covered
		copyEnd  int64     // basis offset after the last copy found
		asked    int
		readErr  error
		changed2 bool // a second read found less than the first
	)
	// close ends the open literal stretch at the tail, the basis stretch
	// it replaced ending at to, and asks for its fine signature.
	closeLit := func(to int64) error {
		k := len(queue) - 1
		if k < 0 || !queue[k].lit || !queue[k].open {
			return nil
		}
		op := &queue[k]
		op.open = false
		if asker == nil || op.n < int64(fine) || op.n > maxRefineLit || to-op.from < int64(fine) || to-op.from > maxRefineGap || asked == maxRefineSigs {
			return nil
		}
		a, err := asker.AskSignatures([]SigRequest{{Path: s.Path, Size: sig.Size, BlockSize: fine, Off: op.from, Len: to - op.from}})
		if err != nil {
			return err
		}
		asked++
		op.ans, op.base = a, op.from
		return nil
	}
	// sendLit sends a closed literal stretch: diffed against its fine
	// signature if it has one, else as it is.
	sendLit := func(op *firstOp) error {
		r := io.NewSectionReader(f, op.off, op.n)
		var fs *delta.Signature
		if op.ans != nil {
			sigs, errs, err := op.ans.Wait(ctx)
			if err != nil {
				return err
			}
			if errs[0] == nil {
				fs = sigs[0]
			}
		}
		if fs != nil {
			fbs := int64(fs.BlockSize)
			fst, err := delta.Diff(ctx, fs, readErrTrap{r, &readErr}, func(d delta.Op) error {
				if d.Kind == delta.OpCopy {
					from := int64(d.Block) * fbs
					n := min(int64(d.Block+uint64(d.Count))*fbs, fs.Size) - from
					return w.CopyAt(op.base+from, uint32(n))
				}
				if p.outOfSpace() {
					return errNoSpace
				}
				return w.Data(d.Data)
			})
			if err != nil {
				return err
			}
			if fst.Literal+fst.Matched != op.n {
				changed2 = true
			}
			lit += fst.Literal
			matched += fst.Matched
			return nil
		}
		for left := op.n; left > 0; {
			if p.outOfSpace() {
				return errNoSpace
			}
			// Literal ops of at most delta.MaxLiteral, as Diff makes them.
			n, err := r.Read(p.buf[:min(left, delta.MaxLiteral)])
			if n > 0 {
				if err := w.Data(p.buf[:n]); err != nil {
					return err
				}
				left -= int64(n)
				lit += int64(n)
			}
			if err == io.EOF && left > 0 {
				changed2 = true
				return nil
			}
			if err != nil && err != io.EOF {
				readErr = err
				return err
			}
		}
		return nil
	}
	// pump sends from the head of the queue: copies, and literal
	// stretches whose second round has come (or, with wait, all).
	pump := func(wait bool) error {
		for len(queue) > 0 {
			op := &queue[0]
			if op.lit {
				if op.open || !wait && op.ans != nil && !op.ans.Ready() {
					return nil
				}
				if err := sendLit(op); err != nil {
					return err
				}
			} else {
				if err := w.Copy(op.block, op.count); err != nil {
					return err
				}
				matched += op.n
			}
			queue = queue[1:]
		}
		return nil
	}
	st, err := delta.Diff(ctx, sig, readErrTrap{io.TeeReader(in, h), &readErr}, func(op delta.Op) error {
		if op.Kind == delta.OpCopy {
			from := int64(op.Block) * bs
			n := min(from+int64(op.Count)*bs, sig.Size) - from
			if err := closeLit(from); err != nil {
				return err
			}
			queue = append(queue, firstOp{off: pos, n: n, block: op.Block, count: op.Count})
			pos += n
			copyEnd = from + n
			return pump(false)
		}
		if k := len(queue) - 1; k >= 0 && queue[k].lit && queue[k].open {
			queue[k].n += int64(len(op.Data))
		} else {
			queue = append(queue, firstOp{lit: true, open: true, off: pos, n: int64(len(op.Data)), from: copyEnd})
		}
		pos += int64(len(op.Data))
		return nil
	})
	if err == nil {
		if err = closeLit(sig.Size); err == nil {
			err = pump(true)
		}
	}
	switch {
	case readErr != nil:
		return abort(&fileError{msg: "read: " + errString(readErr)})
	case errors.Is(err, errNoSpace):
		return abort(errNoSpace)
	case err != nil:
		return 0, 0, false, err // the mirror's stream failed, or ctx ended
	}
	if changed2 || st.Literal+st.Matched != s.Size || lit+matched != s.Size || p.changedWhileRead(f, s, prefix) {
		return abort(nil)
	}
	var sum fstree.Hash
	h.Sum(sum[:0])
	if err := w.EndFile(sum); err != nil {
		return 0, 0, false, err
	}
	return lit, matched, false, nil
}
