//go:build linux

package bench

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func tree(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	os.MkdirAll(filepath.Join(d, "sub"), 0o755)
	os.WriteFile(filepath.Join(d, "sub/a"), []byte("same"), 0o644)
	os.Symlink("sub/a", filepath.Join(d, "link"))
	if err := os.Chtimes(filepath.Join(d, "sub/a"), time.Unix(1e9, 5), time.Unix(1e9, 5)); err != nil {
		t.Fatal(err)
	}
	return d
}

// verify is what keeps a fast wrong answer from counting: it must see
// every kind of difference.
func TestVerify(t *testing.T) {
	src := tree(t)
	if err := verify(src, tree(t)); err != nil {
		t.Fatalf("identical trees: %v", err)
	}
	breakers := map[string]func(d string){
		"content": func(d string) { os.WriteFile(filepath.Join(d, "sub/a"), []byte("SAME"), 0o644) },
		"mtime":   func(d string) { os.Chtimes(filepath.Join(d, "sub/a"), time.Unix(1e9, 6), time.Unix(1e9, 6)) },
		"mode":    func(d string) { os.Chmod(filepath.Join(d, "sub/a"), 0o600) },
		"missing": func(d string) { os.Remove(filepath.Join(d, "link")) },
		"extra":   func(d string) { os.WriteFile(filepath.Join(d, "extra"), nil, 0o644) },
		"target": func(d string) {
			os.Remove(filepath.Join(d, "link"))
			os.Symlink("sub", filepath.Join(d, "link"))
		},
	}
	for name, br := range breakers {
		t.Run(name, func(t *testing.T) {
			d := tree(t)
			br(d)
			if err := verify(src, d); err == nil {
				t.Fatalf("verify missed a %s difference", name)
			}
		})
	}
}

func TestMedianPercentile(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Fatalf("median = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Fatalf("median = %v", m)
	}
	xs := make([]float64, 200)
	for i := range xs {
		xs[i] = float64(200 - i)
	}
	if p := percentile(xs, 0.99); p != 199 {
		t.Fatalf("p99 = %v", p)
	}
}

// The proxy counts both directions of every connection.
func TestProxyCounts(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		c, err := echo.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	p, err := newProxy(echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.port()))
	if err != nil {
		t.Fatal(err)
	}
	c.Write(make([]byte, 100))
	c.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(c)
	c.Close()
	if len(got) != 100 {
		t.Fatalf("echoed %d bytes", len(got))
	}
	if n := p.take(); n != 200 {
		t.Fatalf("counted %d bytes, want 200 (100 each way)", n)
	}
}

// warm must leave nothing behind in the work directory, where the
// workloads' trees live, and must say so when it cannot write.
func TestWarm(t *testing.T) {
	e := &env{work: t.TempDir()}
	if err := e.warm(3<<20 + 5); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(e.work); len(left) != 0 {
		t.Fatalf("warm left %v in the work directory", left)
	}
	e.work = filepath.Join(e.work, "gone")
	if err := e.warm(1); err == nil {
		t.Fatal("warm into a missing directory: no error")
	}
}
