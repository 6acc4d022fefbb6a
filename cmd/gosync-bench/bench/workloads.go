//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gosync/gosync/engine/sshx/sshtest"
)

func (e *env) gosyncCmd(src, dest string) *exec.Cmd {
	c := exec.Command(e.bin, "sync", "--log-format", "text", src, dest)
	c.Env = e.osEnv
	return c
}

func (e *env) rsyncCmd(src, dest string) *exec.Cmd {
	c := exec.Command("rsync", "-a", "-e", e.sshCmd, src+"/", dest+"/")
	c.Env = e.osEnv
	return c
}

func (e *env) logf(format string, a ...any) { fmt.Fprintf(e.log, format+"\n", a...) }

// sample is one measured run.
type sample struct {
	secs float64
	rss  int64 // KiB
	wire int64
}

// alternate runs a and b cfg.pairs times, alternating which goes first,
// with prep before each pair.
func (e *env) alternate(name string, prep func(i int) error, a, b func(i int) (sample, error)) ([]sample, []sample, error) {
	var as, bs []sample
	for i := 0; i < e.cfg.pairs; i++ {
		if prep != nil {
			if err := prep(i); err != nil {
				return nil, nil, err
			}
		}
		first, second, fs, ss := a, b, &as, &bs
		if i%2 == 1 {
			first, second, fs, ss = b, a, &bs, &as
		}
		x, err := first(i)
		if err != nil {
			return nil, nil, err
		}
		y, err := second(i)
		if err != nil {
			return nil, nil, err
		}
		*fs, *ss = append(*fs, x), append(*ss, y)
		e.logf("  %s pair %d: gosync %.3fs rsync %.3fs", name, i+1, as[len(as)-1].secs, bs[len(bs)-1].secs)
	}
	return as, bs, nil
}

func timeRow(workload, peer string, g, p []sample) Row {
	var gs, ps, ratios, grss, prss []float64
	for i := range g {
		gs, ps = append(gs, g[i].secs), append(ps, p[i].secs)
		ratios = append(ratios, g[i].secs/p[i].secs)
		grss, prss = append(grss, float64(g[i].rss)), append(prss, float64(p[i].rss))
	}
	return Row{Workload: workload, PeerName: peer,
		Gosync: fmt.Sprintf("%.3f s", median(gs)), Peer: fmt.Sprintf("%.3f s", median(ps)),
		Ratio: fmt.Sprintf("%.2f", median(ratios)), GosyncRSS: mib(median(grss)), PeerRSS: mib(median(prss))}
}

func mib(kib float64) string {
	if kib == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", kib/1024)
}

// syncPair returns runners for gosync and rsync from src to two mirror
// directories through alias, each verified after it ran. With warm > 0,
// each run is preceded by e.warm(warm): for the workloads that write a
// big file, whose time otherwise depends on how long ago memory was freed
// (see warm).
func (e *env) syncPair(src, gdst, rdst, alias string, warm int64) (func(int) (sample, error), func(int) (sample, error)) {
	run := func(cmd *exec.Cmd, dst string) (sample, error) {
		if warm > 0 {
			if err := e.warm(warm); err != nil {
				return sample{}, err
			}
		}
		e.proxy.take()
		d, rss, err := measure(cmd)
		wire := e.proxy.take()
		if err != nil {
			return sample{}, err
		}
		if err := verify(src, dst); err != nil {
			return sample{}, fmt.Errorf("%s left a wrong mirror: %w", cmd.Args[0], err)
		}
		return sample{secs: d.Seconds(), rss: rss, wire: wire}, nil
	}
	return func(int) (sample, error) { return run(e.gosyncCmd(src, alias+":"+gdst), gdst) },
		func(int) (sample, error) { return run(e.rsyncCmd(src, alias+":"+rdst), rdst) }
}

