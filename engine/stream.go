package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/wire"
)

// A full sync of a large tree never holds either tree whole. The source
// is walked on one goroutine while the mirror's listing streams in
// (Client.ScanEach); both come in walk order, so one pass pairs them, and
// only the paths where something is to be done (with their parent
// directories, whose metadata is restored after their contents change)
// are kept: the scope. The plan then runs on the scope as it does on a
// watch batch. A sync that changes little costs a few batches of memory,
// whatever the tree's size; what it changes costs what its entries take.
//
// The entries left out are those the plan would leave as they are: a
// pair of the same kind whose content and metadata match (compared with
// the plan's own predicates, after --chmod and the owner mapping). A
// source entry whose owner or group the comparison has not resolved (one
// other than the source root's) is kept in the scope: the plan resolves
// it.

// scanEacher is a mirror that streams its listing (Client).
type scanEacher interface {
	ScanEach(ctx context.Context, sub string, hash bool, fn func([]fstree.Entry) error) ([]OpError, error)
}

// SyncTree syncs the source spec names to m, walking it in step with the
// mirror's listing: a tree of any size costs memory for what differs, not
// for what it holds.
func SyncTree(ctx context.Context, spec SourceSpec, m Mirror, opt Options) Result {
	start := time.Now()
	sentBefore := m.BytesSent()
	res := Result{Mirror: m.Name()}
	err := syncTree(ctx, spec, m, opt, &res, nil, nil)
	res.Stats.Sent = m.BytesSent() - sentBefore
	res.Stats.Duration = time.Since(start)
	res.Err = err
	return res
}

// syncTree is sync1 with the source walked in step with the mirror's
// listing. pic, if set, gets the mirror's entries that the plan leaves
// as they are (what a watch remembers of them), in walk order; done, if
// set, gets each plan that ran.
//
// Once the mirror's listing has ended, whatever the walk still lists is
// new to the mirror; a scope grown past scopePart entries then runs as
// a plan of its own, and the walk goes on with an empty one. The first
// plan holds every deletion (each mirror-only entry was in the listing),
// so --max-delete and the empty-source refusal still come before any
// change; later parts only create. With --delay-updates or --backup-dir
// the scope runs as one plan: their batch is one commit.
func syncTree(ctx context.Context, spec SourceSpec, m Mirror, opt Options, res *Result, pic *picture, done func(*plan)) error {
	if done == nil {
		done = func(*plan) {}
	}
	se, ok := m.(scanEacher)
	if !ok {
		src, err := ScanSourceCached(ctx, spec.Dir, spec.Ignore, spec.Hash, spec.Cache)
		if err != nil {
			return err
		}
		defer src.Close()
		if spec.Done != nil {
			spec.Done(src)
		}
		// The plan holds both listings whole; done records them all.
		p, err := sync1(ctx, func() (*Source, error) { return src, nil }, m, opt, res)
		if err == nil {
			done(p)
		}
		return err
	}
	w := spec.Pre.take()
	if w == nil {
		src, err := OpenSource(spec.Dir)
		if err != nil {
			return err
		}
		w = startWalk(ctx, src, spec, scanStreamDepth)
	}
	src := w.src
	defer w.stop()

	cmp := &comparer{p: &plan{src: src, root: src.RootEnt, m: m, opt: opt, res: res, owner: m.SetsOwner(),
		strip: [2]uint32{0o7777 &^ m.PermBits(false), 0o7777 &^ m.PermBits(true)}}, pic: pic}
	if err := cmp.p.prepareOwners(ctx, nil); err != nil {
		return err
	}
	cmp.knownIDs(src.RootEnt)

	cmp.next = func() ([]fstree.Entry, bool) {
		b, ok := <-w.c
		return b, ok
	}

	var dstRoot *fstree.Entry // the root as the last part set it
	parts := 0
	run := func(sk skipped, final bool) error {
		o := opt
		o.checkBatch = parts == 0
		o.morePlan = parts > 0
		if !final || src.Count > 0 {
			// The refusal of an empty source looks at the source, not
			// at the scope, which is empty when nothing is to be done.
			o.AllowEmptySource = true
		}
		p, err := execute(ctx, src, cmp.src, src.RootEnt, dstRoot, cmp.dst, nil, sk, m, o, res)
		if err != nil {
			return err
		}
		parts++
		done(p)
		if p.rootSet != nil {
			dstRoot = p.rootSet
		}
		cmp.ran(p)
		return nil
	}
	if !opt.DelayUpdates && opt.BackupDir == "" {
		cmp.part = func() error { return run(src.skips(), false) }
	}

	scanErrs, err := se.ScanEach(ctx, "", opt.Checksum, cmp.mirrorBatch)
	res.Failed = append(res.Failed, scanErrs...)
	if err == nil {
		err = cmp.finish()
	}
	if err != nil {
		werr := w.stop()
		res.Stats.Scanned = src.Count // as far as the walk went
		if werr != nil && ctx.Err() == nil && !errors.Is(werr, context.Canceled) {
			return werr
		}
		return err
	}
	if err := w.wait(); err != nil {
		return err
	}
	if spec.Done != nil {
		spec.Done(src)
	}
	res.Stats.Scanned = src.Count
	if parts > 0 && len(cmp.src)+len(cmp.dst) == 0 {
		return nil
	}
	return run(skipped{unread: src.Errors, special: src.Special}, true)
}

