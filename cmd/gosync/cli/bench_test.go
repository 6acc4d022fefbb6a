//go:build linux

// Linux only: it needs a real sshd started by engine/sshx/sshtest, setpriv,
// Pdeathsig or Unix signals, which the CI machine (Linux) has.

package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
)

// benchSaves measures save-to-mirror latency under `gosync watch`: each
// iteration saves one file (new content, same size) and waits until the
// mirror has exactly that content. Run with -benchtime=200x for the
// p50/p99 of 200 saves.
func benchSaves(b *testing.B, dest func(string) string) {
	src := b.TempDir()
	treetest.Write(b, src, map[string]string{"index.html": "initial 000000", "css/site.css": "body{}"})
	dst := filepath.Join(b.TempDir(), "www")
	log := watchingTB(b, "--reconcile", "0", src, dest(dst))
	waitTB(b, log, func() bool { return exists(filepath.Join(dst, "css/site.css")) })
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		content := []byte(fmt.Sprintf("save %09d", i))
		start := time.Now()
		if err := os.WriteFile(filepath.Join(src, "index.html"), content, 0o644); err != nil {
			b.Fatal(err)
		}
		for {
			got, _ := os.ReadFile(filepath.Join(dst, "index.html"))
			if bytes.Equal(got, content) {
				break
			}
			if time.Since(start) > 10*time.Second {
				b.Fatalf("save %d not mirrored in 10 s\n%s", i, log.String())
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

func BenchmarkSaveToMirrorLocal(b *testing.B) { benchSaves(b, func(d string) string { return d }) }

func BenchmarkSaveToMirrorSSH(b *testing.B) {
	sshtest.Start(b)
	benchSaves(b, func(d string) string { return sshtest.Alias + ":" + d })
}

// BenchmarkBurst5000 measures how long a 5,000-file change set (a branch
// switch) takes until the mirror is identical.
func BenchmarkBurst5000(b *testing.B) {
	src := b.TempDir()
	treetest.Write(b, src, map[string]string{"keep.txt": "k"})
	dst := filepath.Join(b.TempDir(), "www")
	log := watchingTB(b, "--reconcile", "0", src, dst)
	waitTB(b, log, func() bool { return exists(filepath.Join(dst, "keep.txt")) })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		for j := range 5000 {
			p := filepath.Join(src, fmt.Sprintf("d%02d/f%04d.txt", j%50, j))
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(burstContent(i, j)), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		// Cheap polling (sizes), so the wait does not steal the CPU it
		// measures; contents are compared once at the end.
		for !burstArrived(dst, i) {
			if time.Since(start) > 60*time.Second {
				b.Fatalf("burst not mirrored in 60 s\n%s", log.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/burst")
		b.StopTimer()
		treetest.Equal(b, src, dst, treetest.Options{})
		b.StartTimer()
	}
}

func burstArrived(dst string, round int) bool {
	for j := 4999; j >= 0; j-- {
		fi, err := os.Stat(filepath.Join(dst, fmt.Sprintf("d%02d/f%04d.txt", j%50, j)))
		if err != nil || fi.Size() != int64(len(burstContent(round, j))) {
			return false
		}
	}
	return true
}

// burstContent differs in size from round to round, so arrival can be
// checked by size.
func burstContent(round, j int) string {
	return fmt.Sprintf("round %d file %d %s", round, j, strings.Repeat("+", round))
}
