package ignore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bmatcuk/doublestar/v4"
)

// Reasons a pattern is rejected; a [PatternError] wraps one of them.
var (
	ErrUnterminatedClass = errors.New(`unterminated character class: "[" without a closing "]" (write \[ for a literal "[")`)
	ErrUnknownClass      = errors.New("unknown character class")
	ErrTrailingBackslash = errors.New(`trailing backslash escapes nothing (write \\ for a literal backslash)`)
	ErrNUL               = errors.New("contains a NUL byte (is the file UTF-16? save it as UTF-8)")
	ErrEmpty             = errors.New("empty pattern matches nothing")
	ErrComment           = errors.New(`starts with "#", which makes it a comment in an ignore file (write \# for a literal "#")`)
)

// maxLine bounds one line of an ignore file.
const maxLine = 1 << 20

// utf8BOM is dropped from the start of an ignore file, as git does.
const utf8BOM = "\xef\xbb\xbf"

// PatternError reports a pattern that cannot be used. Line is 0 for a
// pattern that did not come from a file (an --exclude value).
type PatternError struct {
	File    string // file name as given to Parse, or the source given to ParsePattern
	Line    int    // 1-based line number, 0 if not from a file
	Pattern string // the pattern as written (after trimming trailing spaces)
	Err     error  // the reason: one of the Err* values, possibly wrapped
}

func (e *PatternError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: invalid pattern %q: %v; fix or remove the line", e.File, e.Line, e.Pattern, e.Err)
	}
	return fmt.Sprintf("%s: invalid pattern %q: %v; fix or remove it", e.File, e.Pattern, e.Err)
}

func (e *PatternError) Unwrap() error { return e.Err }

// Rule is one parsed ignore pattern. Rules are made by [Parse],
// [ParsePattern] and [Defaults]; a Rule built by hand matches nothing. The
// exported fields describe the rule: changing them does not change what it
// matches.
type Rule struct {
	// Pattern is the line as written, after trimming trailing spaces,
	// including a leading "!" and a trailing "/".
	Pattern string
	// Source says where the rule came from: "name:line" for a file,
	// "--exclude" for a flag, "default" for a built-in rule.
	Source string
	// Negate is set for a "!" rule: a match re-includes the path.
	Negate bool
	// DirOnly is set for a rule with a trailing "/": it matches directories only.
	DirOnly bool

	c compiled
}

// String returns the source and the pattern, like "x/.gosyncignore:3: *.log".
func (r Rule) String() string { return r.Source + ": " + r.Pattern }

// kind says how a compiled rule compares a path. The zero kind matches
// nothing, so a Rule that was not compiled is harmless.
type kind uint8

const (
	kindNever   kind = iota
	kindLiteral      // subject == lit
	kindAffix        // subject == prefix + (anything without "/") + suffix
	kindGlob         // doublestar.Match(glob, subject)
)

// compiled is the part of a Rule that Match uses. The subject is the whole
// relative path, or only its last element when basename is set.
type compiled struct {
	kind     kind
	basename bool // pattern had no "/": compare the last path element only
	dirOnly  bool
	fileOnly bool // built-in rules: never hide a whole directory
	lossy    bool // pattern is not valid UTF-8 or holds U+FFFD: compare transcoded paths
	lit      string
	prefix   string // kindAffix, and a quick filter for kindGlob
	suffix   string // kindAffix, and a quick filter for kindGlob
	glob     string // doublestar pattern, also kept for the other kinds for debugging
}

func (c *compiled) match(s string) bool {
	switch c.kind {
	case kindLiteral:
		return s == c.lit
	case kindAffix:
		return len(s) >= len(c.prefix)+len(c.suffix) &&
			strings.HasPrefix(s, c.prefix) && strings.HasSuffix(s, c.suffix) &&
			strings.IndexByte(s[len(c.prefix):len(s)-len(c.suffix)], '/') < 0
	case kindGlob:
		return len(s) >= len(c.prefix)+len(c.suffix) &&
			strings.HasPrefix(s, c.prefix) && strings.HasSuffix(s, c.suffix) &&
			doublestar.MatchUnvalidated(c.glob, s)
	}
	return false
}

