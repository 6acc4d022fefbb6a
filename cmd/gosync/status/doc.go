// Package status lets `gosync status` ask each running `gosync watch`
// what it is doing, and serves the same state as Prometheus metrics.
//
// Each watch listens on a Unix socket of its own in a per-user directory
// (Dir: $XDG_RUNTIME_DIR/gosync, else a 0700 directory under the temp
// directory; Windows 10 and later have Unix sockets too). A request is
// one short line, the answer one JSON document; both are bounded and
// have deadlines, and the answer is built from snapshots taken under
// short locks, so a status request never slows the watch. A socket left
// by a watch that died is removed by the next watch or status that
// finds it.
//
// The package owns the socket directory, the wire format of a status
// and its human rendering; it knows mirrors only through
// engine.MirrorStatus snapshots.
package status
