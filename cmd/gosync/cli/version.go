package cli

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/gosync/gosync/engine/wire"
)

// BuildID names this binary's build (wire.BuildID): client and agent
// report it in the handshake.
func BuildID() string { return wire.BuildID() }

func runVersion(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
	if err := runNoFlags("version", args, stdout); err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionLine(bi, runtime.GOOS+"/"+runtime.GOARCH))
	return nil
}

// versionLine is what gosync version prints, on one line:
//
//	gosync v0.4.0 (rev 1a2b3c4d5e6f) protocol 4 go1.26.8 linux/amd64
//
// A client runs `gosync version` on a remote host to find a gosync that
// can serve as its agent, and looks for " protocol N " in this line
// (engine/sshx's start script): keep the words around the number.
func versionLine(bi *debug.BuildInfo, platform string) string {
	version, rev, modified, goVersion := "unknown", "", false, runtime.Version()
	if bi != nil {
		version, goVersion = bi.Main.Version, bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	switch version {
	case "", "(devel)":
		version = "devel"
	}
	line := "gosync " + version
	if short := wire.ShortRevision(rev); short != "" && !wire.HasRevision(version, rev) {
		if modified {
			short += "-dirty"
		}
		line += " (rev " + short + ")"
	}
	return fmt.Sprintf("%s protocol %d %s %s", line, wire.Version, goVersion, platform)
}