// Parse reads gitignore-syntax lines from r. name is used in errors and in
// each rule's Source ("name:line"). An invalid pattern is a *PatternError;
// a read error or an over-long line is a plain error naming the file. A
// line ending in a backslash that escapes nothing is left out, as git
// leaves it out (it can never match there); ParseFile reports it.
func Parse(name string, r io.Reader) ([]Rule, error) {
	rules, _, err := ParseFile(name, r)
	return rules, err
}

// ParseFile is Parse, also returning the lines it left out, each as a
// *PatternError to show as a warning.
func ParseFile(name string, r io.Reader) (rules []Rule, skipped []*PatternError, err error) {
	sc := bufio.NewScanner(r) // ScanLines drops the "\r" of "\r\n", as git does
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, utf8BOM)
		}
		if line == "" || line[0] == '#' {
			continue
		}
		line = trimTrailingSpaces(line)
		rule, ok, err := parseLine(line)
		if errors.Is(err, ErrTrailingBackslash) {
			skipped = append(skipped, &PatternError{File: name, Line: n, Pattern: line, Err: err})
			continue
		}
		if err != nil {
			return nil, nil, &PatternError{File: name, Line: n, Pattern: line, Err: err}
		}
		if !ok {
			continue
		}
		rule.Source = name + ":" + strconv.Itoa(n)
		rules = append(rules, rule)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, n+1, maxLine)
		}
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			return nil, nil, err // names the file already
		}
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	return rules, skipped, nil
}

// ParsePattern parses one pattern given outside a file, such as an --exclude
// value, with source as its Source. Trailing spaces are trimmed as in a file.
// Unlike a file line, an empty pattern and one starting with "#" are errors,
// since a flag cannot be a blank line or a comment.
func ParsePattern(source, pattern string) (Rule, error) {
	fail := func(err error) (Rule, error) {
		return Rule{}, &PatternError{File: source, Pattern: pattern, Err: err}
	}
	if strings.HasPrefix(pattern, "#") {
		return fail(ErrComment)
	}
	p := trimTrailingSpaces(pattern)
	r, ok, err := parseLine(p)
	if err != nil {
		return fail(err)
	}
	if !ok {
		return fail(ErrEmpty)
	}
	r.Source = source
	return r, nil
}

// trimTrailingSpaces drops trailing spaces that are not escaped by a
// backslash, exactly like git's trim_trailing_spaces (spaces only, not tabs).
func trimTrailingSpaces(s string) string {
	end := len(s)
	lastSpace := -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ':
			if lastSpace < 0 {
				lastSpace = i
			}
		case '\\':
			i++
			if i >= len(s) {
				return s
			}
			lastSpace = -1
		default:
			lastSpace = -1
		}
	}
	if lastSpace >= 0 {
		end = lastSpace
	}
	return s[:end]
}

// parseLine turns one trimmed, non-comment line into a rule. ok is false for
// a line that can match nothing and that git silently accepts ("!", "/").
func parseLine(line string) (r Rule, ok bool, err error) {
	if strings.IndexByte(line, 0) >= 0 {
		return r, false, ErrNUL
	}
	r.Pattern = line
	p := line
	if strings.HasPrefix(p, "!") {
		r.Negate = true
		p = p[1:]
	}
	if strings.HasSuffix(p, "/") {
		r.DirOnly = true
		p = p[:len(p)-1]
	}
	// As in git, any "/" left (even an escaped one) anchors the pattern.
	anchored := strings.IndexByte(p, '/') >= 0
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return r, false, nil
	}
	if anchored {
		// "**/name" is "name" at any depth: the same as a basename pattern,
		// which Match can compare more cheaply.
		if k := leadingStars(p); k >= 2 && k < len(p) && p[k] == '/' {
			if rest := p[k+1:]; rest != "" && strings.IndexByte(rest, '/') < 0 {
				p, anchored = rest, false
			}
		}
	}
	lossy := !utf8.ValidString(p) || strings.ContainsRune(p, utf8.RuneError)
	if lossy {
		p = transcode(p)
	}
	c, err := compile(p)
	if err != nil {
		return r, false, err
	}
	if strings.HasSuffix(p, "/") {
		// Only one trailing "/" marks a directory; another one can match no
		// path, since paths never end in "/" (git agrees).
		c = compiled{kind: kindNever}
	}
	c.basename = !anchored
	c.dirOnly = r.DirOnly
	c.lossy = lossy
	r.c = c
	return r, true, nil
}

func leadingStars(p string) int {
	k := 0
	for k < len(p) && p[k] == '*' {
		k++
	}
	return k
}

