//go:build !windows

package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/ignore"
	"golang.org/x/sys/unix"
)

// randomTree makes a small random tree in dir: files, directories and
// symlinks of a few modes and mtimes, a few levels deep.
func randomTree(t *testing.T, r *rand.Rand, dir string, n int) {
	t.Helper()
	dirs := []string{dir}
	for i := range n {
		parent := dirs[r.IntN(len(dirs))]
		name := fmt.Sprintf("%c%d", "abcdefg"[r.IntN(7)], r.IntN(4))
		if r.IntN(6) == 0 {
			name += ".log" // ignored when the test ignores *.log
		}
		p := filepath.Join(parent, name)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		switch k := r.IntN(10); {
		case k < 3:
			if err := os.Mkdir(p, []os.FileMode{0o755, 0o750, 0o700}[r.IntN(3)]); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, p)
		case k < 4:
			if err := os.Symlink(fmt.Sprintf("target%d", r.IntN(3)), p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(strings.Repeat(string(rune('x'+r.IntN(3))), r.IntN(3)*7)), 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, []os.FileMode{0o644, 0o600, 0o755}[r.IntN(3)])
		}
		mt := unix.NsecToTimespec((1_700_000_000 + int64(r.IntN(3))*3600) * 1e9)
		unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{mt, mt}, unix.AT_SYMLINK_NOFOLLOW)
		_ = i
	}
	// Directory mtimes last: making entries bumped them.
	for _, d := range slices.Backward(dirs[1:]) {
		mt := time.Unix(1_700_000_000+int64(r.IntN(3))*3600, 0)
		os.Chtimes(d, mt, mt)
	}
}

// mutate changes existing entries of dir at random: modes, mtimes,
// content of the same size, symlink targets, kinds, removals.
func mutate(t *testing.T, r *rand.Rand, dir string) {
	t.Helper()
	var paths []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil || r.IntN(4) > 0 {
			continue // gone with its directory, or left alone
		}
		switch k := r.IntN(6); {
		case k == 0 && fi.Mode().IsRegular():
			os.Chmod(p, fi.Mode()^0o011)
		case k == 1:
			mt := unix.NsecToTimespec((fi.ModTime().Unix() + 60) * 1e9)
			unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{mt, mt}, unix.AT_SYMLINK_NOFOLLOW)
		case k == 2 && fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			for i := range b {
				b[i] = 'q'
			}
			os.WriteFile(p, b, 0) // same size; the mtime moves
			os.Chtimes(p, fi.ModTime(), fi.ModTime())
		case k == 3 && fi.Mode()&os.ModeSymlink != 0:
			os.Remove(p)
			os.Symlink("elsewhere", p)
		case k == 4:
			os.RemoveAll(p)
			if fi.IsDir() {
				os.WriteFile(p, []byte("was a dir"), 0o644)
			} else {
				os.Mkdir(p, 0o755)
				os.WriteFile(filepath.Join(p, "inside"), []byte("x"), 0o644)
			}
		case k == 5:
			os.RemoveAll(p)
		}
	}
}

// copyTree copies src to dst exactly (modes, mtimes, symlinks).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := runCmd("cp", "-a", src+"/.", dst); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
}

