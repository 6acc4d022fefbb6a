package cli

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// isJournal reports whether w is the journal stream systemd connected
// (JOURNAL_STREAM is its device and inode, see systemd.exec(5)); a child
// that inherited the variable but writes elsewhere is not.
func isJournal(w io.Writer) bool {
	f, ok := w.(*os.File)
	want := os.Getenv("JOURNAL_STREAM")
	if !ok || want == "" {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fmt.Sprintf("%d:%d", uint64(st.Dev), uint64(st.Ino)) == want
}
