package status

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"time"
)

// Query is the answer of one socket: a watch, or why it did not answer.
type Query struct {
	Socket string
	Watch  Watch
	Err    error
}

// List asks every watch with a socket in dir for its state, removing
// sockets of dead watches. Watches are ordered by start time.
func List(ctx context.Context, dir string) []Query {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
	var out []Query
	for _, p := range paths {
		if ctx.Err() != nil {
			break
		}
		w, err := Ask(ctx, p)
		if err != nil && isStale(p) {
			continue
		}
		w.Socket = p
		out = append(out, Query{Socket: p, Watch: w, Err: err})
	}
	slices.SortFunc(out, func(a, b Query) int { return a.Watch.Started.Compare(b.Watch.Started) })
	return mergeProcesses(out)
}

// mergeProcesses joins the answers of one process watching one source
// (a project file's mirrors with different settings run as side-by-side
// groups, each with its own socket) into one watch, started at the first
// group's start, so a project shows as the one watch the user started.
func mergeProcesses(qs []Query) []Query {
	type key struct {
		pid    int
		source string
	}
	first := map[key]int{}
	out := qs[:0]
	for _, q := range qs {
		if q.Err != nil {
			out = append(out, q)
			continue
		}
		k := key{q.Watch.PID, q.Watch.Source}
		if i, ok := first[k]; ok {
			out[i].Watch.Mirrors = append(out[i].Watch.Mirrors, q.Watch.Mirrors...)
			continue
		}
		first[k] = len(out)
		out = append(out, q)
	}
	return out
}

// Ask asks one socket, within the deadline.
func Ask(ctx context.Context, path string) (Watch, error) {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Watch{}, err
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	c.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(c, request); err != nil {
		return Watch{}, err
	}
	var ans struct {
		Watch
		Error string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(c, maxAnswer)).Decode(&ans); err != nil {
		return Watch{}, fmt.Errorf("%s: unreadable answer: %w", path, err)
	}
	if ans.Error != "" {
		return Watch{}, fmt.Errorf("%s: %s", path, ans.Error)
	}
	return ans.Watch, nil
}
