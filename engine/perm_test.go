package engine

import (
	"testing"

	"github.com/gosync/gosync/engine/fstree"
)

// A Windows source has no permission bits: files go as 0644 and
// directories as 0755, keeping the executable bits of the mirror's copy.
func TestPermWithoutSourceBits(t *testing.T) {
	p := &plan{}
	file := func(perm uint32, noPerm bool) *fstree.Entry {
		return &fstree.Entry{Kind: fstree.File, Perm: perm, NoPerm: noPerm}
	}
	tests := []struct {
		name string
		s, d *fstree.Entry
		want uint32
	}{
		{"unix source wins", file(0o600, false), file(0o755, false), 0o600},
		{"new file", file(0o644, true), nil, 0o644},
		{"mirror copy executable", file(0o644, true), file(0o750, false), 0o754},
		{"mirror copy plain", file(0o644, true), file(0o600, false), 0o644},
		{"mirror has a directory there", file(0o644, true), &fstree.Entry{Kind: fstree.Dir, Perm: 0o755}, 0o644},
		{"directory", &fstree.Entry{Kind: fstree.Dir, Perm: 0o755, NoPerm: true}, &fstree.Entry{Kind: fstree.Dir, Perm: 0o700}, 0o755},
	}
	for _, tt := range tests {
		if got := p.perm(tt.s, tt.d); got != tt.want {
			t.Errorf("%s: perm = %o, want %o", tt.name, got, tt.want)
		}
	}
}
