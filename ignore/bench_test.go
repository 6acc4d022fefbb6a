package ignore

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchMatcher is a realistic rule set: the defaults, the example file and
// two --exclude values.
func benchMatcher(b *testing.B) *Matcher {
	b.Helper()
	f, err := os.Open(filepath.Join("..", FileName+".example"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	file, err := Parse(FileName, f)
	if err != nil {
		b.Fatal(err)
	}
	var excl []Rule
	for _, p := range []string{"/uploads/tmp/", "*.map"} {
		r, err := ParsePattern(ExcludeSource, p)
		if err != nil {
			b.Fatal(err)
		}
		excl = append(excl, r)
	}
	return New(Defaults(), file, excl)
}

type benchPath struct {
	rel   string
	isDir bool
}

// benchPaths returns n paths shaped like a web project: sources, assets,
// dependencies, VCS objects, build output and the odd editor temporary.
func benchPaths(n int) []benchPath {
	shapes := []func(i int) benchPath{
		func(i int) benchPath { return benchPath{fmt.Sprintf("src/components/Widget%d/index.tsx", i), false} },
		func(i int) benchPath {
			return benchPath{fmt.Sprintf("src/components/Widget%d/styles.module.css", i), false}
		},
		func(i int) benchPath { return benchPath{fmt.Sprintf("src/components/Widget%d", i), true} },
		func(i int) benchPath { return benchPath{fmt.Sprintf("public/img/photo-%d.jpg", i), false} },
		func(i int) benchPath { return benchPath{fmt.Sprintf("node_modules/pkg%d/lib/index.js", i), false} },
		func(i int) benchPath { return benchPath{fmt.Sprintf(".git/objects/%02x/%038x", i%256, i), false} },
		func(i int) benchPath { return benchPath{fmt.Sprintf("dist/assets/chunk-%d.js", i), false} },
		func(i int) benchPath { return benchPath{fmt.Sprintf("dist/assets/chunk-%d.js.map", i), false} },
		func(i int) benchPath { return benchPath{fmt.Sprintf("content/blog/2024/post-%d.md", i), false} },
		func(i int) benchPath { return benchPath{fmt.Sprintf("src/pages/.page%d.tsx.swp", i), false} },
	}
	paths := make([]benchPath, n)
	for i := range paths {
		paths[i] = shapes[i%len(shapes)](i)
	}
	return paths
}

func BenchmarkMatch(b *testing.B) {
	m := benchMatcher(b)
	paths := benchPaths(10000)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; b.Loop(); i++ {
		p := paths[i%len(paths)]
		if m.Match(p.rel, p.isDir) {
			n++
		}
	}
	_ = n
}

func BenchmarkIgnored(b *testing.B) {
	m := benchMatcher(b)
	paths := benchPaths(10000)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; b.Loop(); i++ {
		p := paths[i%len(paths)]
		if m.Ignored(p.rel, p.isDir) {
			n++
		}
	}
	_ = n
}

// BenchmarkMatchTree is one pass of a tree walker over 10k paths.
func BenchmarkMatchTree(b *testing.B) {
	m := benchMatcher(b)
	paths := benchPaths(10000)
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range paths {
			m.Match(p.rel, p.isDir)
		}
	}
}

func BenchmarkParseExample(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", FileName+".example"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(FileName, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
