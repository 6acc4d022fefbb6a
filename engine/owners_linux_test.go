package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/perm"
)

// The ids of the test's users and groups. The test process (the client)
// sees them in the real /etc/passwd and /etc/group (useradd, groupadd),
// the agent in its own files with other ids (a mount namespace binds them
// over /etc): a mirror host where the same names have other numbers.
const (
	srcAppUid  = 47101 // gsmeta-app
	srcWebGid  = 47102 // gsmeta-web
	srcFarGid  = 47103 // gsmeta-far
	unnamedGid = 47999 // no name anywhere: keeps its number

	hostAppUid = 48101
	hostWebGid = 48102
	hostFarGid = 48103
	agentUid   = 4001 // the non-root agent's user (gsmeta-agent), member of gsmeta-web
)

// ownerHost prepares both name databases and returns the command prefix
// that runs a program on the "mirror host": in a mount namespace with
// the host's /etc/passwd and /etc/group.
func ownerHost(t *testing.T) (base string, prefix []string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: useradd, a mount namespace, an agent run as another user")
	}
	for _, tool := range []string{"useradd", "groupadd", "unshare", "setpriv", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing", tool)
			}
			t.Skipf("needs %s", tool)
		}
	}
	run := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// One test process at a time adds these names (another package run
	// of this test may be under way): the lock goes with the process.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "gosync-test-owners.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	// Left over by a killed run: remove first.
	cleanup := func() {
		exec.Command("userdel", "gsmeta-app").Run()
		for _, g := range []string{"gsmeta-web", "gsmeta-far", "gsmeta-app"} {
			exec.Command("groupdel", g).Run()
		}
	}
	cleanup()
	t.Cleanup(cleanup)
	run("groupadd", "-g", fmt.Sprint(srcWebGid), "gsmeta-web")
	run("groupadd", "-g", fmt.Sprint(srcFarGid), "gsmeta-far")
	run("useradd", "-M", "-N", "-u", fmt.Sprint(srcAppUid), "-g", fmt.Sprint(srcWebGid), "-s", "/usr/sbin/nologin", "gsmeta-app")

	base, err = os.MkdirTemp("", "gosync-owners")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	// On the host, root's name belongs to another id: uid and gid 0 are
	// never mapped by name, so that must not matter.
	passwd := fmt.Sprintf("root:x:4999:4999::/root:/bin/sh\nrealroot:x:0:0::/root:/bin/sh\ngsmeta-app:x:%d:%d::/:/bin/false\ngsmeta-agent:x:%d:%d::/:/bin/false\n",
		hostAppUid, hostWebGid, agentUid, agentUid)
	group := fmt.Sprintf("root:x:4999:\nrealroot:x:0:\ngsmeta-web:x:%d:gsmeta-agent\ngsmeta-far:x:%d:\ngsmeta-agent:x:%d:\n", hostWebGid, hostFarGid, agentUid)
	os.WriteFile(filepath.Join(base, "passwd"), []byte(passwd), 0o644)
	os.WriteFile(filepath.Join(base, "group"), []byte(group), 0o644)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, self, filepath.Join(base, "agent"))
	prefix = []string{"unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$0/passwd" /etc/passwd && mount --bind "$0/group" /etc/group && exec "$@"`, base}
	return base, prefix
}

// ownerSource is a tree with owners that have names on the client and
// on the host (other ids there), one without a name, and root's.
func ownerSource(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	for name, o := range map[string][2]int{
		"web.conf":     {srcAppUid, srcWebGid},
		"far.conf":     {srcAppUid, srcFarGid},
		"unnamed.conf": {srcAppUid, unnamedGid},
		"root.conf":    {0, 0},
	} {
		p := filepath.Join(src, name)
		os.WriteFile(p, []byte(name), 0o640)
		os.Chown(p, o[0], o[1])
	}
	os.Mkdir(filepath.Join(src, "dir"), 0o750)
	os.Chown(filepath.Join(src, "dir"), srcAppUid, srcWebGid)
	os.Symlink("web.conf", filepath.Join(src, "link"))
	os.Lchown(filepath.Join(src, "link"), srcAppUid, srcWebGid)
	return src
}

func dialHost(t *testing.T, dst string, argv []string) engine.Mirror {
	t.Helper()
	t.Setenv("GOSYNC_TEST_AGENT_ROOT", dst)
	m, err := engine.DialCommand(context.Background(), dst, argv, engine.ClientOptions{})
	os.Unsetenv("GOSYNC_TEST_AGENT_ROOT")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func syncOpt(t *testing.T, src string, m engine.Mirror, opt engine.Options) engine.Result {
	t.Helper()
	s, err := engine.ScanSource(context.Background(), src, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	opt.MaxDelete = -1
	return engine.Sync(context.Background(), s, m, opt)
}

// syncStable syncs twice with opt and checks that the second run, and a
// dry run after it, change nothing.
func syncStable(t *testing.T, src string, m engine.Mirror, opt engine.Options) {
	t.Helper()
	if r := syncOpt(t, src, m, opt); r.Err != nil || len(r.Failed) > 0 {
		t.Fatalf("first run: %v %v", r.Err, r.Failed)
	}
	for _, dry := range []bool{true, false} {
		o := opt
		o.DryRun = dry
		var items []string
		o.OnItem = func(it engine.Item) { items = append(items, string(it.Action)+" "+it.Path) }
		r := syncOpt(t, src, m, o)
		if r.Err != nil || len(r.Failed) > 0 || len(items) > 0 {
			t.Fatalf("run after the first (dry %v): %v %v, changes %q", dry, r.Err, r.Failed, items)
		}
	}
}

func checkOwners(t *testing.T, dst string, want map[string][2]uint32) {
	t.Helper()
	for name, w := range want {
		if got := owner(t, filepath.Join(dst, name)); got != w {
			t.Errorf("%s on the mirror is %d:%d, want %d:%d", name, got[0], got[1], w[0], w[1])
		}
	}
}

// As root, the mirror gets the host's ids for the source's names, keeps
// the number of an id without a name and never maps 0; --numeric-ids
// keeps every number; --chown names are the host's.
func TestOwnersMappedByName(t *testing.T) {
	_, prefix := ownerHost(t)
	src := ownerSource(t)
	base := t.TempDir()
	agent := func(dst string) []string {
		os.Mkdir(dst, 0o755)
		return append(append([]string{}, prefix...), os.Args[0])
	}

	dst := filepath.Join(base, "names")
	syncStable(t, src, dialHost(t, dst, agent(dst)), engine.Options{})
	checkOwners(t, dst, map[string][2]uint32{
		"web.conf":     {hostAppUid, hostWebGid},
		"far.conf":     {hostAppUid, hostFarGid},
		"unnamed.conf": {hostAppUid, unnamedGid},
		"root.conf":    {0, 0},
		"dir":          {hostAppUid, hostWebGid},
		"link":         {hostAppUid, hostWebGid},
	})

	dst = filepath.Join(base, "numeric")
	syncStable(t, src, dialHost(t, dst, agent(dst)), engine.Options{NumericIDs: true})
	checkOwners(t, dst, map[string][2]uint32{
		"web.conf":     {srcAppUid, srcWebGid},
		"unnamed.conf": {srcAppUid, unnamedGid},
		"root.conf":    {0, 0},
	})

	dst = filepath.Join(base, "chown")
	syncStable(t, src, dialHost(t, dst, agent(dst)), engine.Options{Chown: perm.Chown{User: "gsmeta-app", Group: "gsmeta-far"}})
	for _, name := range []string{"web.conf", "root.conf", "dir", "link"} {
		checkOwners(t, dst, map[string][2]uint32{name: {hostAppUid, hostFarGid}})
	}
}

// A normal user's agent gives files the host's id of a group its user
// belongs to, found by name; --chown to a group it is not in, or to a
// name the host does not know, is refused before anything is written.
func TestNonRootAgentMapsGroupNames(t *testing.T) {
	host, prefix := ownerHost(t)
	src := ownerSource(t)
	base, err := os.MkdirTemp("", "gosync-owners-dst")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	exe := filepath.Join(host, "agent")
	agent := func(dst string) []string {
		os.Mkdir(dst, 0o755)
		os.Chown(dst, agentUid, agentUid)
		return append(append([]string{}, prefix...), "setpriv", fmt.Sprintf("--reuid=%d", agentUid), fmt.Sprintf("--regid=%d", agentUid),
			fmt.Sprintf("--groups=%d,%d", agentUid, hostWebGid), exe)
	}

	dst := filepath.Join(base, "names")
	syncStable(t, src, dialHost(t, dst, agent(dst)), engine.Options{})
	checkOwners(t, dst, map[string][2]uint32{
		"web.conf":     {agentUid, hostWebGid},
		"far.conf":     {agentUid, agentUid}, // not a member of gsmeta-far
		"unnamed.conf": {agentUid, agentUid},
		"dir":          {agentUid, hostWebGid},
	})

	dst = filepath.Join(base, "chown")
	syncStable(t, src, dialHost(t, dst, agent(dst)), engine.Options{Chown: perm.Chown{Group: "gsmeta-web"}, Chmod: mustChmod(t, "D2750,F640")})
	for _, name := range []string{"web.conf", "far.conf", "root.conf", "dir"} {
		checkOwners(t, dst, map[string][2]uint32{name: {agentUid, hostWebGid}})
	}
	if fi, _ := os.Lstat(filepath.Join(dst, "dir")); fi.Mode()&os.ModeSetgid == 0 {
		t.Errorf("dir on the mirror is %v, want setgid (D2750)", fi.Mode())
	}

	for _, c := range []struct {
		chown perm.Chown
		want  string
	}{
		{perm.Chown{Group: "gsmeta-far"}, `--chown :gsmeta-far: the mirror's agent (uid 4001, not root) is not a member of group gsmeta-far (gid 48103)`},
		{perm.Chown{Group: "nosuchgroup"}, `--chown: no group "nosuchgroup" on the mirror's host`},
		{perm.Chown{User: "gsmeta-app"}, `--chown gsmeta-app: the mirror's agent runs as uid 4001, not root`},
	} {
		dst := filepath.Join(base, "refused")
		os.RemoveAll(dst)
		r := syncOpt(t, src, dialHost(t, dst, agent(dst)), engine.Options{Chown: c.chown})
		if !errors.Is(r.Err, engine.ErrRefused) || !strings.Contains(r.Err.Error(), c.want) || !strings.Contains(r.Err.Error(), dst) {
			t.Errorf("--chown %+v: %v, want a refusal naming %s and saying %q", c.chown, r.Err, dst, c.want)
		}
		if ents, _ := os.ReadDir(dst); len(ents) > 0 {
			t.Errorf("--chown %+v was refused but wrote %d entries", c.chown, len(ents))
		}
	}
}
