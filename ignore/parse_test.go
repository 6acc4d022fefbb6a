package ignore

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseRules(t *testing.T) {
	in := "\xef\xbb\xbf# header\r\n" +
		"\r\n" +
		"*.log   \r\n" +
		"!keep.log\r\n" +
		"build/\r\n" +
		"  \r\n" +
		"!/dist/\n" +
		`\!bang` + "\n" +
		`\#hash` + "\n" +
		"!\n" +
		"last"
	type want struct {
		Pattern, Source string
		Negate, DirOnly bool
	}
	wants := []want{
		{"*.log", "f:3", false, false},
		{"!keep.log", "f:4", true, false},
		{"build/", "f:5", false, true},
		{"!/dist/", "f:7", true, true},
		{`\!bang`, "f:8", false, false},
		{`\#hash`, "f:9", false, false},
		{"last", "f:11", false, false},
	}
	rules, err := Parse("f", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != len(wants) {
		t.Fatalf("got %d rules %v, want %d", len(rules), rules, len(wants))
	}
	for i, r := range rules {
		got := want{r.Pattern, r.Source, r.Negate, r.DirOnly}
		if got != wants[i] {
			t.Errorf("rule %d = %+v, want %+v", i, got, wants[i])
		}
	}
	if got, want := rules[0].String(), "f:3: *.log"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# only a comment\n", "\xef\xbb\xbf", "\xef\xbb\xbf\r\n"} {
		rules, err := Parse("f", strings.NewReader(in))
		if err != nil || len(rules) != 0 {
			t.Errorf("Parse(%q) = %v, %v; want no rules and no error", in, rules, err)
		}
	}
}

// The BOM is only dropped at the start of the file.
func TestParseBOMOnlyAtStart(t *testing.T) {
	rules, err := Parse("f", strings.NewReader("a\n\xef\xbb\xbfb\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := New(rules)
	if m.Match("b", false) || !m.Match("\xef\xbb\xbfb", false) {
		t.Error("a BOM after the first line should be part of the pattern")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in      string
		wantErr error
		want    string
	}{
		{
			in:      "ok\n# fine\nfoo[\n",
			wantErr: ErrUnterminatedClass,
			want:    `.gosyncignore:3: invalid pattern "foo[": unterminated character class: "[" without a closing "]" (write \[ for a literal "["); fix or remove the line`,
		},
		{
			in:      "[]\n",
			wantErr: ErrUnterminatedClass,
			want:    `.gosyncignore:1: invalid pattern "[]": unterminated character class: "[" without a closing "]" (write \[ for a literal "["); fix or remove the line`,
		},
		{
			in:      "![!]\n",
			wantErr: ErrUnterminatedClass,
			want:    `.gosyncignore:1: invalid pattern "![!]": unterminated character class: "[" without a closing "]" (write \[ for a literal "["); fix or remove the line`,
		},
		{
			in:      "a[b-\\",
			wantErr: ErrUnterminatedClass,
			want:    `.gosyncignore:1: invalid pattern "a[b-\\": unterminated character class: "[" without a closing "]" (write \[ for a literal "["); fix or remove the line`,
		},
		{
			in:      "[[:alpha:]\n",
			wantErr: ErrUnterminatedClass,
			want:    `.gosyncignore:1: invalid pattern "[[:alpha:]": unterminated character class: "[" without a closing "]" (write \[ for a literal "["); fix or remove the line`,
		},
		{
			in:      "x[[:word:]]\n",
			wantErr: ErrUnknownClass,
			want:    `.gosyncignore:1: invalid pattern "x[[:word:]]": unknown character class "[:word:]"; fix or remove the line`,
		},
		{
			in:      "\xff\xfe*\x00.\x00t\x00m\x00p\x00\n",
			wantErr: ErrNUL,
			want:    `.gosyncignore:1: invalid pattern "\xff\xfe*\x00.\x00t\x00m\x00p\x00": contains a NUL byte (is the file UTF-16? save it as UTF-8); fix or remove the line`,
		},
	}
	for _, tt := range tests {
		rules, err := Parse(FileName, strings.NewReader(tt.in))
		if err == nil {
			t.Errorf("Parse(%q) = %v, want an error", tt.in, rules)
			continue
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("Parse(%q) error:\n got %s\nwant %s", tt.in, got, tt.want)
		}
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Parse(%q) error %v is not %v", tt.in, err, tt.wantErr)
		}
		var pe *PatternError
		if !errors.As(err, &pe) || pe.File != FileName || pe.Line == 0 || pe.Pattern == "" {
			t.Errorf("Parse(%q) error %#v: want a *PatternError with File, Line and Pattern", tt.in, err)
		}
	}
}

func TestParseLongLine(t *testing.T) {
	in := "a\n" + strings.Repeat("x", maxLine+1) + "\n"
	_, err := Parse("f", strings.NewReader(in))
	if err == nil || err.Error() != "f:2: line longer than 1048576 bytes" {
		t.Errorf("Parse(long line) error = %v", err)
	}
}

func TestParseReadError(t *testing.T) {
	_, err := Parse("f", iotest.TimeoutReader(strings.NewReader("a\nb\n")))
	if err == nil || !strings.HasPrefix(err.Error(), "read f: ") || !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("Parse(failing reader) error = %v", err)
	}
	_, err = Parse("f", iotest.ErrReader(io.ErrUnexpectedEOF))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Parse(failing reader) error = %v", err)
	}
}

