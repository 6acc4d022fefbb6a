package wire

import (
	"runtime/debug"
	"strings"
)

// BuildID names this binary's build: module version and VCS revision when
// known, the revision once (a pseudo-version such as
// v0.0.0-20260102150405-1a2b3c4d5e6f already holds it). The client and
// its agent report it in the handshake; the gosync command and the slim
// agent of a release compute it the same way.
func BuildID() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	id := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && !HasRevision(id, s.Value) {
			id += "+" + s.Value
		}
	}
	return id
}

// ShortRevision is the first 12 hex digits of a VCS revision, as Go's
// pseudo-versions write it.
func ShortRevision(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// HasRevision reports whether version already names revision rev (a
// pseudo-version ends with its first 12 digits, perhaps then +dirty).
func HasRevision(version, rev string) bool {
	short := ShortRevision(rev)
	return short != "" && strings.Contains(version, short)
}
