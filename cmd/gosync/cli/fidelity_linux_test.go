//go:build linux

package cli

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The fidelity suite mirrors one generated tree with `rsync -a SRC/ DST/`
// and with `gosync sync SRC DST`, then compares the two mirrors field by
// field: type, mode (07777), owner, group, mtime to the nanosecond, size,
// content, symlink target and link count. Where gosync deliberately
// differs from rsync -a, fidelityAllowed names the difference and why;
// any other difference fails, and so does an allowed one that no longer
// happens. It runs as root and, through setpriv, as a normal user.

// The normal user: its own group and a second group it belongs to, and a
// group it does not belong to. Numeric ids through setpriv, as in
// engine/group_linux_test.go: no account is added to the shared machine.
const (
	fidUser   = 4101
	fidMember = 4102
	fidOther  = 4103
)

type fidAllow struct {
	as     string // "root", "user", or "" for both
	mirror string // "new" (made by the tool; a watch's too), "existing", "watch", or "" for all
	path   string // regexp on the path in the mirror ("." is its root)
	field  string
	reason string
}

var fidelityAllowed = []fidAllow{
	{"", "", `^(fifo|sock|chardev)$`, "exists",
		"FIFOs, sockets and devices are not mirrored (README: special files); rsync -a (-D) copies them"},
	{"", "existing", `^\.$`, "mode",
		"an existing mirror root keeps the mode the server's admin gave it and takes only SRC's mtime (issue 11 item 5); rsync -a applies SRC's mode"},
	{"root", "existing", `^\.$`, "uid",
		"an existing mirror root keeps its owner (issue 11 item 5); rsync -a as root applies SRC's"},
	{"", "existing", `^\.$`, "gid",
		"an existing mirror root keeps its group (issue 11 item 5); rsync -a applies SRC's"},
	{"", "watch", `^\.~gosync-lock$`, "exists",
		"while a watch runs, its session lock is in the mirror root (README: one writer per mirror); gosync sync removes it at its end"},
	{"user", "existing", `^other-group\.conf$`, "gid",
		"a group the user is not in cannot be set, so a new file keeps the group it was made with: in the setgid root gosync keeps (item 5) the root's; " +
			"rsync -a cleared the root's setgid first, so its file gets the user's primary group"},
}

type fidRun struct {
	name   string
	asRoot bool
	ids    *syscall.Credential // nil: this process's user
}

func TestFidelityVsRsync(t *testing.T) {
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("rsync is needed for the fidelity suite (.ci/run installs it)")
		}
		t.Skip("needs rsync")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: it runs as root and as a normal user with groups of its own (CI is root)")
	}
	runs := []fidRun{
		{name: "root", asRoot: true},
		{name: "user", ids: &syscall.Credential{Uid: fidUser, Gid: fidUser, Groups: []uint32{fidUser, fidMember}}},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) { fidelity(t, rsync, r) })
	}
}