func (e *env) initial(name, src string, warm int64) ([]Row, error) {
	gdst, rdst := filepath.Join(e.work, name+"-g"), filepath.Join(e.work, name+"-r")
	g, r := e.syncPair(src, gdst, rdst, sshtest.Alias, warm)
	clear := func(int) error { os.RemoveAll(gdst); os.RemoveAll(rdst); return nil }
	gs, rs, err := e.alternate(name, clear, g, r)
	if err != nil {
		return nil, err
	}
	return []Row{timeRow(name, "rsync -a -e ssh", gs, rs)}, nil
}

func (e *env) smallInitial() ([]Row, error) {
	src := filepath.Join(e.work, "small")
	e.logf("1. generating %d small files", e.cfg.smallFiles)
	if err := smallTree(src, e.cfg.smallFiles, 1); err != nil {
		return nil, err
	}
	return e.initial(fmt.Sprintf("1. initial sync, %d files of 1-32 KiB, over SSH", e.cfg.smallFiles), src, 0)
}

func (e *env) bigSrc() (string, error) {
	src := filepath.Join(e.work, "big")
	if _, err := os.Stat(filepath.Join(src, "big.bin")); err == nil {
		return src, nil
	}
	os.MkdirAll(src, 0o755)
	e.logf("generating a %d MiB file", e.cfg.bigMiB)
	return src, bigFile(filepath.Join(src, "big.bin"), e.cfg.bigMiB<<20)
}

func (e *env) bigInitial() ([]Row, error) {
	src, err := e.bigSrc()
	if err != nil {
		return nil, err
	}
	return e.initial(fmt.Sprintf("2. initial sync, one %d MiB file (half compressible), over SSH", e.cfg.bigMiB), src, e.bigWarm())
}

func (e *env) delta() ([]Row, error) { return e.deltaIn(e.work, "3", "") }

// deltaReflink is workload 3 with both mirrors on an XFS file system that
// shares blocks (reflinks): a loop-mounted image in the work directory.
// Opt-in (--only 3r): it needs root and mounts a file system.
func (e *env) deltaReflink() ([]Row, error) {
	mnt, unmount, err := e.mountXFS(3*e.cfg.bigMiB<<20 + 512<<20)
	if err != nil {
		return nil, err
	}
	defer unmount()
	return e.deltaIn(mnt, "3r", ", mirrors on XFS with reflinks")
}

// mountXFS makes an XFS image of size bytes (reflink=1) in the work
// directory and mounts it on a loop device.
func (e *env) mountXFS(size int64) (string, func(), error) {
	if os.Geteuid() != 0 {
		return "", nil, fmt.Errorf("the reflink workload mounts a loop device: run as root")
	}
	if _, err := exec.LookPath("mkfs.xfs"); err != nil {
		if err := aptInstall(e.log, "xfsprogs"); err != nil {
			return "", nil, err
		}
	}
	img, mnt := filepath.Join(e.work, "xfs.img"), filepath.Join(e.work, "xfs")
	f, err := os.Create(img)
	if err != nil {
		return "", nil, err
	}
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return "", nil, err
	}
	for _, c := range [][]string{{"mkfs.xfs", "-q", "-f", "-m", "reflink=1", img}, {"mount", "-o", "loop", img, mnt}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return "", nil, fmt.Errorf("%s: %w: %s", c[0], err, out)
		}
	}
	return mnt, func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			e.logf("umount %s: %v: %s", mnt, err, out)
		}
		os.Remove(img)
	}, nil
}

