package fstree

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

// walkState is what both walk implementations share: the options and the
// handling of errors about single entries.
type walkState struct {
	ctx context.Context
	opt WalkOptions
	fn  func(*Entry) error
}

func (w *walkState) fail(rel string, err error) error {
	if w.opt.OnError == nil {
		return fmt.Errorf("%s: %w", displayPath(rel), err)
	}
	w.opt.OnError(rel, err)
	return nil
}

// reserved handles one of gosync's own names: on the mirror side (Temp
// set) a leftover temporary goes to Temp and the lock is left alone; on the
// source side a file of that name is reported, not silently skipped.
func (w *walkState) reserved(name, rel string) {
	switch {
	case w.opt.Temp != nil:
		if IsTemp(name) {
			w.opt.Temp(rel)
		}
	case w.opt.OnError != nil:
		w.opt.OnError(rel, ErrReservedName)
	}
}

// skip handles an error about one child: one that vanished since the
// directory was listed has nothing to mirror; anything else is reported.
func (w *walkState) skip(rel string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return w.fail(rel, err)
}