func fidelity(t *testing.T, rsync string, r fidRun) {
	base, err := os.MkdirTemp("", "gosync-fidelity")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAllWritable(base) })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(base, 0o755))
	self, err := os.Executable()
	must(err)
	exe := filepath.Join(base, "gosync")
	data, err := os.ReadFile(self)
	must(err)
	must(os.WriteFile(exe, data, 0o755))

	uid, gid := os.Getuid(), os.Getgid()
	if r.ids != nil {
		uid, gid = int(r.ids.Uid), int(r.ids.Gid)
	}
	src := filepath.Join(base, "src")
	fidelityTree(t, src, r, uid, gid)

	home := filepath.Join(base, "home")
	must(os.Mkdir(home, 0o755))
	must(os.Chown(home, uid, gid))
	out := filepath.Join(base, "out") // where the user may make mirrors
	must(os.Mkdir(out, 0o755))
	must(os.Chown(out, uid, gid))
	mirrors := []string{"new", "existing"}
	for _, mirror := range mirrors {
		if mirror == "existing" {
			// A web root the admin made: another owner than SRC's as
			// root, a group of its own, setgid.
			for _, tool := range []string{"rsync-", "gosync-"} {
				d := filepath.Join(out, tool+mirror)
				must(os.Mkdir(d, 0o700))
				must(os.Chown(d, fidUser, fidMember))
				must(unix.Chmod(d, 0o2770))
			}
		}
	}
	// A watch keeps a third mirror; after each round it must match
	// rsync's new mirror as gosync sync's does.
	gw := filepath.Join(out, "gosync-watch")
	startWatch(t, r, home, exe, src, gw)

	// Rounds: the first sync; again with nothing changed, with the quick
	// check and with -c; after changes, with the quick check and with -c.
	for _, round := range []string{"first", "again", "again -c", "changed", "changed -c"} {
		if strings.HasPrefix(round, "changed") {
			fidelityChange(t, src, r, round == "changed -c")
		}
		args := []string{"sync", "-i", src}
		if strings.HasSuffix(round, "-c") {
			args = append(args, "-c")
		}
		for _, mirror := range mirrors {
			rs, gs := filepath.Join(out, "rsync-"+mirror), filepath.Join(out, "gosync-"+mirror)
			runAs(t, r, home, rsync, "-a", src+"/", rs+"/")
			out := runAs(t, r, home, exe, append(args, gs)...)
			if items := itemLines(out); strings.HasPrefix(round, "again") && items != "" {
				// Nothing changed: what a run sends or sets now (an
				// mtime it cannot store, a mode it cannot keep) it
				// would on every run.
				t.Errorf("%s mirror: a second run with nothing changed did:\n%s", mirror, items)
			}
			diffs, n := compareMirrors(t, rs, gs)
			t.Logf("%s mirror, %s run: %d entries compared, %d differences", mirror, round, n, len(diffs))
			for _, d := range diffs {
				t.Logf("  %q %s: %s", d[0], d[1], d[2])
			}
			checkAllowed(t, r.name, mirror, diffs)
		}
		rs := filepath.Join(out, "rsync-new")
		var problems []string
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			diffs, _ := compareMirrors(t, rs, gw)
			if problems = unallowed(r.name, "watch", diffs); len(problems) == 0 || time.Now().After(deadline) {
				break
			}
		}
		for _, p := range problems {
			t.Errorf("after the %s round: %s", round, p)
		}
	}
}

// startWatch runs gosync watch as the run's user until the test ends.
func startWatch(t *testing.T, r fidRun, home, exe, src, dst string) {
	t.Helper()
	cmd := exec.Command(exe, "watch", src, dst)
	cmd.Env = append(os.Environ(), "HOME="+home, "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: r.ids}
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gosync watch: %v\n%s", err, log.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("gosync watch did not stop within 10 s of SIGINT\n%s", log.String())
		}
		if t.Failed() {
			t.Logf("gosync watch log:\n%s", log.String())
		}
	})
}

