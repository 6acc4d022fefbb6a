package cli

import (
	"fmt"
	"path/filepath"
)

func fmtSscanPid(cmdlinePath string, pid *int) (int, error) {
	return fmt.Sscanf(filepath.Base(filepath.Dir(cmdlinePath)), "%d", pid)
}
