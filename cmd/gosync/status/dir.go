package status

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Dir returns the directory of the status sockets, creating it (0700)
// if needed: $XDG_RUNTIME_DIR/gosync when XDG_RUNTIME_DIR names a
// directory, else gosync-UID under the temp directory. A directory that
// another user owns or others may enter is refused: whoever can write
// there could pose as a watch.
func Dir() (string, error) {
	if rt := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(rt) {
		if fi, err := os.Stat(rt); err == nil && fi.IsDir() {
			return ensureDir(filepath.Join(rt, "gosync"))
		}
	}
	return ensureDir(filepath.Join(os.TempDir(), "gosync-"+userID()))
}

// ensureDir makes dir (0700) if it is missing and checks that it is a
// directory, not a symlink, owned by this user and closed to others.
func ensureDir(dir string) (string, error) {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("status directory %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("status directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("status directory %s is not a directory; remove it", dir)
	}
	if err := checkPrivate(dir, fi); err != nil {
		return "", err
	}
	return dir, nil
}