// treeState lists dir: every entry's path, kind, mode, size, mtime,
// target and content.
func treeState(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(filepath.Base(p), fstree.TempPrefix) {
			return nil
		}
		line := fmt.Sprintf("%s %v %d", rel, fi.Mode(), fi.ModTime().Unix())
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += " " + string(b)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The streamed sync (SyncTree) must do exactly what the sync of whole
// listings does: the same items, the same refusals, the same mirror, on
// random trees and options.
func TestSyncTreeMatchesWholeListings(t *testing.T) {
	rounds := 60
	if testing.Short() {
		rounds = 15
	}
	for round := range rounds {
		seed := uint64(round)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			base := t.TempDir()
			src, a, b := filepath.Join(base, "src"), filepath.Join(base, "a"), filepath.Join(base, "b")
			for _, d := range []string{src, a, b} {
				os.Mkdir(d, 0o755)
			}
			randomTree(t, r, src, 20+r.IntN(40))
			// The mirror: the source as it was (often) or another tree,
			// then changed at random.
			mirror := filepath.Join(base, "m")
			os.Mkdir(mirror, 0o755)
			if r.IntN(3) > 0 {
				copyTree(t, src, mirror)
			}
			randomTree(t, r, mirror, r.IntN(30))
			mutate(t, r, mirror)
			copyTree(t, mirror, a)
			copyTree(t, mirror, b)
			randomTree(t, r, src, r.IntN(15))
			mutate(t, r, src)

			opt := engine.Options{MaxDelete: -1, Delete: r.IntN(3) > 0, Checksum: r.IntN(4) == 0, DryRun: r.IntN(5) == 0}
			if r.IntN(4) == 0 {
				opt.MaxDelete = r.IntN(4)
			}
			if r.IntN(2) == 0 {
				rule, err := ignore.ParsePattern("test", "*.log")
				if err != nil {
					t.Fatal(err)
				}
				opt.Ignore = ignore.New([]ignore.Rule{rule})
			}
			run := func(dst string, streamed bool) (engine.Result, []string) {
				var items []string
				o := opt
				o.OnItem = func(it engine.Item) {
					items = append(items, fmt.Sprintf("%s %s %s %d", it.Action, it.Kind, it.Path, it.Count))
				}
				m, err := engine.DialLocal(context.Background(), "mirror", dst, engine.ClientOptions{Create: true, Lock: !opt.DryRun}, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				var res engine.Result
				if streamed {
					spec := engine.SourceSpec{Dir: src, Ignore: opt.Ignore, Hash: opt.Checksum}
					if round%3 == 0 {
						// Walked before the mirror was reached, as sync does
						// for an SSH mirror.
						pre, err := engine.StartPrewalk(context.Background(), spec)
						if err != nil {
							t.Fatal(err)
						}
						defer pre.Close()
						spec.Pre = pre
					}
					res = engine.SyncTree(context.Background(), spec, m, o)
				} else {
					s, err := engine.ScanSource(context.Background(), src, opt.Ignore, opt.Checksum)
					if err != nil {
						t.Fatal(err)
					}
					defer s.Close()
					res = engine.Sync(context.Background(), s, m, o)
				}
				slices.Sort(items)
				return res, items
			}
			ra, ia := run(a, false)
			if round%2 == 1 {
				// Parts of a few entries: a large initial sync's way.
				defer engine.SetScopePart(engine.SetScopePart(1 + r.IntN(5)))
			}
			rb, ib := run(b, true)
			if fmt.Sprint(ra.Err) != fmt.Sprint(rb.Err) {
				t.Fatalf("whole listings: err %v\nstreamed: err %v", ra.Err, rb.Err)
			}
			sa, sb := ra.Stats, rb.Stats
			sa.Duration, sb.Duration, sa.Sent, sb.Sent = 0, 0, 0, 0
			if ra.Err != nil {
				sa.Scanned, sb.Scanned = 0, 0 // a refusal stops the walk where it is
			}
			if sa != sb {
				t.Errorf("stats differ:\nwhole    %+v\nstreamed %+v", sa, sb)
			}
			if !slices.Equal(ia, ib) {
				t.Errorf("items differ:\nwhole    %q\nstreamed %q", ia, ib)
			}
			// A mirror-only directory that keeps ignored entries gets the
			// time its other contents were deleted: the runs' clocks.
			srcDirs := map[string]bool{}
			filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
				if err == nil && fi.IsDir() {
					rel, _ := filepath.Rel(src, p)
					srcDirs[rel] = true
				}
				return nil
			})
			clockless := func(state []string) []string {
				for i, line := range state {
					if f := strings.Fields(line); len(f) == 3 && strings.HasPrefix(f[1], "d") && !srcDirs[f[0]] {
						state[i] = f[0] + " " + f[1]
					}
				}
				return state
			}
			if ta, tb := clockless(treeState(t, a)), clockless(treeState(t, b)); !slices.Equal(ta, tb) {
				t.Errorf("mirrors differ:\nwhole    %q\nstreamed %q\nsource   %q\nitems    %q\noptions %+v", ta, tb, treeState(t, src), ia, opt)
			}
		})
	}
}

func runCmd(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}
