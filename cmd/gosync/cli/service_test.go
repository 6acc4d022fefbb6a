//go:build linux

package cli

import (
	"bufio"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	systemdUnit  = "../../../examples/systemd/gosync@.service"
	launchdPlist = "../../../examples/launchd/com.github.gosync.site.plist"
)

// unitKeys reads a unit file's keys of one section.
func unitKeys(t *testing.T, file, section string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	must(t, err)
	defer f.Close()
	keys := map[string]string{}
	cur := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			cur = strings.Trim(line, "[]")
		case cur == section:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not key=value: %q", file, line)
			}
			keys[k] = v
		}
	}
	must(t, sc.Err())
	return keys
}

// serviceRuns runs a service's command line, the program replaced by
// this gosync and -n added, in a project directory: it must be a command
// line gosync takes, using the project file found there.
func serviceRuns(t *testing.T, what string, argv []string) {
	t.Helper()
	if len(argv) < 2 || filepath.Base(argv[0]) != "gosync" {
		t.Fatalf("%s runs %q, not gosync", what, argv)
	}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "site", "index.html"), "hi")
	write(t, filepath.Join(dir, "gosync.yaml"), "source: site\nmirrors:\n  local:\n    dest: out\n")
	t.Chdir(dir)
	var out, errb syncBuffer
	code := MainContext(context.Background(), append(argv[1:], "-n"), strings.NewReader(""), &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "dry run local ("+filepath.Join(dir, "out")+")") {
		t.Fatalf("%s: gosync %s -n exited %d; the CLI no longer takes the service's command line\nstdout: %s\nstderr: %s",
			what, strings.Join(argv[1:], " "), code, out.String(), errb.String())
	}
}

// The systemd unit's command is one the CLI takes, run in the project
// directory named by the instance, and systemd-analyze finds nothing to
// say about the unit.
func TestSystemdUnit(t *testing.T) {
	svc := unitKeys(t, systemdUnit, "Service")
	if svc["WorkingDirectory"] != "%f" {
		t.Errorf("WorkingDirectory=%s, want %%f: the instance is the project directory, systemd-escape --path'd", svc["WorkingDirectory"])
	}
	argv := strings.Fields(svc["ExecStart"])
	if len(argv) == 0 || argv[0] != "%h/bin/gosync" {
		t.Errorf("ExecStart=%s: README installs gosync as ~/bin/gosync", svc["ExecStart"])
	}
	unitText, err := os.ReadFile(systemdUnit)
	must(t, err)
	serviceRuns(t, "the systemd unit", argv) // changes the working directory

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze not installed (.ci/run installs systemd)")
		}
		t.Skip("systemd-analyze not installed")
	}
	// systemd-analyze --user verify needs no running systemd: a HOME
	// with the binary ExecStart names (it checks it is executable), a
	// runtime directory, and the unit under an instance's name.
	tmp := t.TempDir()
	home, run, project := filepath.Join(tmp, "home"), filepath.Join(tmp, "run"), filepath.Join(tmp, "my site")
	for _, d := range []string{filepath.Join(home, "bin"), project} {
		must(t, os.MkdirAll(d, 0o755))
	}
	must(t, os.Mkdir(run, 0o700))
	exe, err := os.Executable()
	must(t, err)
	must(t, os.Symlink(exe, filepath.Join(home, "bin", "gosync")))
	esc, err := exec.Command("systemd-escape", "--path", project).Output()
	must(t, err)
	unit := filepath.Join(tmp, "gosync@"+strings.TrimSpace(string(esc))+".service")
	must(t, os.WriteFile(unit, unitText, 0o644))
	cmd := exec.Command(analyze, "--user", "verify", unit)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_RUNTIME_DIR="+run)
	out, err := cmd.CombinedOutput()
	// verify exits 0 after lines it ignored ("Failed to parse ...,
	// ignoring"): any output is a finding.
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze --user verify: %v\n%s", err, out)
	}
}

// plist reads a property list's top-level dict (strings, arrays of
// strings, booleans and dicts are all the example uses).
func plist(t *testing.T, file string) map[string]any {
	t.Helper()
	f, err := os.Open(file)
	must(t, err)
	defer f.Close()
	d := xml.NewDecoder(f)
	var value func(start xml.StartElement) any
	value = func(start xml.StartElement) any {
		switch start.Name.Local {
		case "string", "integer", "key":
			var s string
			must(t, d.DecodeElement(&s, &start))
			return s
		case "true", "false":
			must(t, d.Skip())
			return start.Name.Local == "true"
		case "array", "dict":
			var items []any
			for {
				tok, err := d.Token()
				must(t, err)
				switch tok := tok.(type) {
				case xml.StartElement:
					items = append(items, value(tok))
				case xml.EndElement:
					if start.Name.Local == "array" {
						return items
					}
					m := map[string]any{}
					if len(items)%2 != 0 {
						t.Fatalf("%s: a dict with a key and no value", file)
					}
					for i := 0; i < len(items); i += 2 {
						m[items[i].(string)] = items[i+1]
					}
					return m
				}
			}
		}
		t.Fatalf("%s: unexpected <%s>", file, start.Name.Local)
		return nil
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			t.Fatalf("%s: no <plist><dict>", file)
		}
		must(t, err)
		if s, ok := tok.(xml.StartElement); ok && s.Name.Local == "dict" {
			return value(s).(map[string]any)
		}
	}
}

// The launchd plist is well-formed, runs a command line the CLI takes,
// in the project directory, and is restarted only after a crash.
func TestLaunchdPlist(t *testing.T) {
	p := plist(t, launchdPlist)
	var argv []string
	args, _ := p["ProgramArguments"].([]any)
	for _, a := range args {
		argv = append(argv, fmt.Sprint(a))
	}
	if wd, _ := p["WorkingDirectory"].(string); !filepath.IsAbs(wd) {
		t.Errorf("WorkingDirectory %q: launchd needs an absolute path", wd)
	}
	if label, _ := p["Label"].(string); !strings.HasPrefix(filepath.Base(launchdPlist), label+".") {
		t.Errorf("Label %q does not match the file name", label)
	}
	if ka, _ := p["KeepAlive"].(map[string]any); ka["Crashed"] != true || len(ka) != 1 {
		t.Errorf("KeepAlive %v, want only Crashed (a restart after exit 1 would fight the session that took over)", p["KeepAlive"])
	}
	serviceRuns(t, "the launchd plist", argv)
}