func TestParsePattern(t *testing.T) {
	r, err := ParsePattern(ExcludeSource, "!*.log  ")
	if err != nil {
		t.Fatal(err)
	}
	if r.Pattern != "!*.log" || r.Source != "--exclude" || !r.Negate || r.DirOnly {
		t.Errorf("ParsePattern = %+v", r)
	}
	r, err = ParsePattern(ExcludeSource, `\#x/`)
	if err != nil || !r.DirOnly || !New([]Rule{r}).Match("#x", true) {
		t.Errorf(`ParsePattern("\#x/") = %+v, %v`, r, err)
	}
}

func TestParsePatternErrors(t *testing.T) {
	tests := []struct {
		in      string
		wantErr error
		want    string
	}{
		{"", ErrEmpty, `--exclude: invalid pattern "": empty pattern matches nothing; fix or remove it`},
		{"   ", ErrEmpty, `--exclude: invalid pattern "   ": empty pattern matches nothing; fix or remove it`},
		{"!", ErrEmpty, `--exclude: invalid pattern "!": empty pattern matches nothing; fix or remove it`},
		{"/", ErrEmpty, `--exclude: invalid pattern "/": empty pattern matches nothing; fix or remove it`},
		{"#tmp", ErrComment, `--exclude: invalid pattern "#tmp": starts with "#", which makes it a comment in an ignore file (write \# for a literal "#"); fix or remove it`},
		{"src/[a-", ErrUnterminatedClass, `--exclude: invalid pattern "src/[a-": unterminated character class: "[" without a closing "]" (write \[ for a literal "["); fix or remove it`},
	}
	for _, tt := range tests {
		r, err := ParsePattern(ExcludeSource, tt.in)
		if err == nil {
			t.Errorf("ParsePattern(%q) = %+v, want an error", tt.in, r)
			continue
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("ParsePattern(%q) error:\n got %s\nwant %s", tt.in, got, tt.want)
		}
		var pe *PatternError
		if !errors.Is(err, tt.wantErr) || !errors.As(err, &pe) || pe.Line != 0 || pe.File != ExcludeSource {
			t.Errorf("ParsePattern(%q) error %#v: want a *PatternError wrapping %v", tt.in, err, tt.wantErr)
		}
	}
}