// scopePart is how many source entries a scope holds before it runs as
// a plan of its own (once the mirror's listing has ended).
var scopePart = 32 << 10

// streamBatch is how many source entries the walk hands over at once.
const streamBatch = 1024

// comparer pairs the source walk with the mirror's listing and keeps the
// scope: the entries of the paths where the plan has something to do.
type comparer struct {
	p *plan // the predicates and the owner mapping; holds no entries

	next   func() ([]fstree.Entry, bool) // the source walk's next batch
	sbatch []fstree.Entry
	si     int
	sdone  bool

	last    fstree.Entry // the mirror entry waiting for the next one
	hasLast bool

	uids, gids map[uint32]bool // source ids the owner mapping knows

	stack    []frame        // the directories the current path is in
	src, dst []fstree.Entry // the scope
	pic      *picture
	// part, if set, runs the scope as a plan of its own (see syncTree).
	part func() error
}

// frame is a directory on either side, above the current path.
type frame struct {
	path string
	s, d fstree.Entry
	hasS bool
	hasD bool
	in   bool // in the scope already
}

// knownIDs notes the ids prepareOwners resolved: the source root's.
func (c *comparer) knownIDs(root fstree.Entry) {
	c.uids = map[uint32]bool{0: true, root.Uid: true}
	c.gids = map[uint32]bool{0: true, root.Gid: true}
}

// resolved reports whether the owner mapping covers s's owner and group.
func (c *comparer) resolved(s *fstree.Entry) bool {
	p := c.p
	if p.opt.NumericIDs || s.NoPerm {
		return true
	}
	ch := p.opt.Chown
	return (!p.owner || ch.User != "" || c.uids[s.Uid]) && (ch.Group != "" || c.gids[s.Gid])
}

// peek returns the next source entry, or nil at the end of the walk.
func (c *comparer) peek() *fstree.Entry {
	for !c.sdone && c.si == len(c.sbatch) {
		b, ok := c.next()
		if !ok {
			c.sdone = true
			c.sbatch = nil
			break
		}
		c.sbatch, c.si = b, 0
	}
	if c.sdone {
		return nil
	}
	return &c.sbatch[c.si]
}

