package ignore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func mustParse(t testing.TB, lines ...string) []Rule {
	t.Helper()
	rules, err := Parse(FileName, strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

func TestDefaults(t *testing.T) {
	m := New(Defaults())
	for _, p := range []string{
		".index.html.swp", "src/.app.js.swo", "src/.app.js.swx", "src/.app.js.swn", "app.js.swp",
		"4913", "src/4913",
		"index.html~", "src/app.js~",
		".#index.html", "src/#app.js#",
		"app.js___jb_tmp___", "src/app.js___jb_old___",
		"src/.app.js.kate-swp",
		"src/.goutputstream-ABC123",
	} {
		if !m.Match(p, false) || !m.Ignored(p, false) {
			t.Errorf("default rules do not ignore file %q", p)
		}
	}
	for _, p := range []string{
		"index.html", "app.swf", "movie.swf", "4913.js", "a4913", "#notes", "notes#", "src/app.js",
		".gitignore", ".git", "node_modules", ".env",
	} {
		if m.Ignored(p, false) {
			t.Errorf("default rules ignore file %q", p)
		}
	}
	// Defaults never hide a directory, and so nothing below it.
	for _, p := range []string{"4913", "backup~", ".#dir", "x.swp"} {
		if m.Match(p, true) || m.Ignored(p+"/index.html", false) {
			t.Errorf("default rules ignore directory %q", p)
		}
	}
	for _, r := range Defaults() {
		if r.Source != DefaultSource {
			t.Errorf("default rule %q has source %q", r.Pattern, r.Source)
		}
	}
}

func TestDefaultsCanBeReincluded(t *testing.T) {
	m := New(Defaults(), mustParse(t, "!*~", "!4913"))
	if m.Ignored("notes~", false) || m.Ignored("a/4913", false) {
		t.Error("a ! rule in the ignore file should re-include a default")
	}
	if !m.Ignored("a.swp", false) {
		t.Error("other defaults should stay")
	}
}

func TestLaterRuleSetsWin(t *testing.T) {
	file := mustParse(t, "*.log", "!keep.log")
	ex, err := ParsePattern(ExcludeSource, "keep.log")
	if err != nil {
		t.Fatal(err)
	}
	m := New(Defaults(), file, []Rule{ex})
	if !m.Ignored("keep.log", false) {
		t.Error("--exclude should win over the ignore file")
	}
	if got := len(m.Rules()); got != len(Defaults())+3 {
		t.Errorf("Rules() has %d rules", got)
	}
}

func TestExplain(t *testing.T) {
	m := New(mustParse(t, "*.log", "build/", "!build/keep.log", "!important.log"))
	tests := []struct {
		path   string
		isDir  bool
		source string // "" for no rule
		negate bool
	}{
		{"a.log", false, ".gosyncignore:1", false},
		{"important.log", false, ".gosyncignore:4", true},
		{"build", true, ".gosyncignore:2", false},
		{"build/keep.log", false, ".gosyncignore:2", false}, // the parent decides
		{"build/x/y", false, ".gosyncignore:2", false},
		{"src/app.js", false, "", false},
	}
	for _, tt := range tests {
		r, ok := m.Explain(tt.path, tt.isDir)
		if ok != (tt.source != "") || r.Source != tt.source || r.Negate != tt.negate {
			t.Errorf("Explain(%q) = %v (negate %v), %v; want %q (negate %v)", tt.path, r, r.Negate, ok, tt.source, tt.negate)
		}
		if got, want := m.Ignored(tt.path, tt.isDir), ok && !r.Negate; got != want {
			t.Errorf("Ignored(%q) = %v, Explain says %v", tt.path, got, want)
		}
	}
}

func TestNilAndEmpty(t *testing.T) {
	var m *Matcher
	if m.Match("a", false) || m.Ignored("a/b", false) || m.Rules() != nil {
		t.Error("a nil Matcher should ignore nothing")
	}
	if _, ok := m.Explain("a", false); ok {
		t.Error("a nil Matcher should explain nothing")
	}
	m = New(mustParse(t, "*", "**"))
	if m.Match("", true) || m.Ignored("", true) {
		t.Error("the root is never ignored")
	}
	if New().Match("a", false) {
		t.Error("an empty Matcher should ignore nothing")
	}
	if New([]Rule{{Pattern: "*"}}).Match("a", false) {
		t.Error("a Rule not made by Parse should match nothing")
	}
}

func TestConcurrentUse(t *testing.T) {
	m := New(Defaults(), mustParse(t, "node_modules/", "*.log", "!keep.log", "\xff*"))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				p := []string{"a/node_modules/x", "b/keep.log", "c/\xfex.log", "d/\xffe"}[(g+i)%4]
				m.Ignored(p, false)
			}
		})
	}
	wg.Wait()
}

