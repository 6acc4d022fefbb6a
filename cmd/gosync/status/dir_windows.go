package status

import (
	"os"
	"os/user"
)

// userID names the user in the fallback directory; the temp directory
// is already per user on Windows.
func userID() string {
	if u, err := user.Current(); err == nil {
		return u.Uid // a SID: no backslash, unlike the user name
	}
	return "user"
}

// checkPrivate trusts the ACL of the per-user temp directory: Windows
// file modes say nothing about other users.
func checkPrivate(dir string, fi os.FileInfo) error { return nil }
