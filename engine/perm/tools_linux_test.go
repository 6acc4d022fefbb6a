package perm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
)

// specs covers every kind of item: octal, classes, D/F, X, s, t, copies,
// no class (umask).
var specs = []string{
	"D2775,F664", "Du=rwx,Dg=rx,Fu=rw,Fg=r", "u+rwX,g+rX", "a-w", "o=", "go-w",
	"u=rwx,g=rx,o=", "Dg+s,ug+w,Fo-w,+X", "u+x,g+X", "+x", "-r", "=r", "+s", "o+s", "u+s,g+s", "a+st", "Do+t",
	"g=u", "o=g", "g-o", "u+g", "F0", "D0", "=", "a=X", "u=rw", "g=,o=", "a+rwx,u-s",
}

var modes = []uint32{0o000, 0o100, 0o010, 0o001, 0o444, 0o600, 0o640, 0o644, 0o664, 0o700, 0o750, 0o755, 0o775, 0o777,
	0o4755, 0o2755, 0o1777, 0o6711, 0o7000, 0o2070, 0o4600}

func umask(t *testing.T) uint32 {
	old := syscall.Umask(0o022)
	syscall.Umask(old)
	return uint32(old)
}

// TestApplyAsRsync runs the real rsync with each --chmod value over files
// and directories of many modes and compares every resulting mode.
func TestApplyAsRsync(t *testing.T) {
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("rsync is not installed (.ci/run installs it)")
		}
		t.Skip("rsync is not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: set-id bits on files of any mode")
	}
	mask := umask(t)
	old := rsyncBefore350(t, rsync)
	for _, spec := range specs {
		if old && since350[spec] {
			// Debian 12's rsync 3.2.7, say: it rejects the copy forms
			// and gives a+s setuid only. TestApplyAsChmod checks the
			// copy forms against chmod(1).
			t.Logf("--chmod=%s: not compared, this rsync predates 3.5.0, which changed it", spec)
			continue
		}
		ch, err := Parse(spec, mask)
		if err != nil {
			t.Fatalf("Parse(%q): %v", spec, err)
		}
		src, dst := filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "dst")
		os.Mkdir(src, 0o755)
		for _, m := range modes {
			f := filepath.Join(src, fmt.Sprintf("f%04o", m))
			d := filepath.Join(src, fmt.Sprintf("d%04o", m))
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			os.Mkdir(d, 0o700)
			for _, p := range []string{f, d} {
				if err := os.Chmod(p, os.FileMode(m&0o777)|modeBits(m)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if out, err := exec.Command(rsync, "-r", "--perms", "--chmod="+spec, src+"/", dst+"/").CombinedOutput(); err != nil {
			t.Fatalf("rsync --chmod=%s: %v\n%s", spec, err, out)
		}
		for _, m := range modes {
			for _, dir := range []bool{false, true} {
				name := fmt.Sprintf("f%04o", m)
				if dir {
					name = fmt.Sprintf("d%04o", m)
				}
				var st syscall.Stat_t
				if err := syscall.Lstat(filepath.Join(dst, name), &st); err != nil {
					t.Fatal(err)
				}
				if got, want := ch.Apply(m, dir), st.Mode&Bits; got != want {
					t.Errorf("--chmod=%s on %s: Apply gives %04o, rsync %04o", spec, name, got, want)
				}
			}
		}
	}
}

// since350 are the specs rsync 3.5.0 changed: it added chmod(1)'s
// permission copies (g=u) and made a+s set both set-id bits, as chmod
// does and as Apply does.
var since350 = map[string]bool{"g=u": true, "o=g": true, "g-o": true, "u+g": true, "a+st": true}

// rsyncBefore350 reports whether rsync's version is older than 3.5.0.
func rsyncBefore350(t *testing.T, rsync string) bool {
	out, err := exec.Command(rsync, "--version").Output()
	if err != nil {
		t.Fatalf("rsync --version: %v", err)
	}
	m := regexp.MustCompile(`version v?(\d+)\.(\d+)\.(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("rsync --version printed no version: %.100q", out)
	}
	v := [3]int{}
	for i := range v {
		v[i], _ = strconv.Atoi(string(m[i+1]))
	}
	return v[0] < 3 || v[0] == 3 && v[1] < 5
}

// TestApplyAsChmod compares with chmod(1) where rsync and chmod agree:
// symbolic items with classes, without set-id bits (GNU chmod keeps a
// directory's setgid, rsync does not) and without X after x.
func TestApplyAsChmod(t *testing.T) {
	mask := umask(t)
	dir := t.TempDir()
	for _, spec := range []string{"u+rwX,g+rX", "a-w", "o=", "go-w", "u=rwx,g=rx,o=", "g=u", "o=g", "g-o", "a=X", "+x", "600", "755"} {
		ch, err := Parse(spec, mask)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []uint32{0o000, 0o100, 0o444, 0o600, 0o640, 0o644, 0o700, 0o750, 0o755, 0o777, 0o010, 0o001} {
			for _, isDir := range []bool{false, true} {
				p := filepath.Join(dir, "x")
				os.RemoveAll(p)
				if isDir {
					os.Mkdir(p, 0o700)
				} else {
					os.WriteFile(p, nil, 0o600)
				}
				os.Chmod(p, os.FileMode(m))
				if out, err := exec.Command("chmod", spec, p).CombinedOutput(); err != nil {
					t.Fatalf("chmod %s: %v\n%s", spec, err, out)
				}
				var st syscall.Stat_t
				if err := syscall.Lstat(p, &st); err != nil {
					t.Fatal(err)
				}
				if got, want := ch.Apply(m, isDir), st.Mode&Bits; got != want {
					t.Errorf("%s on %04o (dir %v): Apply gives %04o, chmod %04o", spec, m, isDir, got, want)
				}
			}
		}
	}
}

func modeBits(m uint32) os.FileMode {
	var b os.FileMode
	if m&0o4000 != 0 {
		b |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		b |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		b |= os.ModeSticky
	}
	return b
}
