//go:build linux

// The benchmark is a Linux tool: it installs rsync, lsyncd and sshd with
// apt-get and starts a loopback sshd (engine/sshx/sshtest).

// Command gosync-bench measures gosync against rsync and lsyncd on this
// machine, side by side, and prints a Markdown table. See BENCHMARKS.md.
package main

import (
	"os"

	"github.com/gosync/gosync/cmd/gosync-bench/bench"
)

func main() { os.Exit(bench.Main(os.Args[1:], os.Stdout, os.Stderr)) }
