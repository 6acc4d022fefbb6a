package ignore

import (
	"slices"
	"strings"
)

// Matcher answers whether a path is ignored. It is immutable after New and
// safe for concurrent use. A nil *Matcher ignores nothing.
type Matcher struct {
	// Skipped lists, one warning each, the lines of the ignore file that
	// Load left out (see ParseFile).
	Skipped []string
	rules   []Rule
	// transcode is set when some pattern is not valid UTF-8 (or holds
	// U+FFFD): then paths that are not valid UTF-8 are transcoded before
	// matching, which allocates. Otherwise matching never allocates.
	transcode bool
	// byLast[b] lists, last first, the rules whose matches all end in
	// byte b; anyLast the rules whose matches can end in anything. A path
	// ending in b needs only the rules of both lists: most paths end in a
	// byte that few rules need, so Match looks at a handful of rules.
	byLast  [256][]int32
	anyLast []int32
}

// New returns a Matcher over the rules in order: later rules win over
// earlier ones. The usual order is Defaults(), the ignore file, --exclude.
func New(rules ...[]Rule) *Matcher {
	m := &Matcher{rules: slices.Concat(rules...)}
	for i := len(m.rules) - 1; i >= 0; i-- {
		c := &m.rules[i].c
		if c.lossy {
			m.transcode = true
		}
		if c.kind == kindNever {
			continue
		}
		if b, ok := c.lastByte(); ok {
			m.byLast[b] = append(m.byLast[b], int32(i))
			continue
		}
		m.anyLast = append(m.anyLast, int32(i))
	}
	return m
}

// Rules returns a copy of the matcher's rules in order.
func (m *Matcher) Rules() []Rule {
	if m == nil {
		return nil
	}
	return slices.Clone(m.rules)
}

// Match reports whether rel is ignored by the rules that match rel itself,
// without looking at its parent directories. It suits a tree walker that
// does not descend into ignored directories, as git does: call it for each
// entry and skip the entry (and, for a directory, everything below it) when
// it reports true.
//
// rel is relative to the source root, slash-separated, without a leading
// "./" or "/" and without a trailing "/"; the empty path (the root itself)
// is never ignored. isDir must be true only for a real directory: rules with
// a trailing "/" match only when it is, and a symlink to a directory is not
// one (as in git).
func (m *Matcher) Match(rel string, isDir bool) bool {
	if m == nil || rel == "" {
		return false
	}
	if m.transcode {
		rel = transcode(rel)
	}
	i := m.last(rel, isDir)
	return i >= 0 && !m.rules[i].Negate
}

// Ignored reports whether rel is ignored, either by the rules matching rel
// itself or because one of its parent directories is ignored, which no later
// "!" rule can undo. It suits callers that see arbitrary paths: a file system
// watcher, a mirror-side listing. Paths are as for Match; parents are
// checked as directories. It costs one Match per path element.
//
// When the type of rel is unknown, say for a path that is gone, the
// cautious answer is Ignored(rel, false) || Ignored(rel, true): a rule with
// a trailing "/" matches only directories, a built-in rule only files.
func (m *Matcher) Ignored(rel string, isDir bool) bool {
	r, ok := m.Explain(rel, isDir)
	return ok && !r.Negate
}

// Explain returns the rule that decides Ignored(rel, isDir): the rule that
// ignores a parent directory of rel if there is one, else the last rule
// matching rel itself, which may be a negation (then rel is not ignored).
// ok is false when no rule matches, so rel is not ignored. It serves
// messages such as "skipped a.log (ignored by .gosyncignore:3: *.log)".
func (m *Matcher) Explain(rel string, isDir bool) (r Rule, ok bool) {
	if m == nil || rel == "" {
		return Rule{}, false
	}
	if m.transcode {
		// Transcoding maps "/" to itself, so the parents of the
		// transcoded path are the transcoded parents.
		rel = transcode(rel)
	}
	for i := 1; i < len(rel); i++ {
		if rel[i] != '/' {
			continue
		}
		if j := m.last(rel[:i], true); j >= 0 && !m.rules[j].Negate {
			return m.rules[j], true
		}
	}
	if j := m.last(rel, isDir); j >= 0 {
		return m.rules[j], true
	}
	return Rule{}, false
}

// last returns the index of the last rule matching rel, or -1.
func (m *Matcher) last(rel string, isDir bool) int {
	base := rel[strings.LastIndexByte(rel, '/')+1:]
	a, b := m.byLast[rel[len(rel)-1]], m.anyLast
	for len(a) > 0 || len(b) > 0 {
		// Merge the two lists, highest rule index first.
		var i int32
		if len(b) == 0 || len(a) > 0 && a[0] > b[0] {
			i, a = a[0], a[1:]
		} else {
			i, b = b[0], b[1:]
		}
		c := &m.rules[i].c
		if isDir && c.fileOnly || !isDir && c.dirOnly {
			continue
		}
		s := rel
		if c.basename {
			s = base
		}
		if c.match(s) {
			return int(i)
		}
	}
	return -1
}