func TestTrimTrailingSpaces(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a", "a"},
		{"a   ", "a"},
		{"a b ", "a b"},
		{`a\ `, `a\ `},
		{`a\  `, `a\ `},
		{`a\ \  `, `a\ \ `},
		{`a\\ `, `a\\`},
		{`a\`, `a\`},
		{"a\t", "a\t"},
		{"a \t", "a \t"},
		{"   ", ""},
	}
	for _, tt := range tests {
		if got := trimTrailingSpaces(tt.in); got != tt.want {
			t.Errorf("trimTrailingSpaces(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestCompile pins the translation to doublestar and the choice of the
// cheap comparisons.
func TestCompile(t *testing.T) {
	tests := []struct {
		line     string
		kind     kind
		basename bool
		glob     string
		lit      string // lit, or prefix|suffix for kindAffix
	}{
		{"4913", kindLiteral, true, "4913", "4913"},
		{"/build/", kindLiteral, false, "build", "build"},
		{"a/b/c", kindLiteral, false, "a/b/c", "a/b/c"},
		{`\#x\*`, kindLiteral, true, `#x\*`, "#x*"},
		{"{a,b}", kindLiteral, true, `\{a,b\}`, "{a,b}"},
		{"**/node_modules/", kindLiteral, true, "node_modules", "node_modules"},
		{"/**/x", kindLiteral, true, "x", "x"},
		{"*.swp", kindAffix, true, "*.swp", "|.swp"},
		{"#*#", kindAffix, true, "#*#", "#|#"},
		{"/src/*.js", kindAffix, false, "src/*.js", "src/|.js"},
		{".*.sw?", kindGlob, true, ".*.sw?", ""},
		{"a/**", kindGlob, false, "a/**/*", ""},
		{"a/***", kindGlob, false, "a/**/*", ""},
		{"a/**/b", kindGlob, false, "a/**/b", ""},
		{"**/a/b", kindGlob, false, "**/a/b", ""},
		{"x**y", kindGlob, true, "x**y", ""},
		{"*.*", kindGlob, true, "*.*", ""},
		{"[]a-c]", kindGlob, true, `[\]\a-\c]`, ""},
		{"[!a]", kindGlob, true, `[^\a\/]`, ""},
		{"[+-0]", kindGlob, true, `[\+-\.\0]`, ""},
		{"[[:digit:]x]", kindGlob, true, `[\0-\9\x]`, ""},
		{"a[/]b", kindNever, false, "", ""},
		{"a//", kindNever, false, "", ""},
	}
	for _, tt := range tests {
		r, ok, err := parseLine(tt.line)
		if err != nil || !ok {
			t.Errorf("parseLine(%q) = %v, %v", tt.line, ok, err)
			continue
		}
		c := r.c
		lit := c.lit
		if c.kind == kindAffix {
			lit = c.prefix + "|" + c.suffix
		}
		if c.kind != tt.kind || c.basename != tt.basename || c.glob != tt.glob || lit != tt.lit {
			t.Errorf("parseLine(%q): kind %d basename %v glob %q lit %q; want %d %v %q %q",
				tt.line, c.kind, c.basename, c.glob, lit, tt.kind, tt.basename, tt.glob, tt.lit)
		}
	}
}

func TestTranscode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"abc/é", "abc/é"},
		{"\xff", "\U0010ffff"},
		{"a\x80/\xfe", "a\U0010ff80/\U0010fffe"},
		{"\xe2\x82", "\U0010ffe2\U0010ff82"}, // a truncated sequence is two bytes
	}
	for _, tt := range tests {
		if got := transcode(tt.in); got != tt.want {
			t.Errorf("transcode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A line ending in a backslash that escapes nothing is left out, as git
// leaves it out, and reported; the other lines still apply.
func TestTrailingBackslashLineLeftOut(t *testing.T) {
	rules, skipped, err := ParseFile(FileName, strings.NewReader("a.log\n\nfoo\\\n*.tmp\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 || rules[0].Pattern != "a.log" || rules[1].Pattern != "*.tmp" {
		t.Fatalf("rules = %+v, want a.log and *.tmp", rules)
	}
	if len(skipped) != 1 || skipped[0].Line != 3 || !errors.Is(skipped[0], ErrTrailingBackslash) {
		t.Fatalf("skipped = %v, want line 3", skipped)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("foo\\\nx.tmp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Skipped) != 1 || !strings.Contains(m.Skipped[0], FileName+":1:") || !strings.Contains(m.Skipped[0], "as git does") {
		t.Fatalf("Skipped = %q", m.Skipped)
	}
	if !m.Match("x.tmp", false) || m.Match("foo", false) {
		t.Fatal("the other line must still apply, the left-out one never")
	}
	// --exclude is typed by the user: there it stays an error.
	if _, err := Load(dir, []string{"bar\\"}); !errors.Is(err, ErrTrailingBackslash) {
		t.Fatalf("--exclude with a trailing backslash: %v", err)
	}
}
