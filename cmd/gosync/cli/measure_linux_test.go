package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/sshx/sshtest"
	"github.com/gosync/gosync/engine/treetest"
)

// TestSilentCutToMirrorLost measures how long `gosync watch`, with
// default settings, takes to declare a mirror lost after its link went
// silent (packets dropped, no reset): once while idle, once with a change
// waiting to be sent. A measurement, run when asked:
//
//	GOSYNC_MEASURE=1 go test ./cmd/gosync/cli -run TestSilentCutToMirrorLost -v
func TestSilentCutToMirrorLost(t *testing.T) {
	if os.Getenv("GOSYNC_MEASURE") == "" {
		t.Skip("a measurement: set GOSYNC_MEASURE=1")
	}
	for _, busy := range []bool{false, true} {
		name := map[bool]string{false: "idle", true: "change-pending"}[busy]
		t.Run(name, func(t *testing.T) {
			srv := sshtest.Start(t)
			p := srv.ViaProxy(t, "cut", "")
			src := t.TempDir()
			treetest.Write(t, src, map[string]string{"index.html": "v1"})
			dst := filepath.Join(t.TempDir(), "www")
			log := watching(t, src, "cut:"+dst)
			converge(t, src, dst, log, "initial sync")
			time.Sleep(time.Second) // an idle link: the last bytes are a second old
			p.Freeze()
			cut := time.Now()
			if busy {
				write(t, filepath.Join(src, "index.html"), "v2 after the cut")
			}
			deadline := cut.Add(2 * time.Minute)
			for !strings.Contains(log.String(), "mirror lost") {
				if time.Now().After(deadline) {
					t.Fatalf("mirror not declared lost 2 minutes after the cut:\n%s", log.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("%s: silent cut to \"mirror lost\": %.1f s", name, time.Since(cut).Seconds())
			for _, l := range strings.Split(log.String(), "\n") {
				if strings.Contains(l, "mirror lost") {
					t.Log(l)
				}
			}
			p.Thaw()
		})
	}
}