// mirrorBatch takes the mirror's next entries. An entry listed twice
// counts once, as its last listing (as the plan's join does); one out of
// walk order is the mirror's fault, and ends the sync.
func (c *comparer) mirrorBatch(batch []fstree.Entry) error {
	for i := range batch {
		d := &batch[i]
		if c.hasLast {
			switch cmp := comparePaths(d.Path, c.last.Path); {
			case cmp == 0:
				c.last = *d
				continue
			case cmp < 0:
				return fmt.Errorf("%w: %s: %w: listed %s after %s, out of order", ErrMirrorLost, c.p.m.Name(), wire.ErrFrame, quote(d.Path), quote(c.last.Path))
			}
			c.mirrorEntry(&c.last)
		}
		c.last, c.hasLast = *d, true
	}
	return nil
}

// mirrorEntry pairs d with the source entries up to its path.
func (c *comparer) mirrorEntry(d *fstree.Entry) {
	for {
		s := c.peek()
		if s == nil {
			c.pair(nil, d)
			return
		}
		switch cmp := comparePaths(s.Path, d.Path); {
		case cmp < 0:
			c.pair(s, nil)
			c.si++
		case cmp == 0:
			c.pair(s, d)
			c.si++
			return
		default:
			c.pair(nil, d)
			return
		}
	}
}

// finish pairs what is left once the mirror's listing has ended.
func (c *comparer) finish() error {
	if c.hasLast {
		c.mirrorEntry(&c.last)
		c.hasLast = false
	}
	for s := c.peek(); s != nil; s = c.peek() {
		c.pair(s, nil)
		c.si++
		if c.part != nil && len(c.src) >= scopePart {
			if err := c.part(); err != nil {
				return err
			}
		}
	}
	return nil
}

// ran starts a new scope after p ran the current one: the directories
// above the current path are to be given again (as parents of what comes
// next), as p left them on the mirror.
func (c *comparer) ran(p *plan) {
	c.src, c.dst = nil, nil
	for i := range c.stack {
		f := &c.stack[i]
		if f.in && f.hasS && f.s.Kind == fstree.Dir {
			var d *fstree.Entry
			if f.hasD {
				d = &f.d
			}
			f.d, f.hasD = p.mirroredOver(f.s, d), true
		}
		f.in = false
	}
}

// pair takes the entries of one path, either of them nil.
func (c *comparer) pair(s, d *fstree.Entry) {
	pth := ""
	if s != nil {
		pth = s.Path
	} else {
		pth = d.Path
	}
	for n := len(c.stack); n > 0 && !within(pth, c.stack[n-1].path); n = len(c.stack) {
		c.stack = c.stack[:n-1]
	}
	in := s == nil || d == nil || s.Kind != d.Kind || c.differs(s, d)
	if in {
		for i := range c.stack {
			f := &c.stack[i]
			if f.in {
				continue
			}
			if f.hasS {
				c.src = append(c.src, f.s)
			}
			if f.hasD {
				c.dst = append(c.dst, f.d)
			}
			f.in = true
		}
		if s != nil {
			c.src = append(c.src, *s)
		}
		if d != nil {
			c.dst = append(c.dst, *d)
		}
	} else if c.pic != nil {
		c.pic.appendSorted(c.p.mirroredOver(*s, d))
	}
	if s != nil && s.Kind == fstree.Dir || d != nil && d.Kind == fstree.Dir {
		f := frame{path: pth, in: in}
		if s != nil {
			f.s, f.hasS = *s, true
		}
		if d != nil {
			f.d, f.hasD = *d, true
		}
		c.stack = append(c.stack, f)
	}
}

// differs reports whether the plan would change the mirror's d, of s's
// kind, to match s.
func (c *comparer) differs(s, d *fstree.Entry) bool {
	p := c.p
	if !c.resolved(s) {
		return true
	}
	switch s.Kind {
	case fstree.File:
		return p.contentDiffers(s, d) || p.metaDiffers(s, d)
	case fstree.Symlink:
		return s.Target != d.Target || p.metaDiffers(s, d)
	}
	return p.metaDiffers(s, d)
}
