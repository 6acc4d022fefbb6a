//go:build linux

// The benchmark is a Linux tool: it installs rsync, lsyncd and sshd with
// apt-get and starts a loopback sshd (engine/sshx/sshtest).

// Package bench is gosync-bench: it builds gosync, starts its own
// loopback sshd, generates workloads and runs gosync and its peers (rsync,
// lsyncd) alternately, checking after every run that the mirror is a copy
// of the source, so a fast wrong answer never counts.
package bench

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/gosync/gosync/engine/sshx/sshtest"
)

type config struct {
	pairs      int
	smallFiles int
	bigMiB     int64
	noopFiles  int
	million    int
	saves      int
	burst      int
	dir        string
	write      string
	only       string
	keep       bool
}

// Row is one line of the results table.
type Row struct {
	Workload     string
	Gosync, Peer string
	PeerName     string
	Ratio        string
	GosyncRSS    string
	PeerRSS      string
}

type env struct {
	cfg    config
	work   string
	bin    string // gosync binary
	srv    *sshtest.Server
	proxy  *proxy
	sshCmd string // ssh command for rsync -e
	log    io.Writer
	osEnv  []string
}

// Main runs the benchmark.
func Main(args []string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("gosync-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.pairs, "pairs", 5, "runs of each tool per workload, alternating (A B A B ...)")
	fs.IntVar(&c.smallFiles, "small-files", 10000, "files in the small-files workload")
	fs.Int64Var(&c.bigMiB, "big-mib", 1024, "size of the big file in MiB")
	fs.IntVar(&c.noopFiles, "noop-files", 100000, "files in the no-op and watch-memory workloads")
	fs.IntVar(&c.million, "million-files", 1000000, "files in the many-files workload 8 (in directories of 1000); it runs only when --only names it")
	fs.IntVar(&c.saves, "saves", 200, "saves in the latency workload")
	fs.IntVar(&c.burst, "burst", 5000, "files in the burst workload")
	fs.StringVar(&c.dir, "dir", "", "work directory (default: under /dev/shm if present, so disk noise stays out)")
	fs.StringVar(&c.write, "write", "", "also write the table and machine facts to this Markdown `file` (BENCHMARKS.md)")
	fs.StringVar(&c.only, "only", "", "comma-separated workload numbers to run (default 1-7; the opt-in 3r, workload 3 with the mirrors on a loop-mounted XFS with reflinks, as root, and 8, a million files, run only when named)")
	fs.BoolVar(&c.keep, "keep", false, "keep the work directory")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := run(c, args, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "gosync-bench:", err)
		return 1
	}
	return 0
}