func TestLoad(t *testing.T) {
	t.Run("no ignore file", func(t *testing.T) {
		m, err := Load(t.TempDir(), []string{"*.bak"})
		if err != nil {
			t.Fatal(err)
		}
		if !m.Ignored("a.swp", false) || !m.Ignored("x/a.bak", false) || m.Ignored("a.js", false) {
			t.Error("want the defaults and the excludes")
		}
	})
	t.Run("root is a file", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "f")
		writeFile(t, root, "")
		if _, err := Load(root, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("order: defaults, file, excludes", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, FileName), "*.log\n!*~\n")
		m, err := Load(root, []string{"!keep.log", "secret/"})
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			path string
			want bool
		}{{"a.log", true}, {"keep.log", false}, {"notes~", false}, {"a.swp", true}, {"secret/x", true}} {
			if got := m.Ignored(tt.path, false); got != tt.want {
				t.Errorf("Ignored(%q) = %v, want %v", tt.path, got, tt.want)
			}
		}
		r, _ := m.Explain("a.log", false)
		if want := filepath.Join(root, FileName) + ":1"; r.Source != want {
			t.Errorf("Source = %q, want %q", r.Source, want)
		}
	})
	t.Run("invalid pattern names the file", func(t *testing.T) {
		root := t.TempDir()
		path := filepath.Join(root, FileName)
		writeFile(t, path, "ok\nbad[\n")
		_, err := Load(root, nil)
		var pe *PatternError
		if !errors.As(err, &pe) || pe.File != path || pe.Line != 2 {
			t.Fatalf("Load error = %v, want a *PatternError for %s:2", err, path)
		}
		if want := path + `:2: invalid pattern "bad[": `; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Load error = %q, want prefix %q", err, want)
		}
	})
	t.Run("invalid exclude", func(t *testing.T) {
		_, err := Load(t.TempDir(), []string{"ok", "x\\"})
		var pe *PatternError
		if !errors.As(err, &pe) || pe.File != ExcludeSource || pe.Pattern != "x\\" {
			t.Fatalf("Load error = %v, want a *PatternError for --exclude", err)
		}
	})
	t.Run("unreadable ignore file", func(t *testing.T) {
		root := t.TempDir()
		path := filepath.Join(root, FileName)
		if err := os.Mkdir(path, 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := Load(root, nil)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("Load error = %v, want one naming %s", err, path)
		}
	})
}

// TestExampleFile checks that the example shipped at the repository root
// parses and does what its comments say.
func TestExampleFile(t *testing.T) {
	f, err := os.Open(filepath.Join("..", FileName+".example"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rules, err := Parse(FileName+".example", f)
	if err != nil {
		t.Fatal(err)
	}
	m := New(Defaults(), rules)
	for _, tt := range []struct {
		path  string
		isDir bool
		want  bool
	}{
		{".git", true, true},
		{".git/HEAD", false, true},
		{"vendor/lib/.git", false, true}, // a submodule's .git file
		{".hg/store/data", false, true},
		{"node_modules/react/index.js", false, true},
		{"apps/web/node_modules/x.js", false, true},
		{".next/cache/webpack/a.pack", false, true},
		{"apps/web/.next/cache/x", false, true},
		{".next/server/app.js", false, false},
		{".cache/x", false, true},
		{".parcel-cache/x", false, true},
		{".DS_Store", false, true},
		{"img/Thumbs.db", false, true},
		{"logs/app.log", false, true},
		{"npm-debug.log.123", false, true},
		{"coverage/lcov.info", false, true},
		{".idea/workspace.xml", false, true},
		{".vscode/settings.json", false, true},
		{".env", false, false}, // a user's choice: commented out
		{".env.production", false, false},
		{".gitignore", false, false},
		{".htaccess", false, false},
		{"index.html", false, false},
		{"src/app.js", false, false},
		{"dist/app.js", false, false},
		{".well-known/security.txt", false, false},
	} {
		if got := m.Ignored(tt.path, tt.isDir); got != tt.want {
			t.Errorf("Ignored(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