// deltaIn is workload n: the big file synced into mirrors below dir,
// then ten scattered edits synced, timed and counted.
func (e *env) deltaIn(dir, n, where string) ([]Row, error) {
	src, err := e.bigSrc()
	if err != nil {
		return nil, err
	}
	gdst, rdst := filepath.Join(dir, "delta-g"), filepath.Join(dir, "delta-r")
	g, r := e.syncPair(src, gdst, rdst, "counted", e.bigWarm())
	if _, err := g(0); err != nil { // the starting point, not measured
		return nil, err
	}
	if _, err := r(0); err != nil {
		return nil, err
	}
	edit := func(i int) error { return editScattered(filepath.Join(src, "big.bin"), 10, uint64(100+i)) }
	gs, rs, err := e.alternate(n+". delta", edit, g, r)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s. ten 100-byte edits in the %d MiB file, over SSH%s", n, e.cfg.bigMiB, where)
	row := timeRow(name+": time", "rsync -a -e ssh", gs, rs)
	var gw, rw, ratios []float64
	for i := range gs {
		gw, rw = append(gw, float64(gs[i].wire)), append(rw, float64(rs[i].wire))
		ratios = append(ratios, float64(gs[i].wire)/float64(rs[i].wire))
	}
	wire := Row{Workload: name + ": bytes on the wire (both directions, SSH included)", PeerName: "rsync -a -e ssh",
		Gosync: fmt.Sprintf("%.0f B", median(gw)), Peer: fmt.Sprintf("%.0f B", median(rw)), Ratio: fmt.Sprintf("%.2f", median(ratios)), GosyncRSS: "-", PeerRSS: "-"}
	return []Row{row, wire}, nil
}

// noopSrc is a tree of many tiny files, shared by workloads 4 and 7.
func (e *env) noopSrc() (string, error) {
	src := filepath.Join(e.work, "many")
	if _, err := os.Stat(src); err == nil {
		return src, nil
	}
	e.logf("generating %d tiny files", e.cfg.noopFiles)
	for i := 0; i < e.cfg.noopFiles; i++ {
		d := filepath.Join(src, fmt.Sprintf("d%04d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return "", err
			}
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%06d.txt", i)), []byte(strings.Repeat("x", i%200)), 0o644); err != nil {
			return "", err
		}
	}
	return src, nil
}

func (e *env) noop() ([]Row, error) {
	src, err := e.noopSrc()
	if err != nil {
		return nil, err
	}
	gdst, rdst := filepath.Join(e.work, "noop-g"), filepath.Join(e.work, "noop-r")
	g, r := e.syncPair(src, gdst, rdst, sshtest.Alias, 0)
	if _, err := g(0); err != nil {
		return nil, err
	}
	if _, err := r(0); err != nil {
		return nil, err
	}
	gs, rs, err := e.alternate("4. no-op", nil, g, r)
	if err != nil {
		return nil, err
	}
	return []Row{timeRow(fmt.Sprintf("4. nothing to do, %d unchanged files, over SSH", e.cfg.noopFiles), "rsync -a -e ssh", gs, rs)}, nil
}

// watcher is a running gosync watch or lsyncd.
type watcher struct {
	cmd  *exec.Cmd
	logf string
}

func (w *watcher) stop() {
	w.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		w.cmd.Process.Kill()
		<-done
	}
}

func (w *watcher) rssKiB() int64 { return w.status("VmRSS:") }

// peakKiB is the watcher's peak resident memory so far.
func (w *watcher) peakKiB() int64 { return w.status("VmHWM:") }

