package project

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// kinds is a flag set for the tests: a few flags of each kind.
type kinds map[string]Kind

func (k kinds) Kind(key string) Kind { return k[key] }

var testFlags = kinds{"delete": Bool, "no-delete": Bool, "max-delete": Int, "reconcile": Duration, "chown": String,
	"exclude": List, "chmod": List, "ssh-identity": Path, "dry-run": CommandLine}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p, err := Load("g.yaml", dir, []byte(`
source: site
exclude: "*.bak"
delete: false
mirrors:
  local:
    dest: out/www
    delete: true
  prod:
    dest: deploy@web1:/var/www
    exclude: ["*.log", node_modules/]
    chmod: D2775,F664
    max-delete: 10
    reconcile: 0
    ssh-identity: keys/deploy
    chown: 1000
`), testFlags)
	if err != nil {
		t.Fatal(err)
	}
	if p.Source != filepath.Join(dir, "site") {
		t.Errorf("source %s", p.Source)
	}
	if got := p.Names(); !slices.Equal(got, []string{"local", "prod"}) {
		t.Fatalf("names %v", got)
	}
	local, _ := p.Mirror("local")
	prod, _ := p.Mirror("prod")
	if local.Dest != filepath.Join(dir, "out/www") || prod.Dest != "deploy@web1:/var/www" {
		t.Errorf("dests %q %q", local.Dest, prod.Dest)
	}
	all := func(string) bool { return true }
	none := func(string) bool { return false }
	if got, want := local.Args(all, none), []string{"--exclude=*.bak", "--delete=true"}; !slices.Equal(got, want) {
		t.Errorf("local args %q, want %q", got, want)
	}
	want := []string{"--delete=false", "--exclude=*.log", "--exclude=node_modules/", "--chmod=D2775,F664", "--max-delete=10",
		"--reconcile=0s", "--ssh-identity=" + filepath.Join(dir, "keys/deploy"), "--chown=1000"}
	if got := prod.Args(all, none); !slices.Equal(got, want) {
		t.Errorf("prod args\n%q\nwant\n%q", got, want)
	}
	// What the command line set, and what the command does not know,
	// is left out.
	got := prod.Args(func(k string) bool { return k != "reconcile" }, func(k string) bool { return k == "exclude" })
	if slices.ContainsFunc(got, func(a string) bool { return strings.HasPrefix(a, "--exclude") || strings.HasPrefix(a, "--reconcile") }) {
		t.Errorf("args %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"mirrors:\n  a:\n    dest: x\n    delet: true\n", `f:4: unknown key "delet"`},
		{"mirrors:\n  a: {dest: x, delete: 1}\n", `f:2: delete takes true or false, not the number 1`},
		{"mirrors:\n  a: {dest: x, max-delete: \"5\"}\n", `f:2: max-delete takes a whole number, not "5"`},
		{"mirrors:\n  a: {dest: x, reconcile: 5}\n", `f:2: reconcile takes a duration`},
		{"mirrors:\n  a: {dest: x, chown: [a, b]}\n", `f:2: chown takes a value, not a list`},
		{"mirrors:\n  a: {dest: x, exclude: [a, [b]]}\n", `f:2: exclude takes a value or a list of values, not a list`},
		{"mirrors:\n  a: {dest: x}\n  a: {dest: y}\n", `f:3: duplicate mirror name "a" (first at line 2)`},
		{"source: .\nsource: x\nmirrors: {a: {dest: x}}\n", `f:2: duplicate key "source" in the project file (first at line 1)`},
		{"mirrors:\n  a/b: {dest: x}\n", `f:2: mirror name "a/b": use letters`},
		{"mirrors:\n  a: x\n", `f:2: mirror a: write its settings below it`},
		{"mirrors:\n  a:\n", `f:2: mirror a has no dest:`},
		{"mirrors: []\n", `f:1: mirrors must be a mapping`},
		{"mirrors: {}\n", `f:1: no mirrors`},
		{"", `f: empty`},
		{"- a\n", `f:1: the project file must be a mapping`},
		{"dest: x\nmirrors: {a: {dest: x}}\n", `f:1: dest belongs to a mirror`},
		{"mirrors: {a: {dest: x, source: y}}\n", `f:1: mirror a: source is set once`},
		{"dry-run: true\nmirrors: {a: {dest: x}}\n", `f:1: dry-run is for the command line only`},
		{"x: &a 1\nmirrors: {a: {dest: x}}\n", `f:1: unknown key "x"`},
		{"mirrors: {a: {dest: x, chown: *b}}\n", `f: unknown anchor 'b' referenced`},
		{"mirrors: {a: {dest: ''}}\n", `f:1: mirror a: dest: empty destination`},
		{"source: ''\nmirrors: {a: {dest: x}}\n", `f:1: source is empty`},
		{"mirrors: {a: {dest: x}}\n---\nmirrors: {}\n", `f:2: a second YAML document`},
		{"mirrors: {a: {dest: x, <<: {delete: true}}}\n", `f:1: mirror a: keys must be plain names`},
	} {
		_, err := Load("f", "/p", []byte(tt.yaml), testFlags)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: err = %v, want %s...", tt.yaml, err, tt.want)
		}
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	sub := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := Find(sub); err != nil || got != "" && !strings.HasPrefix(root, filepath.Dir(got)) {
		t.Fatalf("no file: %q %v", got, err) // a gosync.yaml above the temp dir would be found; nothing below it
	}
	for _, dir := range []string{root, filepath.Join(root, "a")} {
		if err := os.WriteFile(filepath.Join(dir, FileName), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The nearest wins.
	if got, err := Find(sub); err != nil || got != filepath.Join(root, "a", FileName) {
		t.Fatalf("Find = %q, %v", got, err)
	}
	// A directory of that name is not a project file.
	if err := os.Mkdir(filepath.Join(sub, FileName), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := Find(sub); err != nil || got != filepath.Join(root, "a", FileName) {
		t.Fatalf("Find = %q, %v", got, err)
	}
}

// FuzzLoad: any bytes give a project or one error line naming the file;
// a project has mirrors with unique names, a dest, and settings of keys
// the flags know.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("source: site\nexclude: ['*.bak']\nmirrors:\n  a: {dest: out, delete: true}\n  b:\n    dest: h:/x\n    reconcile: 5m\n"))
	f.Add([]byte("mirrors:\n  a:\n    dest: x\n    chmod: [D2775, F664]\n    max-delete: 3\n    ssh-identity: ~/.ssh/k\n"))
	f.Add([]byte("mirrors:\n  a: {dest: x}\n  a: {dest: y}\n"))
	f.Add([]byte("a: &x [*x, *x]\nmirrors: {a: {dest: *x}}\n"))
	f.Add([]byte("mirrors: {a: {dest: x, <<: *m}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Load("f.yaml", "/p", data, testFlags)
		if err != nil {
			if _, ok := err.(*Error); !ok || !strings.HasPrefix(err.Error(), "f.yaml") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q", err)
			}
			return
		}
		if len(p.Mirrors) == 0 {
			t.Fatal("a project without mirrors")
		}
		seen := map[string]bool{}
		for _, m := range p.Mirrors {
			if seen[m.Name] || !IsName(m.Name) || m.Dest == "" {
				t.Fatalf("mirror %+v", m)
			}
			seen[m.Name] = true
			keys := map[string]bool{}
			for _, s := range m.Settings {
				if k := testFlags.Kind(s.Key); k == Unknown || k == CommandLine || keys[s.Key] || len(s.Values) == 0 && k != List {
					t.Fatalf("setting %+v", s)
				}
				keys[s.Key] = true
			}
		}
	})
}

// A project file found in a parent directory that another user owns or
// can write is not used; named with --config (found false), it is.
func TestOpenRefusesOthersFiles(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no owner and mode bits to check; the file is trusted as found")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, FileName)
	if err := os.WriteFile(file, []byte("mirrors: {a: {dest: x}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file, "g", true, testFlags); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o664); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file, "g", true, testFlags); err == nil || !strings.Contains(err.Error(), "g: not used: group or others can write it (mode 0664)") {
		t.Fatalf("group-writable: err = %v", err)
	}
	if _, err := Open(file, "g", false, testFlags); err != nil {
		t.Fatalf("named with --config: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file to another user")
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(file, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file, "g", true, testFlags); err == nil || !strings.Contains(err.Error(), "owned by uid 4242, not by you") {
		t.Fatalf("another owner: err = %v", err)
	}
}
