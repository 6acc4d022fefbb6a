package ignore

import (
	"errors"
	"strings"
	"testing"

	"github.com/bmatcuk/doublestar/v4"
)

// FuzzParse feeds arbitrary ignore files and paths through Parse and the
// Matcher. Nothing may panic, a parse error must be a *PatternError with a
// known reason (anything else means the translation to doublestar produced
// an invalid pattern), Match implies Ignored, and the cheap literal and
// prefix*suffix comparisons must agree with doublestar on the translation.
func FuzzParse(f *testing.F) {
	f.Add("*.log\n!keep.log\nbuild/\n", "build/keep.log", false)
	f.Add("/a/**/b\n[!x]y\n", "a/c/b", true)
	f.Fuzz(func(t *testing.T, content, path string, isDir bool) {
		rules, err := Parse(FileName, strings.NewReader(content))
		if err != nil {
			var pe *PatternError
			if !errors.As(err, &pe) {
				if strings.Contains(err.Error(), "line longer than") {
					return
				}
				t.Fatalf("Parse error %v is not a *PatternError", err)
			}
			known := false
			for _, e := range []error{ErrUnterminatedClass, ErrUnknownClass, ErrTrailingBackslash, ErrNUL} {
				known = known || errors.Is(err, e)
			}
			if !known {
				t.Fatalf("Parse: unexpected reason: %v", err)
			}
			return
		}
		m := New(rules)
		match := m.Match(path, isDir)
		ignored := m.Ignored(path, isDir)
		if match && !ignored {
			t.Fatalf("Match(%q) but not Ignored", path)
		}
		r, ok := m.Explain(path, isDir)
		if ignored != (ok && !r.Negate) {
			t.Fatalf("Ignored(%q) = %v but Explain = %v, %v", path, ignored, r, ok)
		}

		if want := bruteMatch(rules, path, isDir); match != want {
			t.Fatalf("Match(%q, %v) = %v, but a scan of all rules says %v", path, isDir, match, want)
		}

		base := path[strings.LastIndexByte(path, '/')+1:]
		for _, r := range rules {
			c := r.c
			if c.kind != kindLiteral && c.kind != kindAffix {
				continue
			}
			s := path
			if c.basename {
				s = base
			}
			if c.lossy {
				s = transcode(s)
			}
			if fast, slow := c.match(s), doublestar.MatchUnvalidated(c.glob, s); fast != slow {
				t.Fatalf("rule %q on %q: fast comparison says %v, doublestar %q says %v", r.Pattern, s, fast, c.glob, slow)
			}
		}
	})
}

// bruteMatch is Match without the rule index: every rule, last first.
func bruteMatch(rules []Rule, rel string, isDir bool) bool {
	if rel == "" {
		return false
	}
	for i := len(rules) - 1; i >= 0; i-- {
		c := rules[i].c
		if isDir && c.fileOnly || !isDir && c.dirOnly {
			continue
		}
		s := rel
		if c.basename {
			s = s[strings.LastIndexByte(s, '/')+1:]
		}
		for _, r := range rules {
			if r.c.lossy {
				s = transcode(s)
				break
			}
		}
		if c.match(s) {
			return !rules[i].Negate
		}
	}
	return false
}