// status reads a KiB figure of /proc/PID/status.
func (w *watcher) status(field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == field {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// startWatch starts tool ("gosync" or "lsyncd") mirroring src to dest
// (a local path or, with remote, the SSH alias) and waits for its
// initial sync.
func (e *env) startWatch(tool, src, dst string, remote bool) (*watcher, error) {
	w := &watcher{logf: dst + "." + tool + ".log"}
	os.Remove(w.logf)
	switch tool {
	case "gosync":
		target := dst
		if remote {
			target = sshtest.Alias + ":" + dst
		}
		w.cmd = exec.Command(e.bin, "watch", "--log-format", "text", "--reconcile", "0", src, target)
		lf, err := os.Create(w.logf)
		if err != nil {
			return nil, err
		}
		defer lf.Close()
		w.cmd.Stderr = lf
	case "lsyncd":
		target := dst + "/"
		rsh := ""
		if remote {
			target = sshtest.Alias + ":" + dst + "/"
			rsh = fmt.Sprintf("rsh = %q,", e.sshCmd)
		}
		cfg := dst + ".lsyncd.lua"
		lua := fmt.Sprintf("settings { nodaemon = true, logfile = %q }\nsync { default.rsync, source = %q, target = %q, delay = 0, rsync = { archive = true, %s } }\n", w.logf, src, target, rsh)
		if err := os.WriteFile(cfg, []byte(lua), 0o644); err != nil {
			return nil, err
		}
		w.cmd = exec.Command("lsyncd", cfg)
	}
	w.cmd.Env = e.osEnv
	// The watcher dies with the benchmark, even one killed or timed out.
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	os.MkdirAll(dst, 0o755)
	if err := w.cmd.Start(); err != nil {
		return nil, err
	}
	ready := "mirror connected"
	if tool == "lsyncd" {
		ready = "finished."
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		b, _ := os.ReadFile(w.logf)
		if bytes.Contains(b, []byte(ready)) {
			return w, nil
		}
		if time.Now().After(deadline) {
			w.stop()
			return nil, fmt.Errorf("%s did not finish its initial sync:\n%s", tool, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) latency() ([]Row, error) {
	var rows []Row
	for _, remote := range []bool{false, true} {
		res := map[string][]float64{}
		rss := map[string]float64{}
		for _, tool := range []string{"gosync", "lsyncd"} {
			dir := filepath.Join(e.work, fmt.Sprintf("lat-%s-%v", tool, remote))
			src, dst := dir+"/src", dir+"/dst"
			os.MkdirAll(src, 0o755)
			os.WriteFile(filepath.Join(src, "index.html"), []byte("start"), 0o644)
			w, err := e.startWatch(tool, src, dst, remote)
			if err != nil {
				return nil, err
			}
			var lat []float64
			for i := 0; i < e.cfg.saves; i++ {
				// A new size each save: rsync's quick check (size and
				// whole-second mtime) would miss same-size saves.
				content := fmt.Sprintf("save %d %s", i, strings.Repeat("x", i))
				start := time.Now()
				if err := os.WriteFile(filepath.Join(src, "index.html"), []byte(content), 0o644); err != nil {
					w.stop()
					return nil, err
				}
				for {
					if b, _ := os.ReadFile(filepath.Join(dst, "index.html")); string(b) == content {
						break
					}
					if time.Since(start) > 30*time.Second {
						w.stop()
						return nil, fmt.Errorf("%s: save %d not mirrored in 30 s", tool, i)
					}
					time.Sleep(200 * time.Microsecond)
				}
				lat = append(lat, float64(time.Since(start).Microseconds())/1000)
				time.Sleep(20 * time.Millisecond)
			}
			rss[tool] = float64(w.rssKiB())
			w.stop()
			res[tool] = lat
			e.logf("  5. %s remote=%v p50 %.1f ms", tool, remote, median(lat))
		}
		where := "local"
		if remote {
			where = "over SSH"
		}
		rows = append(rows, Row{Workload: fmt.Sprintf("5. save-to-mirror latency p50 / p99, %d saves, %s", e.cfg.saves, where), PeerName: "lsyncd (delay=0, default.rsync)",
			Gosync: fmt.Sprintf("%.1f / %.1f ms", median(res["gosync"]), percentile(res["gosync"], 0.99)),
			Peer:   fmt.Sprintf("%.1f / %.1f ms", median(res["lsyncd"]), percentile(res["lsyncd"], 0.99)),
			Ratio:  fmt.Sprintf("%.2f", median(res["gosync"])/median(res["lsyncd"])), GosyncRSS: mib(rss["gosync"]), PeerRSS: mib(rss["lsyncd"])})
	}
	return rows, nil
}

func (e *env) burstRun() ([]Row, error) {
	times := map[string][]float64{}
	for i := 0; i < e.cfg.pairs; i++ {
		order := []string{"gosync", "lsyncd"}
		if i%2 == 1 {
			order = []string{"lsyncd", "gosync"}
		}
		for _, tool := range order {
			dir := filepath.Join(e.work, "burst-"+tool)
			src, dst := dir+"/src", dir+"/dst"
			os.MkdirAll(src, 0o755)
			os.WriteFile(filepath.Join(src, "keep"), []byte("k"), 0o644)
			w, err := e.startWatch(tool, src, dst, true)
			if err != nil {
				return nil, err
			}
			start := time.Now()
			for j := 0; j < e.cfg.burst; j++ {
				p := filepath.Join(src, fmt.Sprintf("d%02d/f%05d.txt", j%50, j))
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte(fmt.Sprintf("round %d file %d %s", i, j, strings.Repeat("+", i))), 0o644)
			}
			for verify(src, dst) != nil {
				if time.Since(start) > 5*time.Minute {
					w.stop()
					return nil, fmt.Errorf("%s: burst not mirrored in 5 minutes", tool)
				}
				time.Sleep(50 * time.Millisecond)
			}
			times[tool] = append(times[tool], time.Since(start).Seconds())
			w.stop()
			e.logf("  6. %s burst %d: %.2fs", tool, i+1, times[tool][len(times[tool])-1])
		}
	}
	var ratios []float64
	for i := range times["gosync"] {
		ratios = append(ratios, times["gosync"][i]/times["lsyncd"][i])
	}
	return []Row{{Workload: fmt.Sprintf("6. burst: %d files written, until the SSH mirror is identical (includes writing them)", e.cfg.burst), PeerName: "lsyncd (delay=0, default.rsync)",
		Gosync: fmt.Sprintf("%.2f s", median(times["gosync"])), Peer: fmt.Sprintf("%.2f s", median(times["lsyncd"])), Ratio: fmt.Sprintf("%.2f", median(ratios)), GosyncRSS: "-", PeerRSS: "-"}}, nil
}

func (e *env) watchMemory() ([]Row, error) {
	src, err := e.noopSrc()
	if err != nil {
		return nil, err
	}
	rss, anon := map[string]float64{}, map[string]float64{}
	for _, tool := range []string{"gosync", "lsyncd"} {
		for _, remote := range []bool{false, true} {
			dst := filepath.Join(e.work, fmt.Sprintf("mem-%s-%v", tool, remote))
			w, err := e.startWatch(tool, src, dst, remote)
			if err != nil {
				return nil, err
			}
			time.Sleep(2 * time.Second)
			rss[fmt.Sprint(tool, remote)] = float64(w.rssKiB())
			anon[fmt.Sprint(tool, remote)] = float64(w.status("RssAnon:"))
			w.stop()
			if err := verify(src, dst); err != nil {
				return nil, fmt.Errorf("%s: %w", tool, err)
			}
		}
	}
	row := func(remote bool, where string) Row {
		g, l := rss[fmt.Sprint("gosync", remote)], rss[fmt.Sprint("lsyncd", remote)]
		// The rest of RSS is the program's own file pages (text, read-only
		// data), shared with the page cache.
		withAnon := func(tool string) string {
			return fmt.Sprintf("%s (%s anonymous)", mib(rss[fmt.Sprint(tool, remote)]), mib(anon[fmt.Sprint(tool, remote)]))
		}
		return Row{Workload: fmt.Sprintf("7. watcher RSS, %d files, %s mirror, idle after the initial sync", e.cfg.noopFiles, where), PeerName: "lsyncd",
			Gosync: withAnon("gosync"), Peer: withAnon("lsyncd"), Ratio: fmt.Sprintf("%.1f", g/l), GosyncRSS: mib(g), PeerRSS: mib(l)}
	}
	return []Row{row(false, "local (agent in-process)"), row(true, "SSH")}, nil
}

// millionSrc is a tree of e.cfg.million small files (1-64 bytes) in
// directories of 1000.
func (e *env) millionSrc() (string, error) {
	src := filepath.Join(e.work, "million")
	if _, err := os.Stat(src); err == nil {
		return src, nil
	}
	e.logf("8. generating %d small files", e.cfg.million)
	start := time.Now()
	for i := 0; i < e.cfg.million; i++ {
		d := filepath.Join(src, fmt.Sprintf("d%04d", i/1000))
		if i%1000 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return "", err
			}
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%07d.txt", i)), []byte(strings.Repeat("m", 1+i%64)), 0o644); err != nil {
			return "", err
		}
	}
	e.logf("  generated in %.1fs", time.Since(start).Seconds())
	return src, nil
}

// million is workload 8: a million small files mirrored to a local
// directory (both on tmpfs): the initial sync and a no-op against rsync -a,
// and a watcher's memory against lsyncd's.
func (e *env) million() ([]Row, error) {
	src, err := e.millionSrc()
	if err != nil {
		return nil, err
	}
	n := e.cfg.million
	gdst, rdst := filepath.Join(e.work, "million-g"), filepath.Join(e.work, "million-r")
	run := func(cmd *exec.Cmd, dst string) (sample, error) {
		d, rss, err := measure(cmd)
		if err != nil {
			return sample{}, err
		}
		if err := verify(src, dst); err != nil {
			return sample{}, fmt.Errorf("%s left a wrong mirror: %w", cmd.Args[0], err)
		}
		return sample{secs: d.Seconds(), rss: rss}, nil
	}
	// Each tool makes its mirror and syncs it again (the no-op), then the
	// mirror goes: on tmpfs a million small files take 4 GiB, and three
	// trees at once would not fit many machines.
	type pair struct{ initial, noop sample }
	tool := func(cmd func() *exec.Cmd, dst string) func(int) (pair, error) {
		return func(int) (pair, error) {
			os.RemoveAll(dst)
			defer os.RemoveAll(dst)
			a, err := run(cmd(), dst)
			if err != nil {
				return pair{}, err
			}
			b, err := run(cmd(), dst)
			return pair{a, b}, err
		}
	}
	g := tool(func() *exec.Cmd { return e.gosyncCmd(src, gdst) }, gdst)
	r := tool(func() *exec.Cmd {
		c := exec.Command("rsync", "-a", src+"/", rdst+"/")
		c.Env = e.osEnv
		return c
	}, rdst)
	var gi, gn, ri, rn []sample
	for i := 0; i < e.cfg.pairs; i++ {
		order := []bool{true, false}
		if i%2 == 1 {
			order = []bool{false, true}
		}
		for _, gosync := range order {
			f, is, ns := g, &gi, &gn
			if !gosync {
				f, is, ns = r, &ri, &rn
			}
			x, err := f(i)
			if err != nil {
				return nil, err
			}
			*is, *ns = append(*is, x.initial), append(*ns, x.noop)
		}
		e.logf("  8. pair %d: initial gosync %.3fs rsync %.3fs; no-op gosync %.3fs rsync %.3fs", i+1, gi[i].secs, ri[i].secs, gn[i].secs, rn[i].secs)
	}
	rows := []Row{
		timeRow(fmt.Sprintf("8. initial sync, %d files of 1-64 B in directories of 1000, local (tmpfs)", n), "rsync -a", gi, ri),
		timeRow(fmt.Sprintf("8. nothing to do, %d unchanged files, local (tmpfs)", n), "rsync -a", gn, rn),
	}

	idle, peak := map[string]float64{}, map[string]float64{}
	for _, tool := range []string{"gosync", "lsyncd"} {
		dst := filepath.Join(e.work, "million-w-"+tool)
		w, err := e.startWatch(tool, src, dst, false)
		if err != nil {
			return nil, err
		}
		time.Sleep(2 * time.Second)
		idle[tool], peak[tool] = float64(w.rssKiB()), float64(w.peakKiB())
		w.stop()
		err = verify(src, dst)
		os.RemoveAll(dst)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tool, err)
		}
		e.logf("  8. %s watch: idle %.0f MiB, peak %.0f MiB", tool, idle[tool]/1024, peak[tool]/1024)
	}
	mem := func(what string, m map[string]float64) Row {
		return Row{Workload: fmt.Sprintf("8. watcher RSS, %d files, local mirror, %s", n, what), PeerName: "lsyncd (its rsync child not counted)",
			Gosync: mib(m["gosync"]), Peer: mib(m["lsyncd"]), Ratio: fmt.Sprintf("%.1f", m["gosync"]/m["lsyncd"]), GosyncRSS: mib(m["gosync"]), PeerRSS: mib(m["lsyncd"])}
	}
	return append(rows, mem("idle after the initial sync", idle), mem("peak (VmHWM) during the initial sync", peak)), nil
}
