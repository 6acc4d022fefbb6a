package sshx

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestKeepaliveSettings(t *testing.T) {
	tests := []struct {
		config   string
		interval time.Duration
		countMax int
		dial     time.Duration // bound on connect and handshake
	}{
		{"", 5 * time.Second, 3, 20 * time.Second},
		{"ServerAliveInterval 0\n", 0, 3, 0},
		{"ServerAliveInterval 0\nConnectTimeout 7\n", 0, 3, 7 * time.Second},
		{"ServerAliveInterval 1\nServerAliveCountMax 2\n", time.Second, 2, 3 * time.Second},
		{"ServerAliveCountMax 1\n", 5 * time.Second, 1, 10 * time.Second},
		{"ServerAliveInterval 30\nConnectTimeout 4\n", 30 * time.Second, 3, 4 * time.Second},
	}
	for _, tt := range tests {
		hc := resolveConfig(t, "Host h\n  HostKeyAlias shared\n"+indent(tt.config))
		if hc.AliveInterval != tt.interval || hc.AliveCountMax != tt.countMax || hc.dialTimeout() != tt.dial {
			t.Errorf("%q: interval %v count %d dial %v, want %v %d %v", tt.config, hc.AliveInterval, hc.AliveCountMax, hc.dialTimeout(), tt.interval, tt.countMax, tt.dial)
		}
		if hc.HostKeyAlias != "shared" {
			t.Errorf("%q: HostKeyAlias %q", tt.config, hc.HostKeyAlias)
		}
	}
	for _, bad := range []string{"ServerAliveInterval x\n", "ServerAliveCountMax -1\n", "ServerAliveInterval -2\n"} {
		if _, err := resolveConfigErr(t, "Host h\n"+indent(bad)); !errors.Is(err, ErrConfig) {
			t.Errorf("%q: err = %v, want ErrConfig", bad, err)
		}
	}
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "  " + s
}

func resolveConfig(t *testing.T, config string) *hostConfig {
	t.Helper()
	hc, err := resolveConfigErr(t, config)
	if err != nil {
		t.Fatal(err)
	}
	return hc
}

func resolveConfigErr(t *testing.T, config string) (*hostConfig, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(f, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := loadSettings(Options{ConfigFile: f})
	if err != nil {
		t.Fatal(err)
	}
	// The system file may set keepalives for every host; these cases are
	// about the user file and the defaults.
	s.system = nil
	return s.resolve("h", Options{})
}
