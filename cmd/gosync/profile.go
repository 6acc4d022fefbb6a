package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"sync"
	"time"
)

// startProfiles starts the profiles that GOSYNC_CPUPROFILE,
// GOSYNC_MEMPROFILE and GOSYNC_TRACE (an execution trace, for go tool
// trace: which phases overlap) ask for (paths; ".<pid>" is appended, so
// a run that starts more gosync processes keeps each one's) and returns
// what writes them at exit. They are for measuring gosync (BENCHMARKS.md's profiles),
// not a user option, and are not passed on to a remote agent.
func startProfiles() (stop func()) {
	var stops []func()
	// stream writes what start begins into the file env names, until stop.
	stream := func(env string, start func(io.Writer) error, stop func()) {
		p := os.Getenv(env)
		if p == "" {
			return
		}
		f, err := os.Create(fmt.Sprintf("%s.%d", p, os.Getpid()))
		if err != nil {
			return
		}
		if start(f) != nil {
			f.Close()
			return
		}
		stops = append(stops, func() { stop(); f.Close() })
	}
	stream("GOSYNC_CPUPROFILE", pprof.StartCPUProfile, pprof.StopCPUProfile)
	stream("GOSYNC_TRACE", trace.Start, trace.Stop)
	if p := os.Getenv("GOSYNC_MEMPROFILE"); p != "" {
		// The heap profile is taken when the live heap is at its
		// highest (looked at every 100 ms), since a sync's memory is
		// freed by the time it exits.
		runtime.MemProfileRate = 64 << 10
		var (
			mu   sync.Mutex
			best bytes.Buffer
			peak uint64
		)
		done := make(chan struct{})
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		go func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				metrics.Read(sample)
				if v := sample[0].Value.Uint64(); v > peak {
					peak = v
					mu.Lock()
					best.Reset()
					pprof.Lookup("heap").WriteTo(&best, 0)
					mu.Unlock()
				}
			}
		}()
		stops = append(stops, func() {
			close(done)
			mu.Lock()
			defer mu.Unlock()
			os.WriteFile(fmt.Sprintf("%s.%d", p, os.Getpid()), best.Bytes(), 0o644)
		})
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}