func run(c config, args []string, stdout, stderr io.Writer) error {
	if err := ensurePeers(stderr); err != nil {
		return err
	}
	base := c.dir
	if base == "" {
		base = os.TempDir()
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			base = "/dev/shm"
		}
	}
	work, err := os.MkdirTemp(base, "gosync-bench-")
	if err != nil {
		return err
	}
	if !c.keep {
		defer os.RemoveAll(work)
	}
	e := &env{cfg: c, work: work, log: stderr}
	e.bin = filepath.Join(work, "gosync")
	fmt.Fprintln(stderr, "building gosync...")
	build := exec.Command("go", "build", "-o", e.bin, "./cmd/gosync")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stderr = stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build (run from the repository root): %w", err)
	}
	sshd, err := sshtest.FindSSHD()
	if err != nil {
		return err
	}
	// The remote sessions find the gosync just built first in PATH, so
	// the agent measured is this tree's and not one installed on the
	// machine that speaks the same protocol.
	if e.srv, err = sshtest.LaunchWith(sshd, filepath.Join(work, "sshd"), sshtest.Options{PathPrefix: work}); err != nil {
		return err
	}
	defer e.srv.Stop()
	if e.proxy, err = newProxy(e.srv.Addr()); err != nil {
		return err
	}
	// A second alias through the counting proxy, for bytes on the wire.
	f, err := os.OpenFile(e.srv.ConfigFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "\nHost counted\n  HostName 127.0.0.1\n  Port %d\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n", e.proxy.port(), e.srv.UserKey, e.srv.KnownHosts)
	f.Close()
	hostKey, err := os.ReadFile(e.srv.KnownHosts)
	if err != nil {
		return err
	}
	_, key, _ := strings.Cut(string(hostKey), " ")
	kh, err := os.OpenFile(e.srv.KnownHosts, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(kh, "\n[127.0.0.1]:%d %s", e.proxy.port(), key)
	kh.Close()
	e.sshCmd = "ssh -F " + e.srv.ConfigFile
	e.osEnv = append(os.Environ(), "HOME="+e.srv.Home, "SSH_AUTH_SOCK=")

	workloads := []struct {
		n     string
		fn    func() ([]Row, error)
		optIn bool // run only when --only names it
	}{
		{"1", e.smallInitial, false}, {"2", e.bigInitial, false}, {"3", e.delta, false},
		{"3r", e.deltaReflink, true}, {"4", e.noop, false},
		{"5", e.latency, false}, {"6", e.burstRun, false}, {"7", e.watchMemory, false},
		// A million files: about 10 minutes and 4 GiB of tmpfs.
		{"8", e.million, true},
	}
	var rows []Row
	for _, w := range workloads {
		if c.only == "" && w.optIn || c.only != "" && !strings.Contains(","+c.only+",", ","+w.n+",") {
			continue
		}
		r, err := w.fn()
		if err != nil {
			return fmt.Errorf("workload %s: %w", w.n, err)
		}
		rows = append(rows, r...)
	}
	table := renderTable(rows)
	facts := machineFacts(e.bin)
	fmt.Fprintln(stdout, table)
	fmt.Fprintln(stdout, facts)
	if c.write != "" {
		doc := fmt.Sprintf("# gosync benchmarks\n\nMeasured by `go run ./cmd/gosync-bench %s` on %s.\n"+
			"Each tool ran %d times per workload, alternating with its peer; figures are medians, the ratio is\n"+
			"the median of the per-pair ratios (gosync / peer: below 1 means gosync is faster or smaller).\n"+
			"Every run was checked: the mirror must be a copy of the source (content, mode, mtime).\n"+
			"RSS is the peak resident memory of the client-side process tree, from GNU time (for watchers: VmRSS when idle after the initial sync, and VmHWM for their peak).\n\n%s\n%s\n",
			strings.Join(args, " "), time.Now().UTC().Format("2006-01-02"), c.pairs, table, facts)
		if err := os.WriteFile(c.write, []byte(doc), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func renderTable(rows []Row) string {
	var b strings.Builder
	b.WriteString("| workload | gosync | peer | peer result | ratio | gosync RSS | peer RSS |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.Workload, r.Gosync, r.PeerName, r.Peer, r.Ratio, r.GosyncRSS, r.PeerRSS)
	}
	return b.String()
}

func machineFacts(bin string) string {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	ver := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return "not found"
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	return fmt.Sprintf("Machine: %d cores (%s), %s/%s, %s.\n\nVersions: %s; %s; %s; %s.\n",
		runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, ver("go", "version"),
		ver(bin, "version"), ver("rsync", "--version"), ver("lsyncd", "--version"), ver("ssh", "-V"))
}

// ensurePeers installs rsync, lsyncd and openssh-server from the
// distribution's packages when they are missing.
func ensurePeers(log io.Writer) error {
	var need []string
	for bin, pkg := range map[string]string{"rsync": "rsync", "lsyncd": "lsyncd", "ssh": "openssh-client", "/usr/bin/time": "time"} {
		if _, err := exec.LookPath(bin); err != nil {
			need = append(need, pkg)
		}
	}
	if _, err := sshtest.FindSSHD(); err != nil {
		need = append(need, "openssh-server")
	}
	if len(need) == 0 {
		return nil
	}
	return aptInstall(log, need...)
}

// aptInstall installs Debian packages, as root.
func aptInstall(log io.Writer, need ...string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("missing %s; install with: sudo apt-get install -y %s", strings.Join(need, ", "), strings.Join(need, " "))
	}
	fmt.Fprintln(log, "installing", strings.Join(need, " "))
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq"}, need...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w", args[0], err)
		}
	}
	return nil
}
