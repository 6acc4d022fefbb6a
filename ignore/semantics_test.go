package ignore

import (
	"strings"
	"testing"
)

const (
	file = false
	dir  = true
)

// Expected outcome for one path.
type outcome int

const (
	kept     outcome = iota // Match false, Ignored false
	byParent                // Match false, Ignored true: a parent directory is ignored
	ignored                 // Match true, Ignored true
)

func (o outcome) String() string {
	return [...]string{"kept", "byParent", "ignored"}[o]
}

type pathCase struct {
	path  string
	isDir bool
	want  outcome
}

// semanticsCase is an ignore file and what it does to some paths. The
// expectations are literal; TestSemanticsAgainstGit checks them against
// `git check-ignore` when git is installed.
type semanticsCase struct {
	name   string
	file   string // the ignore file, byte for byte
	paths  []pathCase
	notGit string // why git disagrees, when it does on purpose
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

var semanticsCases = []semanticsCase{
	{
		name: "pattern without slash matches a name at any depth",
		file: lines("*.log", "tmp"),
		paths: []pathCase{
			{"debug.log", file, ignored},
			{"a/b/debug.log", file, ignored},
			{"a/debug.log.txt", file, kept},
			{"logdir.log/x", file, byParent},
			{"tmp", dir, ignored},
			{"src/tmp", file, ignored},
			{"src/tmpx", file, kept},
			{"src/tmp2/a", file, kept},
			{"src/xtmp", file, kept},
		},
	},
	{
		name: "leading slash anchors to the root",
		file: lines("/build", "/*.tmp"),
		paths: []pathCase{
			{"build", dir, ignored},
			{"build/app.js", file, byParent},
			{"src/build", dir, kept},
			{"src/build/x", file, kept},
			{"x.tmp", file, ignored},
			{"src/x.tmp", file, kept},
		},
	},
	{
		name: "slash in the middle anchors to the root",
		file: lines("docs/tmp", "a/*.txt"),
		paths: []pathCase{
			{"docs/tmp", dir, ignored},
			{"docs/tmp/x", file, byParent},
			{"src/docs/tmp", dir, kept},
			{"a/x.txt", file, ignored},
			{"a/b/x.txt", file, kept},
			{"b/a/x.txt", file, kept},
		},
	},
	{
		name: "anchored path ignores what is below it",
		file: lines("a/b"),
		paths: []pathCase{
			{"a/b/c/d", file, byParent},
			{"a/b/c", dir, byParent},
			{"a/bc", file, kept},
			{"x/a/b", file, kept},
		},
	},
	{
		name: "trailing slash matches directories only",
		file: lines("cache/", "/out/", "lib/gen/", "node_modules/"),
		paths: []pathCase{
			{"cache", file, kept},
			{"src/cache", dir, ignored},
			{"src/cache/x", file, byParent},
			{"out", dir, ignored},
			{"sub/out", dir, kept},
			{"lib/gen", dir, ignored},
			{"lib/gen/a.go", file, byParent},
			{"x/lib/gen", dir, kept},
			{"node_modules", file, kept},
			{"web/node_modules", dir, ignored},
			{"web/node_modules/react/index.js", file, byParent},
		},
	},
	{
		name: "two trailing slashes match nothing",
		file: lines("foo//"),
		paths: []pathCase{
			{"foo", dir, kept},
			{"foo/x", file, kept},
		},
	},
	{
		name: "negation: the last matching rule wins",
		file: lines("*.log", "!important.log", "!*.keep.log", "trace.keep.log"),
		paths: []pathCase{
			{"a.log", file, ignored},
			{"important.log", file, kept},
			{"sub/important.log", file, kept},
			{"x.keep.log", file, kept},
			{"trace.keep.log", file, ignored},
			{"sub/trace.keep.log", file, ignored},
		},
	},
	{
		name: "negation before the rule it should undo does nothing",
		file: lines("!a.log", "*.log"),
		paths: []pathCase{
			{"a.log", file, ignored},
		},
	},
	{
		name: "a file under an ignored directory cannot be re-included",
		file: lines("build/", "!build/keep.txt", "!build/sub/"),
		paths: []pathCase{
			{"build", dir, ignored},
			{"build/keep.txt", file, byParent},
			{"build/sub", dir, byParent},
			{"build/sub/x.txt", file, byParent},
			{"build/other.txt", file, byParent},
		},
	},
	{
		name: "ignoring a directory's contents allows re-including some",
		file: lines("build/*", "!build/keep.txt", "!build/sub/"),
		paths: []pathCase{
			{"build", dir, kept},
			{"build/keep.txt", file, kept},
			{"build/sub", dir, kept},
			{"build/sub/x.txt", file, kept},
			{"build/other.txt", file, ignored},
			{"build/other", dir, ignored},
			{"build/other/y", file, byParent},
		},
	},
	{
		name: "whitelist: ignore everything but one subtree",
		file: lines("/*", "!/foo", "/foo/*", "!/foo/bar"),
		paths: []pathCase{
			{"a", file, ignored},
			{"foo", dir, kept},
			{"foo/x", file, ignored},
			{"foo/x2", dir, ignored},
			{"foo/x2/y", file, byParent},
			{"foo/bar", dir, kept},
			{"foo/bar/baz", file, kept},
		},
	},
	{
		name: "negated directory rule",
		file: lines("*", "!*/", "!*.js"),
		paths: []pathCase{
			{"a.css", file, ignored},
			{"src", dir, kept},
			{"src/app.js", file, kept},
			{"src/app.css", file, ignored},
			{"src/lib", dir, kept},
			{"src/lib/x.js", file, kept},
		},
	},
	{
		name: "re-including the ignored directory itself",
		file: lines("build/", "!build/", "logs/", "!logs"),
		paths: []pathCase{
			{"build", dir, kept},
			{"build/x", file, kept},
			{"logs", dir, kept},
			{"logs/x", file, kept},
		},
	},
	{
		name: "negated dir-only rule does not re-include a file",
		file: lines("*.d", "!keep.d/"),
		paths: []pathCase{
			{"a.d", dir, ignored},
			{"keep.d", dir, kept},
			{"keep.d/x", file, kept},
			{"sub/keep.d", file, ignored},
		},
	},
	{
		name: "leading double star",
		file: lines("**/logs", "**/cache/*.bin", "/**/deep"),
		paths: []pathCase{
			{"logs", dir, ignored},
			{"a/b/logs", dir, ignored},
			{"a/logs/x", file, byParent},
			{"logsx", file, kept},
			{"a/cache/x.bin", file, ignored},
			{"cache/y.bin", file, ignored},
			{"a/cache/sub/x.bin", file, kept},
			{"deep", file, ignored},
			{"a/b/c/deep", file, ignored},
		},
	},
	{
		name: "leading double star with dir-only",
		file: lines("**/tmp/"),
		paths: []pathCase{
			{"tmp", dir, ignored},
			{"a/tmp", dir, ignored},
			{"b/tmp", file, kept},
		},
	},
	{
		name: "trailing double star matches inside, not the directory itself",
		file: lines("abc/**", "!abc/keep"),
		paths: []pathCase{
			{"abc", dir, kept},
			{"abc/x", file, ignored},
			{"abc/d", dir, ignored},
			{"abc/d/e", file, ignored},
			{"abc/keep", file, kept},
			{"x/abc/y", file, kept},
		},
	},
	{
		name: "trailing double star with dir-only",
		file: lines("t/**/"),
		paths: []pathCase{
			{"t", dir, kept},
			{"t/f", file, kept},
			{"t/d", dir, ignored},
			{"t/d/f", file, byParent},
		},
	},
	{
		name: "middle double star",
		file: lines("a/**/b"),
		paths: []pathCase{
			{"a/b", dir, ignored},
			{"a/b/c", file, byParent},
			{"a/x/b", file, ignored},
			{"a/x/y/b", file, ignored},
			{"a/xb", file, kept},
			{"x/a/b", file, kept},
		},
	},
	{
		name: "double star away from slashes acts as a star",
		file: lines("x**y", "p/**q"),
		paths: []pathCase{
			{"xay", file, ignored},
			{"d/xzzy", file, ignored},
			{"xa/by", file, kept},
			{"p/aq", file, ignored},
			{"p/a/q", file, kept},
		},
	},
	{
		name: "double star after a literal prefix acts as a star",
		file: lines("r**/s"),
		paths: []pathCase{
			{"rr/s", file, ignored},
			{"r/t/s", file, kept},
			{"rs", file, kept},
		},
		notGit: "git compares the literal prefix first and then sees **/s as if at the start, " +
			"so it matches r/t/s and rs, against its documentation",
	},
	{
		name: "three stars are two",
		file: lines("t/***", "***/u"),
		paths: []pathCase{
			{"t", dir, kept},
			{"t/a", dir, ignored},
			{"t/a/b", file, ignored},
			{"u", file, ignored},
			{"x/y/u", file, ignored},
		},
	},
	{
		name: "double star alone matches everything",
		file: lines("**"),
		paths: []pathCase{
			{"a", file, ignored},
			{"b", dir, ignored},
			{"b/c", file, ignored},
		},
	},
	{
		name: "star does not cross a slash",
		file: lines("/s*t", "/u/*"),
		paths: []pathCase{
			{"sxt", file, ignored},
			{"s/t", file, kept},
			{"u/v", dir, ignored},
			{"u/v/w", file, byParent},
			{"u", dir, kept},
		},
	},
	{
		name: "star matches dot files and the empty string",
		file: lines("/.*", "x*"),
		paths: []pathCase{
			{".env", file, ignored},
			{"a/.env", file, kept},
			{"x", file, ignored},
		},
	},
	{
		name: "question mark",
		file: lines("?.txt", "/doc?/x", "/x?y"),
		paths: []pathCase{
			{"a.txt", file, ignored},
			{"ab.txt", file, kept},
			{".txt", file, kept},
			{"doc1/x", file, ignored},
			{"docs/x", file, ignored},
			{"doc/x", file, kept},
			{"x/y", file, kept},
			{"x.y", file, ignored},
		},
	},
	{
		name: "character classes",
		file: lines("*.[oa]", "[Mm]akefile.bak", "file[0-9].txt", "[!a-c]*.tmp", "x[^x]y"),
		paths: []pathCase{
			{"main.o", file, ignored},
			{"lib.a", file, ignored},
			{"x.c", file, kept},
			{"Makefile.bak", file, ignored},
			{"makefile.bak", file, ignored},
			{"kakefile.bak", file, kept},
			{"file5.txt", file, ignored},
			{"fileA.txt", file, kept},
			{"d.tmp", file, ignored},
			{"a.tmp", file, kept},
			{"xzy", file, ignored},
			{"xxy", file, kept},
		},
	},
	{
		name: "a class never matches a slash",
		file: lines("/a[/]b", "/c[!x]d", "/e[+-0]f"),
		paths: []pathCase{
			{"a/b", file, kept},
			{"c/d", file, kept},
			{"cyd", file, ignored},
			{"e/f", file, kept},
			{"e.f", file, ignored},
			{"e0f", file, ignored},
		},
	},
	{
		name: "class edge cases: leading ], dangling -, reversed range",
		file: lines("[]]x", "[!]]y", "[a-]z", "[z-a]w", "[a-c-e]v", `[\]-\a]u`),
		paths: []pathCase{
			{"]x", file, ignored},
			{"ax", file, kept},
			{"ay", file, ignored},
			{"]y", file, kept},
			{"-z", file, ignored},
			{"az", file, ignored},
			{"bz", file, kept},
			{"zw", file, ignored},
			{"aw", file, kept},
			{"mw", file, kept},
			{"bv", file, ignored},
			{"-v", file, ignored},
			{"ev", file, ignored},
			{"dv", file, kept},
			{"^u", file, ignored},
			{"bu", file, kept},
		},
	},
	{
		name: "POSIX classes",
		file: lines("[[:digit:]]*.bak", "x[[:upper:][:space:]]y", "[[:alpha]", "[[:punct:]]p", "q[[:xdigit:]-]"),
		paths: []pathCase{
			{"1.bak", file, ignored},
			{"a1.bak", file, kept},
			{"xAy", file, ignored},
			{"x y", file, ignored},
			{"x\ty", file, ignored},
			{"x\ry", file, ignored},
			{"x\vy", file, kept},
			{"xay", file, kept},
			{"h", file, ignored},
			{"[", file, ignored},
			{"z", file, kept},
			{"!p", file, ignored},
			{"~p", file, ignored},
			{"ap", file, kept},
			{"qf", file, ignored},
			{"q-", file, ignored},
			{"qg", file, kept},
		},
	},
	{
		name: "backslash escapes",
		file: lines(`\#hash`, `\!bang`, `\*star`, `q\?`, `back\\slash`, `br\[ace`, `\a\b\c`),
		paths: []pathCase{
			{"#hash", file, ignored},
			{"!bang", file, ignored},
			{"*star", file, ignored},
			{"xstar", file, kept},
			{"q?", file, ignored},
			{"qa", file, kept},
			{`back\slash`, file, ignored},
			{"br[ace", file, ignored},
			{"abc", file, ignored},
		},
	},
	{
		name: "braces are literal",
		file: lines("{a,b}.txt", "c{d"),
		paths: []pathCase{
			{"{a,b}.txt", file, ignored},
			{"a.txt", file, kept},
			{"c{d", file, ignored},
		},
	},
	{
		name: "trailing spaces are trimmed unless escaped",
		file: lines("trail   ", `esc\ `, `esc2\  `, "tab\t", " lead"),
		paths: []pathCase{
			{"trail", file, ignored},
			{"trail ", file, kept},
			{"esc ", file, ignored},
			{"esc", file, kept},
			{"esc2 ", file, ignored},
			{"esc2  ", file, kept},
			{"tab\t", file, ignored},
			{"tab", file, kept},
			{" lead", file, ignored},
			{"lead", file, kept},
		},
	},
	{
		name: "comments and blank lines",
		file: lines("# comment", "", "   ", "#*.txt", " #x", "!", "/", "!/"),
		paths: []pathCase{
			{"# comment", file, kept},
			{"a.txt", file, kept},
			{" #x", file, ignored},
			{"a", dir, kept},
		},
	},
	{
		name: "CRLF line endings",
		file: "*.log\r\nbuild/\r\n!keep.log\r\nlast\r",
		paths: []pathCase{
			{"a.log", file, ignored},
			{"keep.log", file, kept},
			{"build", dir, ignored},
			{"a.log\r", file, kept},
			{"last", file, ignored},
		},
	},
	{
		name: "UTF-8 byte order mark",
		file: "\xef\xbb\xbf# comment\nfoo\n",
		paths: []pathCase{
			{"# comment", file, kept},
			{"foo", file, ignored},
		},
	},
	{
		name: "UTF-8 byte order mark before a pattern",
		file: "\xef\xbb\xbf*.tmp",
		paths: []pathCase{
			{"x.tmp", file, ignored},
			{"\xef\xbb\xbfx.tmp", file, ignored},
		},
	},
	{
		name: "UTF-8 names",
		file: lines("café", "*.résumé", "日本/"),
		paths: []pathCase{
			{"café", file, ignored},
			{"cafe", file, kept},
			{"a/x.résumé", file, ignored},
			{"日本", dir, ignored},
			{"日本/語", file, byParent},
		},
	},
	{
		name: "names that are not UTF-8",
		file: lines("*.bin", "\xff*", "x\xfey", "[\xff]z", "?q", "\ufffd"),
		paths: []pathCase{
			{"a\xfe.bin", file, ignored},
			{"\xff\xfe", file, ignored},
			{"\xfe\xff", file, kept},
			{"x\xfey", file, ignored},
			{"x\xffy", file, kept},
			{"\xffz", file, ignored},
			{"\xfez", file, kept},
			{"\xfeq", file, ignored},
			{"\ufffd", file, ignored},
			{"\xfd", file, kept},
		},
	},
	{
		name: "? and classes match a character, not a byte",
		file: lines("?.md", "caf[é]", "[^a]b"),
		paths: []pathCase{
			{"é.md", file, ignored},
			{"café", file, ignored},
			{"éb", file, ignored},
		},
		notGit: "git matches bytes: é is two of them",
	},
}

func TestSemantics(t *testing.T) {
	for _, tc := range semanticsCases {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := Parse(FileName, strings.NewReader(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			m := New(rules)
			for _, p := range tc.paths {
				wantMatch := p.want == ignored
				wantIgnored := p.want != kept
				if got := m.Match(p.path, p.isDir); got != wantMatch {
					t.Errorf("Match(%q, dir=%v) = %v, want %v", p.path, p.isDir, got, wantMatch)
				}
				if got := bruteMatch(rules, p.path, p.isDir); got != wantMatch {
					t.Errorf("bruteMatch(%q, dir=%v) = %v, want %v", p.path, p.isDir, got, wantMatch)
				}
				if got := m.Ignored(p.path, p.isDir); got != wantIgnored {
					t.Errorf("Ignored(%q, dir=%v) = %v, want %v", p.path, p.isDir, got, wantIgnored)
				}
			}
		})
	}
}
