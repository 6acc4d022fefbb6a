// Package gosync holds repository files that the gosync command embeds:
// `gosync init` writes the example ignore file from here, so the copy a
// user gets is the one the repository documents.
package gosync

import _ "embed"

// IgnoreExample is .gosyncignore.example.
//
//go:embed .gosyncignore.example
var IgnoreExample string
