package ignore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// FileName is the ignore file read from the root of the source tree.
const FileName = ".gosyncignore"

// ExcludeSource is the Source of rules given with --exclude.
const ExcludeSource = "--exclude"

// DefaultSource is the Source of the built-in rules.
const DefaultSource = "default"

// defaultPatterns are editor temporaries that nobody wants mirrored: files
// that exist for the length of a save, or only while a file is open.
var defaultPatterns = []string{
	"*.swp", "*.swo", "*.swx", ".*.sw?", // vim (and nano) swap files
	"4913",             // vim's probe that the directory is writable
	"*~",               // backups: vim, emacs, gedit, kate, nano
	".#*",              // emacs lock links
	`\#*#`,             // emacs auto-save files
	"*___jb_tmp___",    // JetBrains safe write: new content
	"*___jb_old___",    // JetBrains safe write: old content
	".*.kate-swp",      // Kate swap files
	".goutputstream-*", // GIO safe save (gedit and other GNOME editors)
}

// Defaults returns the built-in rules for editor temporaries: vim swap files
// (*.swp, *.swo, *.swx, .*.sw?) and vim's 4913 write probe, *~ backups,
// emacs .#* lock links and #*# auto-saves, JetBrains *___jb_tmp___ and
// *___jb_old___, Kate .*.kate-swp and GIO .goutputstream-*. Unlike a
// pattern in a file, they match files only, never a directory, so a
// directory that happens to be named 4913 is still mirrored.
//
// VCS directories and dependency caches are not here: plain rsync users
// expect everything else mirrored; see .gosyncignore.example for those. A
// user re-includes a default with "!pattern" in the ignore file or with
// --exclude '!pattern'.
func Defaults() []Rule {
	rules := make([]Rule, 0, len(defaultPatterns))
	for _, p := range defaultPatterns {
		r, err := ParsePattern(DefaultSource, p)
		if err != nil {
			panic("ignore: bad built-in pattern: " + err.Error())
		}
		r.c.fileOnly = true
		rules = append(rules, r)
	}
	return rules
}

// Load builds the Matcher for the source tree at root: Defaults(), then the
// rules of root/.gosyncignore, then excludes (the --exclude values, each
// parsed by ParsePattern), so that excludes win over the file, and the file
// over the defaults.
//
// A missing ignore file (or a root that is not a directory) is fine. An
// ignore file that cannot be read is an error naming it; an invalid pattern
// is a *PatternError whose File is the ignore file's path or "--exclude".
func Load(root string, excludes []string) (*Matcher, error) {
	path := filepath.Join(root, FileName)
	var fileRules []Rule
	var skipped []*PatternError
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
	case err != nil:
		return nil, fmt.Errorf("ignore file: %w", err)
	default:
		fileRules, skipped, err = ParseFile(path, f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	excludeRules := make([]Rule, 0, len(excludes))
	for _, e := range excludes {
		r, err := ParsePattern(ExcludeSource, e)
		if err != nil {
			return nil, err
		}
		excludeRules = append(excludeRules, r)
	}
	m := New(Defaults(), fileRules, excludeRules)
	for _, pe := range skipped {
		m.Skipped = append(m.Skipped, fmt.Sprintf("%s:%d: pattern %q left out, as git does: %v", pe.File, pe.Line, pe.Pattern, pe.Err))
	}
	return m, nil
}
