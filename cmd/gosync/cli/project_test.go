//go:build linux

package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gosync/gosync/cmd/gosync/project"
	"github.com/gosync/gosync/engine/treetest"
)

// gosync watch from a project file: mirrors with different settings run
// side by side (one run each), each with its own settings, until
// interrupted.
func TestWatchProject(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "site", "index.html"), "v1")
	write(t, filepath.Join(dir, "gosync.yaml"), `source: site
reconcile: 0
mirrors:
  all:
    dest: out/all
  nolog:
    dest: out/nolog
    exclude: "*.log"
`)
	ctx, cancel := context.WithCancel(context.Background())
	var log syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- MainContext(ctx, []string{"watch", "--log-format", "text", "--config", filepath.Join(dir, "gosync.yaml")}, strings.NewReader(""), &log, &log)
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cancel()
			<-done
		}
	})
	src := filepath.Join(dir, "site")
	converge(t, src, filepath.Join(dir, "out", "all"), &log, "initial")
	write(t, filepath.Join(src, "index.html"), "v2")
	write(t, filepath.Join(src, "debug.log"), "log")
	converge(t, src, filepath.Join(dir, "out", "all"), &log, "a save")
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "out", "nolog", "index.html"))
		if string(b) == "v2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mirror nolog did not get the save:\n%s", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "nolog", "debug.log")); err == nil {
		t.Error("mirror nolog got the file its exclude names")
	}
	cancel()
	stopped = true
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after an interrupt:\n%s", code, log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not stop")
	}
	if n := strings.Count(log.String(), "stopped"); n != 2 {
		t.Errorf("%d runs stopped, want 2:\n%s", n, log.String())
	}
	// The logs name each mirror by its name in the file and its DEST.
	for _, name := range []string{"all (" + filepath.Join(dir, "out", "all") + ")", "nolog (" + filepath.Join(dir, "out", "nolog") + ")"} {
		if !strings.Contains(log.String(), `mirror="`+name+`"`) {
			t.Errorf("no log line names the mirror %s:\n%s", name, log.String())
		}
	}
}

// A mirror that cannot work at all ends the watch of every mirror of the
// project, with its error and exit 1.
func TestWatchProjectFatalEndsAll(t *testing.T) {
	dir := t.TempDir()
	treetest.Write(t, dir, map[string]string{"site/a.txt": "a", "file": "x"})
	write(t, filepath.Join(dir, "gosync.yaml"), "source: site\nmirrors:\n  good: {dest: out}\n  bad: {dest: file/sub, delete: true}\n")
	t.Chdir(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb syncBuffer
	code := MainContext(ctx, []string{"watch", "--log-format", "text", "--reconcile", "0"}, strings.NewReader(""), &out, &errb)
	if ctx.Err() != nil {
		t.Fatalf("watch still running after 30 s:\n%s", errb.String())
	}
	if code != ExitFatal || !strings.Contains(errb.String(), "file/sub") {
		t.Fatalf("exit %d, want %d with the mirror's error:\n%s", code, ExitFatal, errb.String())
	}
}

// Every key gosync init's template shows, commented out or not, is one
// a project file takes.
func TestInitTemplateKeys(t *testing.T) {
	kinds := flagKinds{allFlags()}
	re := regexp.MustCompile(`^\s*#?\s*([a-z][a-z-]*):(\s|$)`)
	n := 0
	for _, line := range strings.Split(projectTemplate, "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		switch k := m[1]; k {
		case "source", "mirrors", "dest", "preview", "prod":
		default:
			n++
			if kind := kinds.Kind(k); kind == project.Unknown || kind == project.CommandLine {
				t.Errorf("the template shows %q, which a project file does not take", k)
			}
		}
	}
	if n < 8 {
		t.Fatalf("found only %d keys in the template", n)
	}
}
