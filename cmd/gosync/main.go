// Command gosync keeps mirrors of a directory up to date. See README.md.
package main

import (
	"os"

	"github.com/gosync/gosync/cmd/gosync/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
