// Package watch turns file system events under a source tree into batches
// of dirty paths.
//
// It owns the recursive watch: fsnotify is not recursive on Linux, so a
// [Watcher] adds one watch per directory, adds the watch of a new directory
// before it lists it (so nothing created in between is missed), drops the
// watches of directories that are removed or renamed away, and falls back to
// polling where the kernel's watch limit runs out. It maps events to paths
// relative to the root, turns whatever makes the state of a subtree uncertain
// (an event queue overflow, a new or moved-in directory, a lost watch, the
// root vanishing and coming back) into "rescan this subtree", and debounces
// and coalesces everything into [Batch]es.
//
// It does not decide what a path means or what to do about it: a [Change]
// only says "look at this path again". Callers lstat each path and find it
// changed, gone, or not there at all (editors' temporaries come and go within
// one batch). It does not sync anything, and it knows the ignore rules only
// through [ignore.Matcher]: their syntax and the .gosyncignore file belong to
// package ignore, and reloading that file is the caller's job
// ([Watcher.SetIgnore]).
//
// # Known limits
//
//   - Events that the kernel queued for a directory before its rename away
//     was processed are reported under its old name (harmless: the caller
//     finds nothing there).
//   - If a parent of the root (not the root itself) is renamed, the watches
//     keep following the moved directories and report paths as if nothing
//     happened; nothing tells the watcher that the root path now names
//     something else.
//   - A directory reachable under two paths in the tree (a bind mount) is
//     watched under one of them: inotify has one watch per inode.
//   - A polled subtree (after the watch limit was hit) costs a walk of it
//     every PollInterval. Each poll first retries to watch the polled
//     directories, so raising fs.inotify.max_user_watches ends the polling
//     without a restart.
package watch
