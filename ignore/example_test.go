package ignore_test

import (
	"fmt"
	"strings"

	"github.com/gosync/gosync/ignore"
)

func Example() {
	file, err := ignore.Parse(ignore.FileName, strings.NewReader(`
# dependencies
node_modules/
*.log
!important.log
build/
!build/keep.txt
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	exclude, err := ignore.ParsePattern(ignore.ExcludeSource, "/secret/")
	if err != nil {
		fmt.Println(err)
		return
	}
	m := ignore.New(ignore.Defaults(), file, []ignore.Rule{exclude})

	// A tree walker asks Match and does not descend into ignored directories.
	fmt.Println(m.Match("web/node_modules", true))
	fmt.Println(m.Match("node_modules", false)) // a file: "node_modules/" is for directories
	fmt.Println(m.Match("logs/important.log", false))

	// A watcher sees any path: Ignored also checks the parents. build/ is
	// ignored, so the "!build/keep.txt" line cannot re-include its file.
	fmt.Println(m.Match("build/keep.txt", false), m.Ignored("build/keep.txt", false))
	if r, ok := m.Explain("build/keep.txt", false); ok {
		fmt.Println(r)
	}
	fmt.Println(m.Ignored("src/.app.js.swp", false))
	// Output:
	// true
	// false
	// false
	// false true
	// .gosyncignore:6: build/
	// true
}

func ExampleParse_error() {
	_, err := ignore.Parse(ignore.FileName, strings.NewReader("*.log\nfoo[\n"))
	fmt.Println(err)
	// Output:
	// .gosyncignore:2: invalid pattern "foo[": unterminated character class: "[" without a closing "]" (write \[ for a literal "["); fix or remove the line
}
