// Package ignore decides which paths of a source tree gosync leaves alone.
//
// It owns the ignore rules: the built-in editor-temporary rules ([Defaults]),
// the .gosyncignore file at the root of the source tree ([FileName], [Load],
// [Parse]) and the --exclude flags ([ParsePattern]), all in gitignore syntax
// with gitignore semantics, and the [Matcher] that answers "is this path
// ignored?" for the watcher, the scanner and mirror-side listings.
//
// It does not walk trees, watch files or decide what happens to an ignored
// path that already exists on a mirror: callers do. Paths are relative to the
// source root, slash-separated and raw bytes (not necessarily UTF-8).
//
// # Syntax and semantics
//
// As in gitignore(5):
//
//   - Blank lines and lines starting with "#" are skipped; "\#" starts a
//     pattern with a literal "#". A UTF-8 byte order mark at the start of the
//     file and a carriage return before each newline are dropped.
//   - Trailing spaces are trimmed unless escaped with a backslash ("foo\ ").
//   - "!" negates: a path matched by a negated rule is re-included. "\!"
//     starts a pattern with a literal "!". The last rule that matches wins.
//   - A trailing "/" makes the rule match directories only.
//   - A leading "/" or a "/" in the middle anchors the pattern to the source
//     root ("/build", "docs/tmp"); a pattern without one matches a name at any
//     depth ("*.log" matches "a/b/debug.log").
//   - "*" matches any run of characters except "/", "?" one character except
//     "/", "[a-z]", "[!a-z]" and "[^a-z]" a character class (POSIX classes
//     such as "[[:digit:]]" included; a class never matches "/"), a backslash
//     makes the next character literal. "{" and "}" are literal.
//   - "**" spans directories: "**/foo" matches foo at any depth, "foo/**"
//     everything inside foo (but not foo itself), "a/**/b" matches a/b,
//     a/x/b, a/x/y/b. Elsewhere "**" acts like "*".
//   - A path inside an ignored directory stays ignored, even if a later "!"
//     rule matches it: git cannot re-include a file whose parent directory is
//     excluded, and neither can gosync. To ignore a directory's contents
//     except some, ignore "dir/*" and re-include "!dir/keep".
//
// Where this package differs from git:
//
//   - "?" and classes match one character (a UTF-8 encoded rune; a byte
//     that is not valid UTF-8 counts as one character) where git matches one
//     byte, so "?" matches "é" here and needs "??" in git. For ASCII they
//     agree.
//   - "**" right after literal text in an anchored pattern ("r**/s") acts
//     like "*", as gitignore(5) documents; git itself then also matches
//     "r/t/s" and "rs".
//   - The built-in [Defaults] match files only; no gitignore line can say
//     that.
//
// Matching is case-sensitive, like git with core.ignoreCase=false. The
// table tests pin all of this, and are checked against `git check-ignore`
// when git is installed.
//
// Patterns are matched with github.com/bmatcuk/doublestar/v4 after a
// translation that keeps the gitignore meaning; literal patterns and patterns
// of the form "prefix*suffix" are compared without it.
package ignore