// itemLines drops the summary line from gosync -i's output.
func itemLines(out string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(out, "\n") {
		if l != "" && !strings.HasPrefix(l, "synced ") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// fidelityChange changes the source as deploys do between runs.
// The second time (second set) it changes owners and groups only, back.
func fidelityChange(t *testing.T, src string, r fidRun, second bool) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p := func(rel string) string { return filepath.Join(src, rel) }
	if second {
		uid, gid := 0, 0
		if !r.asRoot {
			uid, gid = int(r.ids.Uid), int(r.ids.Gid)
		}
		must(os.Lchown(p("setgid"), -1, gid))
		must(unix.Chmod(p("setgid"), 0o2755))
		must(os.Lchown(p("setuid-setgid-member"), -1, gid))
		must(unix.Chmod(p("setuid-setgid-member"), 0o6750))
		if r.asRoot {
			must(os.Lchown(p("setuid"), uid, -1))
			must(unix.Chmod(p("setuid"), 0o4755))
		}
		return
	}
	// An update inside the 0555 directory, same size, new mtime.
	must(os.Chmod(p("ro"), 0o755))
	must(os.Chmod(p("ro/inner.txt"), 0o644))
	must(os.WriteFile(p("ro/inner.txt"), []byte("IN A 0555 DIRECTORY\n"), 0o644))
	must(os.WriteFile(p("ro/new.txt"), []byte("new\n"), 0o644))
	must(unix.Chmod(p("ro/inner.txt"), 0o444))
	must(unix.Chmod(p("ro"), 0o555))
	// Mode only; group only (to the member group) on a setgid file,
	// which chown clears, so the mode is set again after it.
	must(unix.Chmod(p("private"), 0o640))
	must(os.Lchown(p("setgid"), -1, fidMember))
	must(unix.Chmod(p("setgid"), 0o2755))
	if r.asRoot {
		must(os.Lchown(p("setuid"), fidUser, -1)) // owner only
		must(unix.Chmod(p("setuid"), 0o4755))
	}
	// Another mtime beyond 2262, and a file that becomes a symlink.
	ts := fidTime(t, 10_413_792_001, 5)
	must(unix.UtimesNanoAt(unix.AT_FDCWD, p("after-2262.txt"), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	must(os.Remove(p("exec.sh")))
	must(os.Symlink("plain.txt", p("exec.sh")))
	if !r.asRoot {
		uid, gid := int(r.ids.Uid), int(r.ids.Gid)
		for _, rel := range []string{"ro/new.txt", "exec.sh"} {
			must(os.Lchown(p(rel), uid, gid))
		}
	}
	// Times in other seconds than the first run's: rsync's quick check
	// compares mtimes to the second, so a change within the second of
	// the last sync would go unnoticed by it, and the mirrors differ
	// by rsync's doing.
	for i, rel := range []string{"ro/inner.txt", "ro/new.txt", "exec.sh", "ro", "."} {
		ts := fidTime(t, 1_400_000_000+int64(i)*86400, int64(i)*1_000_003)
		must(unix.UtimesNanoAt(unix.AT_FDCWD, p(rel), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	}
}

// runAs runs a command as the run's user; it must succeed. It returns
// the command's standard output.
func runAs(t *testing.T, r fidRun, home string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if r.ids != nil {
		cmd.SysProcAttr.Credential = r.ids
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// fidelityTree writes the cases of issue 11 that apply to a plain sync.
func fidelityTree(t *testing.T, src string, r fidRun, uid, gid int) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	type file struct {
		path, content string
		mode          uint32
		uid, gid      int // -1: the run's user and group
	}
	longDir := ""
	for i := range 15 {
		longDir = filepath.Join(longDir, fmt.Sprintf("%03d", i)+strings.Repeat("L", 247))
	}
	files := []file{
		{"plain.txt", "plain\n", 0o644, -1, -1},
		{"private", "private\n", 0o600, -1, -1},
		{"exec.sh", "#!/bin/sh\n", 0o755, -1, -1},
		{"empty", "", 0o644, -1, -1},
		{"setuid", "u", 0o4755, -1, -1},
		{"setgid", "g", 0o2755, -1, -1},
		{"setuid-setgid-member", "ug", 0o6750, -1, fidMember},
		{"member-group.conf", "member\n", 0o640, -1, fidMember},
		{"other-group.conf", "other\n", 0o640, -1, fidOther},
		{"ro/inner.txt", "in a 0555 directory\n", 0o444, -1, -1},
		{"sgid-dir/child", "c", 0o664, -1, fidMember},
		{"sgid-dir/own-group", "o", 0o664, -1, -1},
		{"sgid-dir/sub/x", "x", 0o644, -1, -1},
		{"sticky/child", "c", 0o644, -1, -1},
		{"ns.txt", "nanoseconds\n", 0o644, -1, -1},
		{"after-2262.txt", "future\n", 0o644, -1, -1},
		{"before-1970.txt", "past\n", 0o644, -1, -1},
		{"hard1", "linked\n", 0o644, -1, -1},
		{"ctl\x01char", "x", 0o644, -1, -1},
		{"tab\tname", "x", 0o644, -1, -1},
		{"new\nline", "x", 0o644, -1, -1},
		{"bad\xff\xfeutf8", "x", 0o644, -1, -1},
		{" leading space", "x", 0o644, -1, -1},
		{"trailing space ", "x", 0o644, -1, -1},
		{".gosync-tmp-x", "looks like a temporary of old\n", 0o644, -1, -1},
		{".~gosync-not-reserved", "x", 0o644, -1, -1},
		{"-dash", "x", 0o644, -1, -1},
		{strings.Repeat("n", 255), "a name of 255 bytes\n", 0o644, -1, -1},
		{"suid-dir/x", "x", 0o644, -1, -1},
		{"back\\slash", "x", 0o644, -1, -1},
		{"big.bin", strings.Repeat("0123456789abcdef", 1<<14), 0o644, -1, -1},
		{filepath.Join(longDir, "leaf.txt"), "deep\n", 0o644, -1, -1},
	}
	if r.asRoot {
		files = append(files,
			file{"owned-by-other", "o", 0o644, fidUser, fidOther},
			file{"setuid-other-owner", "s", 0o4755, fidUser, fidMember})
	}
	must(os.Mkdir(src, 0o750))
	for _, f := range files {
		p := filepath.Join(src, f.path)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, []byte(f.content), 0o600))
		u, g := f.uid, f.gid
		if u < 0 {
			u = uid
		}
		if g < 0 {
			g = gid
		}
		must(os.Lchown(p, u, g))
		must(unix.Chmod(p, f.mode)) // after chown, which clears setuid and setgid
	}
	must(os.Link(filepath.Join(src, "hard1"), filepath.Join(src, "hard2")))
	must(os.Mkdir(filepath.Join(src, "emptydir"), 0o755))
	for target, name := range map[string]string{"/etc/hostname": "abs-link", "plain.txt": "rel-link", "nowhere/x": "dangling-link", "sgid-dir": "dir-link"} {
		must(os.Symlink(target, filepath.Join(src, name)))
	}
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o644))
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	must(err)
	must(unix.Bind(sock, &unix.SockaddrUnix{Name: filepath.Join(src, "sock")}))
	unix.Close(sock)
	if r.asRoot {
		must(unix.Mknod(filepath.Join(src, "chardev"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))))
	}

	// Ownership of everything not set above, then the directory modes.
	must(filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if int(st.Uid) == os.Getuid() && int(st.Gid) == os.Getgid() && (uid != os.Getuid() || gid != os.Getgid()) {
			return os.Lchown(p, uid, gid)
		}
		return nil
	}))
	must(os.Chown(filepath.Join(src, "sgid-dir"), uid, fidMember))
	must(unix.Chmod(filepath.Join(src, "sgid-dir"), 0o2775))
	must(unix.Chmod(filepath.Join(src, "sticky"), 0o1777))
	must(unix.Chmod(filepath.Join(src, "suid-dir"), 0o4755))

	// Times: files and symlinks, then directories bottom-up (a change
	// inside a directory moves its mtime).
	stamp := func(p string, sec, nsec int64) {
		t.Helper()
		ts := fidTime(t, sec, nsec)
		must(unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	}
	var dirs []string
	i := int64(0)
	must(filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		i++
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		stamp(p, 1_600_000_000+i*1000, i*7919)
		return nil
	}))
	stamp(filepath.Join(src, "ns.txt"), 1_700_000_000, 123_456_789)
	stamp(filepath.Join(src, "after-2262.txt"), 10_413_792_000, 999_999_999) // 2300-01-01
	stamp(filepath.Join(src, "before-1970.txt"), -315_619_200, 1)            // 1960-01-01
	must(os.Chmod(filepath.Join(src, "ro"), 0o555))
	for j := len(dirs) - 1; j >= 0; j-- {
		stamp(dirs[j], 1_500_000_000+int64(j)*3600, int64(j)*104729)
	}
}