// compile translates a pattern (negation, anchoring and dir-only slashes
// already removed) into a doublestar pattern, and finds the cheaper literal
// and prefix*suffix forms where they apply.
func compile(p string) (compiled, error) {
	var (
		glob      strings.Builder
		run       strings.Builder // unescaped literal text since the last wildcard
		pre       string          // literal text before the first wildcard
		wildcards int
		simple    = true // only literals and single stars
		lastIsDbl bool   // the last wildcard was "**"
		never     bool
	)
	glob.Grow(len(p) + 4)
	wildcard := func(double bool) {
		if wildcards == 0 {
			pre = run.String()
		}
		wildcards++
		run.Reset()
		lastIsDbl = double
	}
	for i := 0; i < len(p); {
		switch p[i] {
		case '\\':
			if i+1 >= len(p) {
				return compiled{}, ErrTrailingBackslash
			}
			_, n := utf8.DecodeRuneInString(p[i+1:])
			s := p[i+1 : i+1+n]
			writeLiteral(&glob, s)
			run.WriteString(s)
			i += 1 + n
		case '*':
			j := i + leadingStars(p[i:])
			if j-i == 1 {
				glob.WriteByte('*')
				wildcard(false)
			} else {
				// git treats any run of two or more stars like "**";
				// doublestar would read "***" as "**" followed by "*".
				glob.WriteString("**")
				simple = false
				wildcard(true)
				if i > 0 && p[i-1] == '/' && j == len(p) {
					// git's "dir/**" matches everything inside dir but not
					// dir itself; doublestar's would match dir too.
					glob.WriteString("/*")
					wildcard(false)
				}
			}
			i = j
		case '?':
			glob.WriteByte('?')
			simple = false
			wildcard(false)
			i++
		case '[':
			class, next, empty, err := parseClass(p, i)
			if err != nil {
				return compiled{}, err
			}
			glob.WriteString(class)
			simple = false
			never = never || empty
			wildcard(false)
			i = next
		default:
			_, n := utf8.DecodeRuneInString(p[i:])
			writeLiteral(&glob, p[i:i+n])
			run.WriteString(p[i : i+n])
			i += n
		}
	}
	post := run.String()

	c := compiled{glob: glob.String()}
	if !doublestar.ValidatePattern(c.glob) {
		// The translation above only emits valid patterns; this guards it.
		return compiled{}, fmt.Errorf("translated to %q, which doublestar rejects", c.glob)
	}
	switch {
	case never:
		c = compiled{kind: kindNever}
	case wildcards == 0:
		c.kind, c.lit = kindLiteral, post
	case simple && wildcards == 1:
		c.kind, c.prefix, c.suffix = kindAffix, pre, post
	default:
		// prefix and suffix only filter what doublestar is asked: any
		// match starts with the text before the first wildcard and ends
		// with the text after the last one, except that "/**/" may match
		// a single "/", so a "/" right after "**" is not required.
		if lastIsDbl {
			post = strings.TrimPrefix(post, "/")
		}
		c.kind, c.prefix, c.suffix = kindGlob, pre, post
	}
	return c, nil
}

// lastByte returns the byte every subject this rule matches ends with, if
// there is one. The last byte of a path and of its last element are the
// same, so Matcher can index rules by it.
func (c *compiled) lastByte() (byte, bool) {
	s := c.suffix
	if c.kind == kindLiteral {
		s = c.lit
	}
	if s == "" {
		return 0, false
	}
	return s[len(s)-1], true
}

