package engine_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/gosync/gosync/engine"
)

// An agent that is not root keeps a file's group when its user belongs to
// that group, as rsync -a does for a normal user (a 640 deploy:www-data
// config must stay readable by the web server), and leaves other groups
// alone without re-sending them on every run. The agent runs as uid 4001
// with groups 4001 and 4002 (setpriv), so the test needs root.
func TestNonRootAgentKeepsMemberGroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the agent as another user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	// The agent's user must reach its binary and its mirror.
	base, err := os.MkdirTemp("", "gosync-group")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(base, "agent")
	copyFile(t, self, exe)
	dst := filepath.Join(base, "www")
	os.Mkdir(dst, 0o755)
	os.Chown(dst, 4001, 4001)

	src := t.TempDir()
	for name, gid := range map[string]int{"member.conf": 4002, "other.conf": 4003, "own.conf": 4001} {
		p := filepath.Join(src, name)
		os.WriteFile(p, []byte(name), 0o640)
		os.Chown(p, 0, gid)
	}
	os.MkdirAll(filepath.Join(src, "dir"), 0o750)
	os.Chown(filepath.Join(src, "dir"), 0, 4002)

	t.Setenv("GOSYNC_TEST_AGENT_ROOT", dst)
	m, err := engine.DialCommand(context.Background(), dst, []string{setpriv, "--reuid=4001", "--regid=4001", "--groups=4001,4002", exe}, engine.ClientOptions{})
	os.Unsetenv("GOSYNC_TEST_AGENT_ROOT")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	syncTwiceStable(t, src, m)
	for name, want := range map[string]uint32{"member.conf": 4002, "other.conf": 4001, "own.conf": 4001, "dir": 4002} {
		fi, err := os.Lstat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Gid != want || st.Uid != 4001 {
			t.Errorf("%s on the mirror is %d:%d, want 4001:%d", name, st.Uid, st.Gid, want)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
