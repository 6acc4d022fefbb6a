// Package project reads gosync.yaml, the project file: one source, named
// mirrors, and per-mirror options whose keys are the long names of the
// command's flags (`delete: true`, `chmod: D2775,F664`). It owns the file
// format, its errors (each one line with file:line) and where the file is
// found; it knows the flags only through the Flags interface, so what a
// key means stays with the command line, and "flags override the file"
// is one step over the flag set (Mirror.Args with the flags the command
// line set).
//
// The YAML library is go.yaml.in/yaml/v3, the YAML organisation's
// maintained continuation of gopkg.in/yaml.v3: its Node tree carries the
// line of every key and value, which the errors need, and it has no
// dependencies.
package project

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gosync/gosync/engine/endpoint"
	"go.yaml.in/yaml/v3"
)

// FileName is the project file looked for in the working directory and
// its parents.
const FileName = "gosync.yaml"

// MaxSize bounds the file read: a project file is a few hundred bytes.
const MaxSize = 1 << 20

// Kind is what a flag takes, so a value of the wrong type is an error
// naming the line, not a surprise at run time.
type Kind int

const (
	Unknown     Kind = iota // no such flag
	CommandLine             // a flag about one run (-n, -v, --log-format): not in the file
	Bool
	Int
	Duration
	String
	Path // a local file name: relative to the project file's directory, ~/ expanded
	List // repeatable: a value or a sequence of values
)

// Flags tells the loader which keys exist and what they take.
type Flags interface {
	Kind(key string) Kind
}

// Error is a mistake in the project file, at a line (0: the file as a
// whole).
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Setting is one key of the file with its values as flag arguments.
type Setting struct {
	Key    string
	Values []string
	Line   int
}

// Mirror is one named mirror with every setting that applies to it: the
// file-wide ones, overridden key by key by its own.
type Mirror struct {
	Name     string
	Dest     string // resolved: a relative local path is made absolute against the file's directory
	Line     int
	Settings []Setting
}

// Project is a loaded project file.
type Project struct {
	File    string // as it is named in errors
	Source  string // absolute
	Mirrors []Mirror
}

// Names lists the mirrors' names in file order.
func (p *Project) Names() []string {
	n := make([]string, len(p.Mirrors))
	for i, m := range p.Mirrors {
		n[i] = m.Name
	}
	return n
}

// Mirror returns the mirror called name.
func (p *Project) Mirror(name string) (Mirror, bool) {
	i := slices.IndexFunc(p.Mirrors, func(m Mirror) bool { return m.Name == name })
	if i < 0 {
		return Mirror{}, false
	}
	return p.Mirrors[i], true
}

// Find looks for FileName in dir and then in its parents, as git looks
// for .git: the nearest one wins. It returns "" when there is none.
func Find(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, FileName)
		fi, err := os.Stat(p)
		switch {
		case err == nil && !fi.IsDir():
			return p, nil
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", nil
		}
		dir = parent
	}
}

// Open reads and loads the project file at path; name is how errors name
// it. A file that was found rather than named (found) must be the
// user's own and writable by nobody else.
func Open(path, name string, found bool, flags Flags) (*Project, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: name, Msg: fmt.Sprintf("cannot read the project file: %v", errors.Unwrap(err))}
	}
	defer f.Close()
	if found {
		fi, err := f.Stat()
		if err != nil {
			return nil, &Error{File: name, Msg: fmt.Sprintf("cannot read the project file: %v", err)}
		}
		if err := checkOwner(fi); err != nil {
			return nil, &Error{File: name, Msg: fmt.Sprintf("not used: %v; another user may have put it there; "+
				"if you trust it, name it with --config", err)}
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, &Error{File: name, Msg: fmt.Sprintf("cannot read the project file: %v", err)}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return Load(name, filepath.Dir(abs), data, flags)
}

// Load parses a project file's contents. dir is the absolute directory
// relative paths in it are resolved against.
func Load(name, dir string, data []byte, flags Flags) (*Project, error) {
	if len(data) > MaxSize {
		return nil, &Error{File: name, Msg: fmt.Sprintf("larger than %d bytes; a project file is a few lines", MaxSize)}
	}
	l := loader{file: name, dir: dir, flags: flags}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, l.errf(0, "empty; it needs mirrors: (gosync init writes an example)")
		}
		return nil, l.yamlError(err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, l.errf(more.Line, "a second YAML document; a project file has one")
	} else if !errors.Is(err, io.EOF) {
		return nil, l.yamlError(err)
	}
	return l.project(&doc)
}