// writeLiteral writes s (one character) so that doublestar matches it
// literally. Braces are literal in gitignore but alternatives in doublestar.
func writeLiteral(b *strings.Builder, s string) {
	if len(s) == 1 && strings.IndexByte(`*?[]{}\`, s[0]) >= 0 {
		b.WriteByte('\\')
	}
	b.WriteString(s)
}

type runeRange struct{ lo, hi rune }

// parseClass parses the bracket expression at p[i] == '[' the way git's
// wildmatch does and rewrites it for doublestar: every member escaped, POSIX
// classes expanded, "/" never matched (git's WM_PATHNAME). empty reports a
// class that can match nothing (such as "[/]"), so the whole pattern can't.
func parseClass(p string, i int) (class string, next int, empty bool, err error) {
	j := i + 1
	negate := false
	if j < len(p) && (p[j] == '!' || p[j] == '^') {
		negate = true
		j++
	}
	var items []runeRange
	prev := rune(-1) // last single member, the low end of a possible range
loop:
	for first := true; ; first = false {
		if j >= len(p) {
			return "", 0, false, ErrUnterminatedClass
		}
		c := p[j]
		switch {
		case c == ']' && !first:
			j++
			break loop
		case c == '\\':
			j++
			if j >= len(p) {
				return "", 0, false, ErrUnterminatedClass
			}
			r, n := utf8.DecodeRuneInString(p[j:])
			j += n
			items = append(items, runeRange{r, r})
			prev = r
		case c == '-' && prev >= 0 && j+1 < len(p) && p[j+1] != ']':
			j++
			if p[j] == '\\' {
				j++
				if j >= len(p) {
					return "", 0, false, ErrUnterminatedClass
				}
			}
			hi, n := utf8.DecodeRuneInString(p[j:])
			j += n
			if prev <= hi {
				// The low end was just added on its own: widen it. (When
				// prev > hi, git still matches prev alone; so do we.)
				items[len(items)-1].hi = hi
			}
			prev = -1
		case c == '[' && j+1 < len(p) && p[j+1] == ':':
			k := strings.IndexByte(p[j+2:], ']')
			if k < 0 {
				return "", 0, false, ErrUnterminatedClass
			}
			end := j + 2 + k
			if k == 0 || p[end-1] != ':' {
				// not "[:name:]": a literal "["
				items = append(items, runeRange{'[', '['})
				prev = '['
				j++
				continue
			}
			name := p[j+2 : end-1]
			set, ok := posixClasses[name]
			if !ok {
				return "", 0, false, fmt.Errorf("%w %q", ErrUnknownClass, "[:"+name+":]")
			}
			items = append(items, set...)
			prev = -1
			j = end + 1
		default:
			r, n := utf8.DecodeRuneInString(p[j:])
			j += n
			items = append(items, runeRange{r, r})
			prev = r
		}
	}
	if negate {
		items = append(items, runeRange{'/', '/'})
	} else {
		kept := items[:0:0]
		for _, it := range items {
			if it.lo > '/' || it.hi < '/' {
				kept = append(kept, it)
				continue
			}
			if it.lo < '/' {
				kept = append(kept, runeRange{it.lo, '/' - 1})
			}
			if it.hi > '/' {
				kept = append(kept, runeRange{'/' + 1, it.hi})
			}
		}
		items = kept
		if len(items) == 0 {
			return "", j, true, nil
		}
	}
	var b strings.Builder
	b.WriteByte('[')
	if negate {
		b.WriteByte('^')
	}
	for _, it := range items {
		b.WriteByte('\\')
		b.WriteRune(it.lo)
		if it.hi != it.lo {
			b.WriteString(`-\`)
			b.WriteRune(it.hi)
		}
	}
	b.WriteByte(']')
	return b.String(), j, false, nil
}

// posixClasses are git's (ASCII-only) character classes.
var posixClasses = map[string][]runeRange{
	"alnum":  {{'0', '9'}, {'A', 'Z'}, {'a', 'z'}},
	"alpha":  {{'A', 'Z'}, {'a', 'z'}},
	"blank":  {{' ', ' '}, {'\t', '\t'}},
	"cntrl":  {{0x00, 0x1f}, {0x7f, 0x7f}},
	"digit":  {{'0', '9'}},
	"graph":  {{0x21, 0x7e}},
	"lower":  {{'a', 'z'}},
	"print":  {{0x20, 0x7e}},
	"punct":  {{0x21, 0x2f}, {0x3a, 0x40}, {0x5b, 0x60}, {0x7b, 0x7e}},
	"space":  {{'\t', '\n'}, {'\r', '\r'}, {' ', ' '}},
	"upper":  {{'A', 'Z'}},
	"xdigit": {{'0', '9'}, {'A', 'F'}, {'a', 'f'}},
}

// transcode maps a string that is not valid UTF-8 to one that is, one to
// one: each invalid byte b becomes the rune U+10FF00+b (private use), every
// valid rune stays. doublestar decodes every invalid byte to U+FFFD, so
// without this a pattern byte 0xff would match a path byte 0xfe. Valid
// strings are returned as they are, without allocating.
func transcode(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(0x10ff00 + rune(s[i]))
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
