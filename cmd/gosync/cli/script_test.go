//go:build linux

// Linux only: it needs a real sshd started by engine/sshx/sshtest, setpriv,
// Pdeathsig or Unix signals, which the CI machine (Linux) has.

package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/gosync/gosync/engine/wire"
	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(privateRuntime{m}, map[string]func(){
		"gosync": func() { os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// privateRuntime runs the tests with XDG_RUNTIME_DIR in a directory of
// their own, so the watches they start do not show up in the gosync
// status of the developer running them (nor theirs in the tests').
type privateRuntime struct{ m *testing.M }

func (p privateRuntime) Run() int {
	dir, err := os.MkdirTemp("", "gosync-test-runtime-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Setenv("XDG_RUNTIME_DIR", dir)
	return p.m.Run()
}

// TestScripts runs the command-line scenarios in testdata/script, one
// per file. Besides testscript's builtins they have:
//
//	exits N [nodac] prog args...  run prog, expect exit code N, keep its output for stdout/stderr
//	nodac prog args...           run prog without root's power to ignore file permissions
//	[root]                       condition: running as root
//	[shell:NAME]                 condition: the shell NAME is installed; under CI=true
//	                             a missing one fails the script (.ci/run installs it)
//
// and $GOSYNC_PROTOCOL, the protocol the binary speaks.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("GOSYNC_PROTOCOL", strconv.Itoa(wire.Version))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits": cmdExits,
			"nodac": func(ts *testscript.TestScript, neg bool, args []string) {
				code := run(ts, args)
				if (code != 0) != neg {
					ts.Fatalf("%s exited %d", strings.Join(args, " "), code)
				}
			},
		},
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			if sh, ok := strings.CutPrefix(cond, "shell:"); ok {
				return haveShell(sh)
			}
			return false, errors.New("unknown condition " + cond)
		},
	})
}

// haveShell reports whether a shell is installed for the completion
// tests. In CI, where .ci/run installs it, a missing one is an error.
func haveShell(name string) (bool, error) {
	if _, err := exec.LookPath(name); err == nil {
		return true, nil
	}
	if os.Getenv("CI") == "true" {
		return false, errors.New(name + " is not installed; .ci/run installs it for the completion tests")
	}
	return false, nil
}

func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits N prog args...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	args = args[1:]
	nodac := args[0] == "nodac"
	if nodac {
		args = args[1:]
	}
	if got := runMaybeNoDAC(ts, args, nodac); got != want {
		ts.Fatalf("%s exited %d, want %d", strings.Join(args, " "), got, want)
	}
}

func run(ts *testscript.TestScript, args []string) int { return runMaybeNoDAC(ts, args, true) }

// runMaybeNoDAC runs a command with the script's environment. With nodac
// and as root, it drops the capabilities that let root read and write
// any file, so permission errors happen as they would for a user.
func runMaybeNoDAC(ts *testscript.TestScript, args []string, nodac bool) int {
	if nodac && os.Geteuid() == 0 {
		args = append([]string{"setpriv", "--bounding-set", "-dac_override,-dac_read_search"}, args...)
	}
	path, err := exec.LookPath(args[0])
	if p := ts.Getenv("PATH"); err != nil || p != "" {
		for _, dir := range strings.Split(p, ":") {
			if fi, err := os.Stat(dir + "/" + args[0]); err == nil && !fi.IsDir() {
				path = dir + "/" + args[0]
				break
			}
		}
	}
	if path == "" {
		ts.Fatalf("%s: not found", args[0])
	}
	cmd := exec.Command(path, args[1:]...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = os.Environ()
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "WORK", "XDG_RUNTIME_DIR"} {
		cmd.Env = append(cmd.Env, k+"="+ts.Getenv(k))
	}
	cmd.Stdout, cmd.Stderr = ts.Stdout(), ts.Stderr()
	// Killed with the test binary, even when it times out.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	ts.Fatalf("%s: %v", args[0], err)
	return -1
}
