// Package engine turns a source tree and a mirror into the operations that
// make the mirror a copy of the source: scan, compare, plan, push. It sees
// mirrors only through the Mirror interface, which the agent client
// satisfies over any transport (an in-process pipe, a child process, SSH).
//
// It does not watch, queue, parse flags or print: callers hand it a
// source, mirrors and Options and receive Items and Results.
package engine