type fidEntry struct {
	typ, target string
	st          unix.Stat_t
	content     []byte
}

func fidList(t *testing.T, root string) map[string]fidEntry {
	t.Helper()
	out := map[string]fidEntry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var e fidEntry
		if err := unix.Lstat(p, &e.st); err != nil {
			return err
		}
		switch e.st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			e.typ = "file"
			if e.content, err = os.ReadFile(p); err != nil {
				return err
			}
		case unix.S_IFDIR:
			e.typ = "dir"
		case unix.S_IFLNK:
			e.typ = "symlink"
			if e.target, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			e.typ = fmt.Sprintf("special %o", e.st.Mode&unix.S_IFMT)
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compareMirrors lists every field that differs between the rsync mirror
// a and the gosync mirror b, as "path\x00field\x00description".
func compareMirrors(t *testing.T, a, b string) (diffs [][3]string, n int) {
	t.Helper()
	la, lb := fidList(t, a), fidList(t, b)
	var paths []string
	for p := range la {
		paths = append(paths, p)
	}
	for p := range lb {
		if _, ok := la[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	add := func(p, field string, x, y any) {
		diffs = append(diffs, [3]string{p, field, fmt.Sprintf("rsync %v, gosync %v", x, y)})
	}
	for _, p := range paths {
		x, okx := la[p]
		y, oky := lb[p]
		if !okx || !oky {
			add(p, "exists", okx, oky)
			continue
		}
		if x.typ != y.typ {
			add(p, "type", x.typ, y.typ)
			continue
		}
		if m, n := x.st.Mode&0o7777, y.st.Mode&0o7777; m != n {
			add(p, "mode", fmt.Sprintf("%04o", m), fmt.Sprintf("%04o", n))
		}
		if x.st.Uid != y.st.Uid {
			add(p, "uid", x.st.Uid, y.st.Uid)
		}
		if x.st.Gid != y.st.Gid {
			add(p, "gid", x.st.Gid, y.st.Gid)
		}
		if x.st.Mtim != y.st.Mtim {
			add(p, "mtime", fmtTS(x.st.Mtim), fmtTS(y.st.Mtim))
		}
		if x.typ == "dir" {
			continue // sizes and link counts of directories are the file system's
		}
		if x.st.Size != y.st.Size {
			add(p, "size", x.st.Size, y.st.Size)
		}
		if !bytes.Equal(x.content, y.content) {
			add(p, "content", len(x.content), len(y.content))
		}
		if x.target != y.target {
			add(p, "target", strconv.Quote(x.target), strconv.Quote(y.target))
		}
		if x.st.Nlink != y.st.Nlink {
			add(p, "nlink", x.st.Nlink, y.st.Nlink)
		}
	}
	return diffs, len(paths)
}

// fidTime is a file time; a 32-bit time_t cannot hold the years past
// 2038 the suite uses.
func fidTime(t *testing.T, sec, nsec int64) unix.Timespec {
	t.Helper()
	ts, err := unix.TimeToTimespec(time.Unix(sec, nsec))
	if err != nil {
		t.Skipf("this platform's time_t cannot hold %d: %v", sec, err)
	}
	return ts
}

func fmtTS(ts unix.Timespec) string { return fmt.Sprintf("%d.%09d", ts.Sec, ts.Nsec) }

// checkAllowed fails on every difference fidelityAllowed does not name
// and on every entry of it that matched nothing.
func checkAllowed(t *testing.T, as, mirror string, diffs [][3]string) {
	t.Helper()
	for _, p := range unallowed(as, mirror, diffs) {
		t.Error(p)
	}
}

func unallowed(as, mirror string, diffs [][3]string) []string {
	applies := func(a fidAllow) bool {
		return (a.as == "" || a.as == as) && (a.mirror == "" || a.mirror == mirror || a.mirror == "new" && mirror == "watch")
	}
	var out []string
	used := make([]bool, len(fidelityAllowed))
	for _, d := range diffs {
		ok := false
		for i, a := range fidelityAllowed {
			if applies(a) && a.field == d[1] && regexp.MustCompile(a.path).MatchString(d[0]) {
				used[i], ok = true, true
			}
		}
		if !ok {
			out = append(out, fmt.Sprintf("%s mirror: %q: %s differs from rsync -a: %s", mirror, d[0], d[1], d[2]))
		}
	}
	for i, a := range fidelityAllowed {
		if !used[i] && applies(a) {
			out = append(out, fmt.Sprintf("%s mirror: allowed difference %s of %q no longer happens: remove it from fidelityAllowed", mirror, a.field, a.path))
		}
	}
	return out
}

// removeAllWritable removes a tree that holds read-only directories.
func removeAllWritable(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	os.RemoveAll(dir)
}

// A run that changes nothing leaves the mirror root's mtime as the last
// run set it (the source's). Taking the session lock in the root changes
// its mtime; releasing the lock puts back the one it found.
func TestUnchangedRunKeepsRootMtime(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "m")
	if err := os.WriteFile(filepath.Join(src, "a"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := fidTime(t, 1_500_000_000, 123_456_789)
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, src, []unix.Timespec{ts, ts}, 0); err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		if code, _, stderr := gosync(t, "sync", src, dst); code != 0 {
			t.Fatalf("run %d: exit %d: %s", run, code, stderr)
		}
		var st unix.Stat_t
		if err := unix.Lstat(dst, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mtim != ts {
			t.Fatalf("after run %d the mirror root's mtime is %s, the source's %s", run, fmtTS(st.Mtim), fmtTS(ts))
		}
	}
}
