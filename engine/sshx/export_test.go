package sshx

import "time"

// SetProbeTimeout shortens the start script's time limit for a test.
func SetProbeTimeout(d time.Duration) (restore func()) {
	old := probeTimeout
	probeTimeout = d
	return func() { probeTimeout = old }
}
