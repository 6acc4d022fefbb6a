package cli

import (
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gosync/gosync/engine/wire"
)

// The revision is printed once: a pseudo-version already holds it.
func TestVersionLine(t *testing.T) {
	const rev = "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	tail := fmt.Sprintf(" protocol %d go1.26.8 linux/amd64", wire.Version)
	for _, tc := range []struct {
		version  string
		settings []debug.BuildSetting
		want     string
	}{
		{"v0.4.0", nil, "gosync v0.4.0" + tail},
		{"v0.4.0", vcs("false"), "gosync v0.4.0 (rev 1a2b3c4d5e6f)" + tail},
		{"(devel)", vcs("true"), "gosync devel (rev 1a2b3c4d5e6f-dirty)" + tail},
		{"v0.0.0-20260102150405-1a2b3c4d5e6f", vcs("false"), "gosync v0.0.0-20260102150405-1a2b3c4d5e6f" + tail},
		{"v0.0.0-20260102150405-1a2b3c4d5e6f+dirty", vcs("true"), "gosync v0.0.0-20260102150405-1a2b3c4d5e6f+dirty" + tail},
		{"", nil, "gosync devel" + tail},
	} {
		bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: tc.version}, Settings: tc.settings}
		got := versionLine(bi, "linux/amd64")
		if got != tc.want {
			t.Errorf("version %q: got %q, want %q", tc.version, got, tc.want)
		}
		if strings.Count(got, "1a2b3c4d5e6f") > 1 {
			t.Errorf("version %q: revision twice in %q", tc.version, got)
		}
	}
}

// --debounce and --max-delay: the one given alone moves the other.
func TestWatchDelays(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		debounce, maxDelay   int64 // ms
		given                []string
		wantDebounce, wantMD int64
		wantErr              string
	}{
		{"defaults", 10, 1000, nil, 10, 1000, ""},
		{"debounce alone raises max-delay", 2000, 1000, []string{"debounce"}, 2000, 2000, ""},
		{"debounce alone below max-delay", 500, 1000, []string{"debounce"}, 500, 1000, ""},
		{"max-delay alone lowers debounce", 10, 5, []string{"max-delay"}, 5, 5, ""},
		{"both consistent", 2000, 3000, []string{"debounce", "max-delay"}, 2000, 3000, ""},
		{"both inconsistent", 2000, 1000, []string{"debounce", "max-delay"}, 0, 0, "raise --max-delay to 2s or more, or lower --debounce"},
		{"negative", -1, 1000, []string{"debounce"}, 0, 0, "must not be negative"},
	} {
		w := watchFlags{debounce: time.Duration(tc.debounce) * time.Millisecond, maxDelay: time.Duration(tc.maxDelay) * time.Millisecond}
		err := w.delays(func(name string) bool { return slices.Contains(tc.given, name) })
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case w.debounce != time.Duration(tc.wantDebounce)*time.Millisecond || w.maxDelay != time.Duration(tc.wantMD)*time.Millisecond:
			t.Errorf("%s: debounce %s max-delay %s, want %dms %dms", tc.name, w.debounce, w.maxDelay, tc.wantDebounce, tc.wantMD)
		}
	}
}
