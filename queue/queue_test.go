package queue

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func take(t *testing.T, q *Queue) Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b, err := q.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCoalesce(t *testing.T) {
	tests := []struct {
		name string
		add  [][]Path
		want []Path
	}{
		{"dedupe", [][]Path{{{Rel: "a"}, {Rel: "b"}}, {{Rel: "a"}}}, []Path{{Rel: "a"}, {Rel: "b"}}},
		{"subtree absorbs later children", [][]Path{{{Rel: "d", Subtree: true}}, {{Rel: "d/x"}, {Rel: "d/y/z", Subtree: true}}}, []Path{{Rel: "d", Subtree: true}}},
		{"subtree absorbs earlier children", [][]Path{{{Rel: "d/x"}, {Rel: "dx"}}, {{Rel: "d", Subtree: true}}}, []Path{{Rel: "d", Subtree: true}, {Rel: "dx"}}},
		{"path upgraded to subtree", [][]Path{{{Rel: "d"}}, {{Rel: "d", Subtree: true}}}, []Path{{Rel: "d", Subtree: true}}},
		{"subtree not downgraded", [][]Path{{{Rel: "d", Subtree: true}}, {{Rel: "d"}}}, []Path{{Rel: "d", Subtree: true}}},
		{"root absorbs all", [][]Path{{{Rel: "a"}, {Rel: "b/c"}}, {{Rel: "", Subtree: true}}, {{Rel: "e"}}}, []Path{{Rel: "", Subtree: true}}},
		{"root path alone is not a subtree", [][]Path{{{Rel: ""}, {Rel: "a"}}}, []Path{{Rel: ""}, {Rel: "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New(100)
			for _, a := range tt.add {
				q.Add(a, time.Now())
			}
			if got := take(t, q).Paths; !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			if q.Len() != 0 {
				t.Fatal("Take left paths pending")
			}
		})
	}
}

func TestCollapseBeyondMax(t *testing.T) {
	q := New(10)
	var paths []Path
	for i := range 11 {
		paths = append(paths, Path{Rel: fmt.Sprint("f", i)})
	}
	q.Add(paths, time.Now())
	if b := take(t, q); !b.All() {
		t.Fatalf("got %v, want one rescan of everything", b.Paths)
	}
}

func TestFirstIsOldest(t *testing.T) {
	q := New(10)
	t0 := time.Now()
	q.Add([]Path{{Rel: "b"}}, t0.Add(time.Second))
	q.Add([]Path{{Rel: "a"}}, t0)
	if b := take(t, q); !b.First.Equal(t0) {
		t.Fatalf("First = %v, want %v", b.First, t0)
	}
	// Requeued work keeps its age and merges with newer work.
	q.Requeue(Batch{Paths: []Path{{Rel: "x"}}, First: t0})
	q.Add([]Path{{Rel: "y"}}, t0.Add(time.Minute))
	b := take(t, q)
	if !b.First.Equal(t0) || len(b.Paths) != 2 {
		t.Fatalf("after requeue: %+v", b)
	}
}

func TestTakeWaitsAndCancels(t *testing.T) {
	q := New(10)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan Batch)
	go func() {
		b, _ := q.Take(ctx)
		got <- b
	}()
	q.Add([]Path{{Rel: "late"}}, time.Now())
	if b := <-got; len(b.Paths) != 1 || b.Paths[0].Rel != "late" {
		t.Fatalf("got %+v", b)
	}
	errc := make(chan error)
	go func() { _, err := q.Take(ctx); errc <- err }()
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("err = %v", err)
	}
}
