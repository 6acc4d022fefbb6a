package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/treetest"
	"github.com/gosync/gosync/queue"
)

// BenchmarkSessionRename moves, back and forth, a 256 MiB file (the
// rename is confirmed by hashing it on both sides) and a directory of
// 10,000 files (confirmed by the inodes and ctimes of what is below it).
func BenchmarkSessionRename(b *testing.B) {
	big := make([]byte, 256<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	tree := map[string]string{}
	for i := range 10000 {
		tree[fmt.Sprintf("a/d%03d/f%05d.txt", i%200, i)] = fmt.Sprintf("file %d\n", i)
	}
	for _, c := range []struct {
		name  string
		write func(src string)
		size  int64
	}{
		{"File256MiB", func(src string) { noErr(b, os.WriteFile(filepath.Join(src, "a"), big, 0o644)) }, int64(len(big))},
		{"Dir10000Files", func(src string) { treetest.Write(b, src, tree) }, 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			src, dst := b.TempDir(), filepath.Join(b.TempDir(), "m")
			c.write(src)
			treetest.NeedAgent(b)
			m, err := engine.DialLocal(context.Background(), dst, dst, engine.ClientOptions{Create: true}, nil)
			noErr(b, err)
			defer m.Close()
			s := engine.NewSession(m, engine.Options{Delete: true, MaxDelete: -1})
			source, err := engine.ScanSource(context.Background(), src, nil, false)
			noErr(b, err)
			defer source.Close()
			ok(b, s.Full(context.Background(), source, false))
			b.SetBytes(c.size)
			from, to := "a", "b"
			for b.Loop() {
				noErr(b, os.Rename(filepath.Join(src, from), filepath.Join(src, to)))
				r := ok(b, s.Apply(context.Background(), source, []queue.Path{{Rel: from}, {Rel: to, Subtree: true}}))
				if r.Stats.Literal != 0 {
					b.Fatalf("the rename sent %d bytes", r.Stats.Literal)
				}
				from, to = to, from
			}
		})
	}
}
