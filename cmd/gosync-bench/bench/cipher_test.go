//go:build linux

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gosync/gosync/engine/sshx/sshtest"
)

// TestCipherThroughput measures a 1 GiB initial sync over a loopback SSH
// connection: gosync with chacha20-poly1305 (forced through ssh_config),
// gosync with its default cipher (aes128-gcm on a CPU with AES), and
// rsync -a -e ssh (OpenSSH's default, chacha20), in rotating order. It is
// a measurement, not a check, so it runs only when asked:
//
//	GOSYNC_MEASURE=1 go test ./cmd/gosync-bench/bench -run TestCipherThroughput -v -timeout 60m
//
// GOSYNC_MEASURE_ROUNDS sets the rounds (default 3), GOSYNC_MEASURE_MIB
// the file size (default 1024).
func TestCipherThroughput(t *testing.T) {
	if os.Getenv("GOSYNC_MEASURE") == "" {
		t.Skip("a measurement: set GOSYNC_MEASURE=1")
	}
	rounds, mib := 3, int64(1024)
	fmt.Sscan(os.Getenv("GOSYNC_MEASURE_ROUNDS"), &rounds)
	fmt.Sscan(os.Getenv("GOSYNC_MEASURE_MIB"), &mib)
	work, err := os.MkdirTemp("/dev/shm", "gosync-cipher-")
	if err != nil {
		work = t.TempDir()
	} else {
		t.Cleanup(func() { os.RemoveAll(work) })
	}
	bin := filepath.Join(work, "gosync")
	build := exec.Command("go", "build", "-o", bin, "github.com/gosync/gosync/cmd/gosync")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// After the build: Start points HOME at the test's, which would
	// give go an empty module and build cache.
	srv := sshtest.Start(t)
	srv.AppendConfig(t, fmt.Sprintf("\nHost chacha\n  HostName 127.0.0.1\n  Port %d\n  IdentityFile %s\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n  Ciphers chacha20-poly1305@openssh.com\n",
		srv.Port, srv.UserKey, srv.KnownHosts))
	src := filepath.Join(work, "src")
	os.Mkdir(src, 0o755)
	if err := bigFile(filepath.Join(src, "big.bin"), mib<<20); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+srv.Home, "SSH_AUTH_SOCK=")
	type tool struct {
		name string
		cmd  func(dst string) *exec.Cmd
	}
	tools := []tool{
		{"gosync chacha20-poly1305", func(dst string) *exec.Cmd {
			return exec.Command(bin, "sync", "--no-progress", src, "chacha:"+dst)
		}},
		{"gosync default (aes128-gcm)", func(dst string) *exec.Cmd {
			return exec.Command(bin, "sync", "--no-progress", src, sshtest.Alias+":"+dst)
		}},
		{"rsync -a -e ssh", func(dst string) *exec.Cmd {
			return exec.Command("rsync", "-a", "-e", "ssh -F "+srv.ConfigFile, src+"/", sshtest.Alias+":"+dst+"/")
		}},
	}
	secs := make([][]float64, len(tools))
	for r := range rounds {
		for k := range tools {
			i := (k + r) % len(tools) // rotate who goes first
			dst := filepath.Join(work, fmt.Sprint("dst", i))
			os.RemoveAll(dst)
			cmd := tools[i].cmd(dst)
			cmd.Env = env
			d, _, err := measure(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if err := verify(src, dst); err != nil {
				t.Fatalf("%s: %v", tools[i].name, err)
			}
			os.RemoveAll(dst)
			secs[i] = append(secs[i], d.Seconds())
			t.Logf("round %d %-28s %.3f s  %.0f MiB/s", r+1, tools[i].name, d.Seconds(), float64(mib)/d.Seconds())
		}
	}
	var b strings.Builder
	for i, tl := range tools {
		var ratios []float64
		for r := range rounds {
			ratios = append(ratios, secs[i][r]/secs[2][r])
		}
		fmt.Fprintf(&b, "\n%-28s median %.3f s (%.0f MiB/s), %v, vs rsync: median ratio %.2f %v", tl.name, median(secs[i]), float64(mib)/median(secs[i]), secs[i], median(ratios), ratios)
	}
	t.Log(b.String())
}
