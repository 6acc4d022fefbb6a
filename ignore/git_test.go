package ignore

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSemanticsAgainstGit checks the literal expectations of semanticsCases
// against `git check-ignore`, which considers ignored parent directories
// like Ignored does. It is skipped when git is not installed.
func TestSemanticsAgainstGit(t *testing.T) {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	if testing.Short() {
		t.Skip("starts git for each case")
	}
	for _, tc := range semanticsCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.notGit != "" {
				t.Skip(tc.notGit)
			}
			got := gitCheckIgnore(t, gitPath, tc.file, tc.paths)
			for _, p := range tc.paths {
				if want := p.want != kept; got[p.path] != want {
					t.Errorf("git check-ignore %q (dir=%v): ignored=%v, table says %v", p.path, p.isDir, got[p.path], p.want)
				}
			}
		})
	}
}

// gitCheckIgnore creates the paths in a fresh repository whose .gitignore
// is ignoreFile and returns the set that `git check-ignore --no-index`
// reports as ignored.
func gitCheckIgnore(t *testing.T, gitPath, ignoreFile string, paths []pathCase) map[string]bool {
	t.Helper()
	repo := t.TempDir()
	env := append(os.Environ(),
		"HOME="+repo,
		"XDG_CONFIG_HOME="+repo,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+os.DevNull,
	)
	git := func(stdin []byte, args ...string) ([]byte, error) {
		cmd := exec.Command(gitPath, args...)
		cmd.Dir = repo
		cmd.Env = env
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil && stderr.Len() > 0 {
			t.Logf("git %s: %s", strings.Join(args, " "), stderr.String())
		}
		return out, err
	}
	if _, err := git(nil, "init", "-q"); err != nil {
		t.Fatalf("git init: %v", err)
	}
	if err := os.WriteFile(filepath.Join(repo, ".gitignore"), []byte(ignoreFile), 0o644); err != nil {
		t.Fatal(err)
	}
	// Directories first, so that a file's parent exists as a directory.
	for _, p := range paths {
		if p.isDir {
			mkdirAll(t, filepath.Join(repo, p.path))
		} else {
			mkdirAll(t, filepath.Dir(filepath.Join(repo, p.path)))
		}
	}
	var stdin []byte
	for _, p := range paths {
		if !p.isDir {
			if err := os.WriteFile(filepath.Join(repo, p.path), nil, 0o644); err != nil {
				t.Fatalf("create %q: %v", p.path, err)
			}
		}
		stdin = append(append(stdin, p.path...), 0)
	}
	out, err := git(stdin, "-c", "core.ignoreCase=false", "-c", "core.excludesFile="+os.DevNull,
		"check-ignore", "--no-index", "--stdin", "-z")
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) { // 1: nothing ignored
		t.Fatalf("git check-ignore: %v", err)
	}
	got := make(map[string]bool)
	for _, p := range bytes.Split(out, []byte{0}) {
		if len(p) > 0 {
			got[string(p)] = true
		}
	}
	return got
}

func mkdirAll(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}
