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
