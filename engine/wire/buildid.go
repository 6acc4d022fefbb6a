package wire

import "runtime/debug"

// BuildID names this binary's build: module version and VCS revision when
// known. The client and its agent report it in the handshake; the gosync
// command and the slim agent of a release compute it the same way.
func BuildID() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	id := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			id += "+" + s.Value
		}
	}
	return id
}
