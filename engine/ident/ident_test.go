package ident

import "testing"

func TestRelate(t *testing.T) {
	a, b, c, d := FileID{1, 10}, FileID{1, 20}, FileID{1, 30}, FileID{2, 10}
	here := func(chain ...FileID) Place { return Place{Boot: "boot-1", Chain: chain} }
	tests := []struct {
		name string
		x, y Place
		want Relation
	}{
		{"same directory", here(c, b, a), here(c, b, a), Same},
		{"same directory, other path", here(c, b, a), here(c, d, a), Same},
		{"inside", here(c, b, a), here(b, a), Inside},
		{"deep inside", here(FileID{1, 99}, c, b, a), here(b, a), Inside},
		{"contains", here(b, a), here(c, b, a), Contains},
		{"siblings", here(c, a), here(b, a), Apart},
		{"same inode, other device", here(d), here(a), Apart},
		{"other machine", here(c, b, a), Place{Boot: "boot-2", Chain: []FileID{b, a}}, Apart},
		{"unknown boot", Place{Chain: []FileID{b, a}}, Place{Chain: []FileID{b, a}}, Apart},
		{"unknown place", here(b, a), Place{}, Apart},
	}
	for _, tt := range tests {
		if got := Relate(tt.x, tt.y); got != tt.want {
			t.Errorf("%s: Relate = %d, want %d", tt.name, got, tt.want)
		}
	}
}
