package fstree

import (
	"os"
	"sync"
)

// HashCache remembers content hashes by inode, so a walk that hashes
// every file (reconciliation) reads only files whose size, mtime or ctime
// changed since the last walk. ctime cannot be set by users, so even an
// edit that restores the old mtime is noticed. Windows has neither inode
// numbers nor a ctime in its stat: there the walk asks the open file for
// its volume serial, file index and NTFS change time (see fileIndex).
//
// A walk runs between Begin and End; End drops entries the walk did not
// see, so the cache holds at most one entry per file of the tree.
type HashCache struct {
	mu        sync.Mutex
	cur, next map[inode]cachedHash
	Hits      int64 // since Begin
	Misses    int64
}

type inode struct{ dev, ino uint64 }

type cachedHash struct {
	size, ctime int64
	mtime       Time
	hash        Hash
}

// Begin starts a walk.
func (c *HashCache) Begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		c.cur = map[inode]cachedHash{}
	}
	c.next = make(map[inode]cachedHash, len(c.cur))
	c.Hits, c.Misses = 0, 0
}

// End finishes a walk, keeping only what it saw.
func (c *HashCache) End() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next != nil {
		c.cur, c.next = c.next, nil
	}
}

// Hash returns e's content hash from the cache or by reading the file;
// use it as WalkOptions.HashFunc.
func (c *HashCache) Hash(e *Entry, open func() (*os.File, error)) (Hash, error) {
	key := inode{e.Dev, e.Ino}
	c.mu.Lock()
	v, ok := c.cur[key]
	c.mu.Unlock()
	if ok && v.size == e.Size && v.mtime == e.Mtime && v.ctime == e.CtimeNs {
		c.mu.Lock()
		c.Hits++
		if c.next != nil {
			c.next[key] = v
		}
		c.mu.Unlock()
		return v.hash, nil
	}
	sum, err := hashOpen(open)
	if err != nil {
		return sum, err
	}
	c.mu.Lock()
	c.Misses++
	v = cachedHash{size: e.Size, mtime: e.Mtime, ctime: e.CtimeNs, hash: sum}
	switch {
	case c.next != nil:
		c.next[key] = v
	case c.cur != nil:
		c.cur[key] = v
	default: // outside any walk, before the first
		c.cur = map[inode]cachedHash{key: v}
	}
	c.mu.Unlock()
	return sum, nil
}

func hashOpen(open func() (*os.File, error)) (Hash, error) {
	f, err := open()
	if err != nil {
		return Hash{}, err
	}
	defer f.Close()
	sum, _, err := HashReader(f)
	return sum, err
}
