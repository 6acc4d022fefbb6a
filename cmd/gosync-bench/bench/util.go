//go:build linux

package bench

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gosync/gosync/engine/fstree"
)

// measure runs cmd under GNU time and returns its wall time and the peak
// RSS of its process tree in KiB. (The rusage Go reads itself would
// include this benchmark's own memory at fork time.)
func measure(cmd *exec.Cmd) (time.Duration, int64, error) {
	var errb bytes.Buffer
	timed := exec.Command("/usr/bin/time", append([]string{"-f", "gosync-bench-maxrss %M", cmd.Path}, cmd.Args[1:]...)...)
	timed.Env, timed.Dir, timed.Stdout = cmd.Env, cmd.Dir, cmd.Stdout
	timed.Stderr = &errb
	start := time.Now()
	err := timed.Run()
	d := time.Since(start)
	var rss int64
	if i := bytes.LastIndex(errb.Bytes(), []byte("gosync-bench-maxrss ")); i >= 0 {
		fmt.Sscanf(string(errb.Bytes()[i:]), "gosync-bench-maxrss %d", &rss)
		errb.Truncate(i)
	}
	if err != nil {
		return d, rss, fmt.Errorf("%s: %v: %s", cmd.Args[0], err, lastLine(errb.String()))
	}
	return d, rss, nil
}

func lastLine(s string) string {
	s = string(bytes.TrimSpace([]byte(s)))
	if i := bytes.LastIndexByte([]byte(s), '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// verify checks that dst is a copy of src: the same entries, kinds,
// permission bits, symlink targets, file sizes, mtimes and contents.
func verify(src, dst string) error {
	type ent struct {
		mode  fs.FileMode
		size  int64
		mtime int64
		link  string
		sum   [32]byte
	}
	list := func(root string) (map[string]ent, error) {
		out := map[string]ent{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if rel == "." {
				return nil
			}
			// gosync's session lock lives in the mirror while a session
			// runs, and a moment after a sync exits; it is not the user's.
			if fstree.Reserved(d.Name()) {
				return nil
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			e := ent{mode: fi.Mode()}
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				e.link, _ = os.Readlink(p)
			case fi.Mode().IsRegular():
				e.size, e.mtime = fi.Size(), fi.ModTime().UnixNano()
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				h := sha256.New()
				_, err = io.Copy(h, f)
				f.Close()
				if err != nil {
					return err
				}
				copy(e.sum[:], h.Sum(nil))
			}
			out[rel] = e
			return nil
		})
		return out, err
	}
	a, err := list(src)
	if err != nil {
		return err
	}
	b, err := list(dst)
	if err != nil {
		return err
	}
	for p, x := range a {
		y, ok := b[p]
		if !ok {
			return fmt.Errorf("mirror lacks %s", p)
		}
		if x != y {
			return fmt.Errorf("mirror's %s differs", p)
		}
	}
	if len(b) != len(a) {
		return fmt.Errorf("mirror has %d entries, source %d", len(b), len(a))
	}
	return nil
}

// smallTree writes n source-like files of 1-32 KiB in directories of 100.
func smallTree(dir string, n int, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < n; i++ {
		d := filepath.Join(dir, fmt.Sprintf("d%04d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		size := 1024 + r.IntN(31*1024)
		line := fmt.Sprintf("export function f%d(x) { return x * %d; } // generated source text\n", i, r.IntN(1000))
		b := bytes.Repeat([]byte(line), size/len(line)+1)[:size]
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d.js", i)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// bigFile writes size bytes: the first half random, the second text-like.
func bigFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(7, 7))
	buf := make([]byte, 1<<20)
	line := []byte("function render(props) { return props.items.map(i => i.name).join(', '); }\n")
	for written := int64(0); written < size; {
		n := min(int64(len(buf)), size-written)
		if written < size/2 {
			for i := range buf[:n] {
				buf[i] = byte(r.Uint32())
			}
		} else {
			for i := int64(0); i < n; i++ {
				buf[i] = line[(written+i)%int64(len(line))]
			}
		}
		if _, err := f.Write(buf[:n]); err != nil {
			return err
		}
		written += n
	}
	return nil
}

// editScattered overwrites count random 100-byte ranges of the file.
func editScattered(path string, count int, seed uint64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(seed, 3))
	for i := 0; i < count; i++ {
		b := make([]byte, 100)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if _, err := f.WriteAt(b, r.Int64N(fi.Size()-100)); err != nil {
			return err
		}
	}
	return nil
}

// proxy counts the bytes crossing it in both directions. Bytes are
// counted as they are forwarded, so once a tool has finished, all it
// exchanged is counted.
type proxy struct {
	l     net.Listener
	bytes atomic.Int64
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func newProxy(target string) (*proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				s, err := net.Dial("tcp", target)
				if err != nil {
					c.Close()
					return
				}
				done := make(chan struct{}, 2)
				pipe := func(dst, src net.Conn) {
					io.Copy(countingWriter{dst, &p.bytes}, src)
					dst.(*net.TCPConn).CloseWrite()
					done <- struct{}{}
				}
				go pipe(s, c)
				go pipe(c, s)
				<-done
				<-done
				c.Close()
				s.Close()
			}()
		}
	}()
	return p, nil
}

func (p *proxy) port() int { return p.l.Addr().(*net.TCPAddr).Port }

// take returns the bytes counted since the last take.
func (p *proxy) take() int64 { return p.bytes.Swap(0) }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func percentile(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// warm writes n bytes to a file in the work directory and removes it,
// just before a run that writes a big file. On a virtual machine that
// reports free memory to its host (free page reporting, as on the
// Firecracker VMs these figures come from), memory freed a few seconds
// ago has been handed back, and the next write of a GiB into tmpfs
// faults every page in through the host: a 1 GiB dd took 0.19 s of
// system time right after a GiB was freed, 0.45-0.77 s three seconds
// later and 1.1 s ten seconds later. Which tool paid that depended on
// when it ran, not on the tool. After warm both start with freshly freed
// memory, as on a host without such reporting. (Other spikes of system
// time remain; BENCHMARKS.md, Reading it.)
func (e *env) warm(n int64) error {
	f, err := os.CreateTemp(e.work, "warm-*")
	if err != nil {
		return fmt.Errorf("warming memory: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 1<<20)
	for done := int64(0); done < n; done += int64(len(buf)) {
		if _, err := f.Write(buf[:min(int64(len(buf)), n-done)]); err != nil {
			return fmt.Errorf("warming memory: %w", err)
		}
	}
	return nil
}

// bigWarm is how much warm writes before a run that writes the big file:
// the file and a quarter more, plus 64 MiB for the buffers and heaps of
// the tools and sshd.
func (e *env) bigWarm() int64 { return (e.cfg.bigMiB + e.cfg.bigMiB/4 + 64) << 20 }
