package perm

import (
	"errors"
	"testing"
)

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"", ",", "D", "F", "DF644", "FD644", "u", "u+rwz", "u+r-w", "8", "644x", "17777", "u644",
		"g=u+r", "g=ur", "g=rw u", "=,", "u+r,", "a+st,q"} {
		if _, err := Parse(s, 0o022); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) = %v, want a syntax error", s, err)
		}
	}
}

// TestApply pins rsync's tweak_mode where it differs from chmod(1) or
// where the case is subtle; the bulk is checked against the real tools
// in the _unix test.
func TestApply(t *testing.T) {
	for _, c := range []struct {
		spec string
		mode uint32
		dir  bool
		want uint32
	}{
		{"D2775,F664", 0o700, true, 0o2775},
		{"D2775,F664", 0o4755, false, 0o664},
		{"Du=rwx,Dg=rx,Fu=rw,Fg=r", 0o777, false, 0o647},
		{"Du=rwx,Dg=rx,Fu=rw,Fg=r", 0o700, true, 0o750},
		{"u+rwX,g+rX", 0o600, false, 0o640},
		{"u+rwX,g+rX", 0o100, false, 0o750},
		{"u+rwX,g+rX", 0o000, true, 0o750},
		// X looks at the mode before any item: u+x then g+X does not
		// make a non-executable file group-executable.
		{"u+x,g+X", 0o600, false, 0o700},
		{"a-w", 0o4777, false, 0o4555},
		{"o=", 0o1777, true, 0o1770},
		// rsync: +s without a class and o+s set setuid (chmod(1) differs).
		{"o+s", 0o644, false, 0o4644},
		{"g+s", 0o755, true, 0o2755},
		{"+t", 0o755, true, 0o1755},
		// u= keeps setuid in rsync unless s is named; a copy item clears it.
		{"u=rw", 0o4755, false, 0o4655},
		{"u=g", 0o4750, false, 0o0550},
		{"g-o", 0o775, false, 0o725},
		{"+x", 0o644, false, 0o755}, // umask 022 applies without a class
		{"+w", 0o444, false, 0o644},
		{"D755", 0o644, false, 0o644},
		{"F600,D700", 0o777, true, 0o700},
	} {
		ch, err := Parse(c.spec, 0o022)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.spec, err)
		}
		if got := ch.Apply(c.mode, c.dir); got != c.want {
			t.Errorf("%q on %04o (dir %v) = %04o, want %04o", c.spec, c.mode, c.dir, got, c.want)
		}
	}
}

func TestAddAppends(t *testing.T) {
	var c Chmod
	if !c.Empty() {
		t.Fatal("zero Chmod not empty")
	}
	if err := c.Add("F600", 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Add("Fg+r", 0); err != nil {
		t.Fatal(err)
	}
	if got := c.Apply(0o777, false); got != 0o640 {
		t.Fatalf("two values: %04o, want 0640", got)
	}
	if c.String() != "F600,Fg+r" {
		t.Fatalf("String = %q", c.String())
	}
}

func TestParseChown(t *testing.T) {
	for _, c := range []struct {
		in    string
		want  Chown
		valid bool
	}{
		{"www:www-data", Chown{"www", "www-data"}, true},
		{"deploy", Chown{"deploy", ""}, true},
		{"deploy:", Chown{"deploy", ""}, true},
		{":www-data", Chown{"", "www-data"}, true},
		{"33:33", Chown{"33", "33"}, true},
		{"", Chown{}, false},
		{":", Chown{}, false},
		{"a:b:c", Chown{}, false},
		{"a b:c", Chown{}, false},
		{"a,b", Chown{}, false},
		{"\x01", Chown{}, false},
	} {
		got, err := ParseChown(c.in)
		if (err == nil) != c.valid || c.valid && got != c.want {
			t.Errorf("ParseChown(%q) = %+v, %v", c.in, got, err)
		}
	}
	if id, ok := ID("33"); !ok || id != 33 {
		t.Errorf("ID(33) = %d, %v", id, ok)
	}
	for _, n := range []string{"www", "-1", "+3", "99999999999", ""} {
		if _, ok := ID(n); ok {
			t.Errorf("ID(%q) is numeric", n)
		}
	}
}

// FuzzChmod: no input panics; whatever parses gives modes within Bits,
// and applying it again to its own result is stable for items without
// copies and X (what makes a second run send nothing: the transform of
// a source mode is a fixed value, not a drift).
func FuzzChmod(f *testing.F) {
	for _, s := range []string{"D2775,F664", "Du=rwx,Dg=rx,Fu=rw,Fg=r", "u+rwX,g+rX", "a-w", "o=", "g=u", "+s", "Dg+s,ug+w,Fo-w,+X"} {
		f.Add(s, uint32(0o644), false)
	}
	f.Fuzz(func(t *testing.T, s string, mode uint32, dir bool) {
		c, err := Parse(s, 0o022)
		if err != nil {
			return
		}
		got := c.Apply(mode, dir)
		if got&^Bits != 0 {
			t.Fatalf("%q on %o gave %o", s, mode, got)
		}
		if c.Apply(mode&Bits, dir) != got {
			t.Fatalf("%q depends on bits beyond the mode", s)
		}
	})
}
