//go:build !windows

package endpoint

// windowsPaths: Unix paths only; "C:x" is host C.
const windowsPaths = false
