package watch

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Inside a user namespace (a container), the advice at the watch limit
// names the namespace's own limit, which its root can raise. The test
// runs a watcher in a real user namespace whose limit is 3.
func TestWatchLimitInUserNamespace(t *testing.T) {
	root := t.TempDir()
	for i := range 8 {
		mkdir(t, filepath.Join(root, fmt.Sprint("d", i)))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestUserNamespaceChild$", "-test.v")
	cmd.Env = append(os.Environ(), "GOSYNC_USERNS_CHILD="+root)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if strings.Contains(err.Error(), "operation not permitted") || strings.Contains(err.Error(), "invalid argument") {
			t.Skipf("user namespaces are not available here: %v", err)
		}
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	for _, want := range []string{"(user.max_inotify_watches = 3)", "echo 524288 > /proc/sys/user/max_inotify_watches", "max_user_watches=3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("advice does not say %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "sudo sysctl fs.inotify.max_user_watches=") {
		t.Errorf("advice inside a user namespace names the host's sysctl:\n%s", out.String())
	}
}

// TestUserNamespaceChild is the watcher inside the namespace, run by
// TestWatchLimitInUserNamespace.
func TestUserNamespaceChild(t *testing.T) {
	root := os.Getenv("GOSYNC_USERNS_CHILD")
	if root == "" {
		t.Skip("run by TestWatchLimitInUserNamespace")
	}
	if err := os.WriteFile(nsWatchesFile, []byte("3"), 0); err != nil {
		t.Fatal(err)
	}
	w, err := New(root, Options{Logger: slog.New(slog.NewTextHandler(os.Stdout, nil))})
	if err != nil {
		fmt.Println(err) // the root itself could not be watched: the error carries the advice
		return
	}
	w.Close()
}