type loader struct {
	file  string
	dir   string
	flags Flags
}

func (l *loader) errf(line int, format string, args ...any) error {
	return &Error{File: l.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// yamlError turns the library's "yaml: line N: msg" into file:N: msg.
func (l *loader) yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		_, msg, _ = strings.Cut(msg, ": ")
	}
	return l.errf(line, "%s", oneLine(msg))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// pairs walks a mapping's keys, refusing duplicates and non-string keys.
func (l *loader) pairs(n *yaml.Node, what string, each func(key string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return l.errf(n.Line, "%s must be a mapping of keys to values, not %s", what, describe(n))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			return l.errf(k.Line, "%s: keys must be plain names, not %s", what, describe(k))
		}
		if first, ok := seen[k.Value]; ok {
			if what == "mirrors" {
				return l.errf(k.Line, "duplicate mirror name %q (first at line %d)", k.Value, first)
			}
			return l.errf(k.Line, "duplicate key %q in %s (first at line %d)", k.Value, what, first)
		}
		seen[k.Value] = k.Line
		if err := each(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

func (l *loader) project(doc *yaml.Node) (*Project, error) {
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	p := &Project{File: l.file, Source: l.dir}
	var common []Setting
	var mirrors *yaml.Node
	err := l.pairs(root, "the project file", func(key string, k, v *yaml.Node) error {
		switch key {
		case "source":
			s, err := l.scalar(key, v)
			if err != nil {
				return err
			}
			if s == "" {
				return l.errf(v.Line, "source is empty; write . for the project directory")
			}
			p.Source = l.localPath(s)
			return nil
		case "mirrors":
			mirrors = v
			return nil
		case "dest":
			return l.errf(k.Line, "dest belongs to a mirror: write it under mirrors: NAME:")
		}
		s, err := l.setting(key, k, v)
		if err == nil {
			common = append(common, s)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if mirrors == nil || mirrors.Kind == yaml.ScalarNode && mirrors.Tag == "!!null" {
		return nil, l.errf(root.Line, "no mirrors; add one under mirrors: (NAME: then dest: [user@]host:path)")
	}
	err = l.pairs(mirrors, "mirrors", func(name string, k, v *yaml.Node) error {
		if err := checkName(name); err != nil {
			return l.errf(k.Line, "mirror name %q: %v", name, err)
		}
		m, err := l.mirror(name, k, v, common)
		if err == nil {
			p.Mirrors = append(p.Mirrors, m)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(p.Mirrors) == 0 {
		return nil, l.errf(mirrors.Line, "no mirrors; add one under mirrors: (NAME: then dest: [user@]host:path)")
	}
	return p, nil
}

// checkName keeps names apart from paths and DESTs, so `gosync watch
// NAME` cannot be read as a directory or a host.
func checkName(name string) error {
	if name == "" || len(name) > 64 {
		return errors.New("must be 1 to 64 characters")
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return errors.New("use letters, digits, '.', '_' and '-' only")
		}
	}
	if name[0] == '-' || name[0] == '.' {
		return errors.New("must not start with '-' or '.'")
	}
	return nil
}

// IsName reports whether s could be a mirror's name.
func IsName(s string) bool { return checkName(s) == nil }

func (l *loader) mirror(name string, k, v *yaml.Node, common []Setting) (Mirror, error) {
	m := Mirror{Name: name, Line: k.Line}
	own := map[string]bool{}
	var settings []Setting
	if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
		return m, l.errf(v.Line, "mirror %s: write its settings below it, dest: first (e.g. dest: %s)", name, v.Value)
	}
	if v.Kind != yaml.ScalarNode {
		err := l.pairs(v, "mirror "+name, func(key string, k, v *yaml.Node) error {
			if key == "dest" {
				s, err := l.scalar(key, v)
				if err != nil {
					return err
				}
				d, err := l.dest(s)
				if err != nil {
					return l.errf(v.Line, "mirror %s: dest: %v", name, err)
				}
				m.Dest = d
				return nil
			}
			if key == "source" || key == "mirrors" {
				return l.errf(k.Line, "mirror %s: %s is set once, at the top of the file", name, key)
			}
			s, err := l.setting(key, k, v)
			if err == nil {
				settings = append(settings, s)
				own[key] = true
			}
			return err
		})
		if err != nil {
			return m, err
		}
	}
	if m.Dest == "" {
		return m, l.errf(k.Line, "mirror %s has no dest: (a local path, [user@]host:path or ssh://...)", name)
	}
	for _, s := range common {
		if !own[s.Key] {
			m.Settings = append(m.Settings, s)
		}
	}
	m.Settings = append(m.Settings, settings...)
	return m, nil
}

// dest resolves a local DEST against the file's directory.
func (l *loader) dest(s string) (string, error) {
	e, err := endpoint.Parse(s)
	if err != nil {
		return "", err
	}
	if e.Remote() {
		return s, nil
	}
	return l.localPath(s), nil
}

// localPath makes a local path absolute: ~/ is the user's home,
// anything else relative to the project file's directory.
func (l *loader) localPath(s string) string {
	if rest, ok := strings.CutPrefix(s, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	if filepath.IsAbs(s) {
		return s
	}
	return filepath.Join(l.dir, s)
}

func (l *loader) scalar(key string, v *yaml.Node) (string, error) {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return "", l.errf(v.Line, "%s takes a single value, not %s", key, describe(v))
	}
	return v.Value, nil
}

// setting checks a flag key's value against what the flag takes.
func (l *loader) setting(key string, k, v *yaml.Node) (Setting, error) {
	s := Setting{Key: key, Line: k.Line}
	kind := l.flags.Kind(key)
	switch kind {
	case Unknown:
		return s, l.errf(k.Line, "unknown key %q (the keys are source, mirrors, dest and the long names of the flags of gosync watch -h)", key)
	case CommandLine:
		return s, l.errf(k.Line, "%s is for the command line only (it is about one run, not the project)", key)
	}
	want := map[Kind]string{Bool: "true or false", Int: "a whole number", Duration: "a duration such as 500ms, 2s or 5m",
		String: "a value", Path: "a file name", List: "a value or a list of values"}[kind]
	bad := func(n *yaml.Node) error {
		return l.errf(n.Line, "%s takes %s, not %s", key, want, describe(n))
	}
	one := func(n *yaml.Node) (string, error) {
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			return "", bad(n)
		}
		switch kind {
		case Bool:
			if n.Tag != "!!bool" {
				return "", bad(n)
			}
			return strings.ToLower(n.Value), nil
		case Int:
			if n.Tag != "!!int" {
				return "", bad(n)
			}
		case Duration:
			if n.Tag == "!!int" && n.Value == "0" {
				return "0s", nil
			}
			if _, err := time.ParseDuration(n.Value); err != nil || n.Tag != "!!str" {
				return "", bad(n)
			}
		case Path:
			return l.localPath(n.Value), nil
		}
		return n.Value, nil
	}
	if kind == List && v.Kind == yaml.SequenceNode {
		for _, e := range v.Content {
			val, err := one(e)
			if err != nil {
				return s, err
			}
			s.Values = append(s.Values, val)
		}
		return s, nil
	}
	val, err := one(v)
	if err != nil {
		return s, err
	}
	s.Values = []string{val}
	return s, nil
}

// describe names a node's type for an error.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!null":
		return "nothing"
	case "!!bool":
		return "true/false " + n.Value
	case "!!int", "!!float":
		return "the number " + n.Value
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	return fmt.Sprintf("%q", v)
}

// Args turns the mirror's settings into flag arguments (--key=value,
// once per value), leaving out those the command line set: skip reports
// them, and keys the command does not know (has false: `sync` ignores
// watch's --reconcile). Flags on the command line thus override the file.
func (m Mirror) Args(has, skip func(key string) bool) []string {
	var args []string
	for _, s := range m.Settings {
		if !has(s.Key) || skip(s.Key) {
			continue
		}
		for _, v := range s.Values {
			args = append(args, "--"+s.Key+"="+v)
		}
	}
	return args
}
