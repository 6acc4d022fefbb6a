//go:build linux

package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Under systemd (stderr is the stream JOURNAL_STREAM names) log lines
// carry their syslog priority and neither a time nor colours; anywhere
// else, or with the variable inherited by a process writing elsewhere,
// they stay as they were.
func TestJournalLogFormat(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "a.txt"), "a")
	must(t, syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644)) // logs a warning
	logTo := func(journal bool) string {
		t.Helper()
		f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
		must(t, err)
		defer f.Close()
		var st syscall.Stat_t
		must(t, syscall.Fstat(int(f.Fd()), &st))
		stream := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
		if !journal {
			stream = fmt.Sprintf("%d:%d", st.Dev, st.Ino+1)
		}
		t.Setenv("JOURNAL_STREAM", stream)
		var out syncBuffer
		if code := MainContext(context.Background(), []string{"sync", src, filepath.Join(t.TempDir(), "dst")}, strings.NewReader(""), &out, f); code != 0 {
			t.Fatalf("exit %d", code)
		}
		b, err := os.ReadFile(f.Name())
		must(t, err)
		return string(b)
	}
	got := logTo(true)
	if !regexp.MustCompile(`(?m)^<4>WRN skipping special file \(FIFO, socket or device\) path=fifo$`).MatchString(got) {
		t.Errorf("journal log:\n%s", got)
	}
	if strings.Contains(got, "\x1b") || regexp.MustCompile(`\d\d:\d\d:\d\d`).MatchString(got) {
		t.Errorf("journal log has colours or times:\n%q", got)
	}
	got = logTo(false)
	if !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d{3} WRN skipping special file`).MatchString(got) {
		t.Errorf("log outside the journal:\n%s", got)
	}
}

// With --log-format json every number is a number: a batch's bytes sent
// too (the text format says "1.2 KiB").
func TestJSONLogNumbers(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "dst")
	write(t, filepath.Join(src, "a.txt"), strings.Repeat("a", 3000))
	ctx, cancel := context.WithCancel(context.Background())
	var errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- MainContext(ctx, []string{"watch", "--log-format", "json", "--reconcile", "0", src, dst}, strings.NewReader(""), &errb, &errb)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("watch did not stop")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(errb.String()))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) != nil || rec["msg"] != "initial" {
				continue
			}
			for _, k := range []string{"sent", "changed", "deleted", "ms"} {
				if _, ok := rec[k].(float64); !ok {
					t.Errorf("%s is %T %v, want a number: %s", k, rec[k], rec[k], sc.Text())
				}
			}
			if n, _ := rec["sent"].(float64); n < 3000 {
				t.Errorf("sent %v bytes, want at least the file", n)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no initial batch logged:\n%s", errb.String())
}
