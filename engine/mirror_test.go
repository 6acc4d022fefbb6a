package engine_test

import (
	"context"
	"os"
	"testing"

	"github.com/gosync/gosync/engine"
	"github.com/gosync/gosync/engine/agent"
	"github.com/gosync/gosync/engine/mirrortest"
)

// TestMain lets the test binary serve as a child-process agent, the way
// `gosync agent ROOT` does, so the suite runs over real process pipes.
func TestMain(m *testing.M) {
	if root := os.Getenv("GOSYNC_TEST_AGENT_ROOT"); root != "" {
		if err := agent.Serve(context.Background(), os.Stdin, os.Stdout, agent.Options{Root: root}); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestInProcessMirror(t *testing.T) {
	mirrortest.Run(t, func(t *testing.T, dir string, opt engine.ClientOptions) engine.Mirror {
		m, err := engine.DialLocal(context.Background(), dir, dir, opt, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	})
}

func TestChildProcessMirror(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	mirrortest.Run(t, func(t *testing.T, dir string, opt engine.ClientOptions) engine.Mirror {
		t.Setenv("GOSYNC_TEST_AGENT_ROOT", dir)
		m, err := engine.DialCommand(context.Background(), dir, []string{exe}, opt)
		os.Unsetenv("GOSYNC_TEST_AGENT_ROOT")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	})
}
