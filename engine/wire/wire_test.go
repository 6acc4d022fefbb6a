package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/ident"
)

func sampleMsgs() []Msg {
	h := fstree.Hash{1, 2, 3}
	return []Msg{
		&Hello{Version: Version, BuildID: "v1+abc", Compress: 3, Flags: FlagCreate | FlagRoot, Root: "~/www"},
		&Hello{Version: Version, BuildID: "v1+abc", Flags: FlagGreeting | FlagForced | FlagRestricted | FlagAllowRun},
		&Hello{Version: Version, Flags: FlagLock | FlagCreated | FlagRootMeta, Root: "/srv/www", Groups: []uint32{1000, 33}, RootMeta: Meta{Perm: 0o2775, Mtime: fstree.Time{Sec: 1, Nsec: 2}, Owner: true, Uid: 33, Gid: 33}, Session: "4f1c", Holder: "session=9a pid=12",
			Place: ident.Place{Boot: "0b5e7c1e-b7b3-4c1e-a0f9-2f0e5f0b8a11", Chain: []ident.FileID{{Dev: 2049, Ino: 1 << 40}, {Dev: 2049, Ino: 2}}}},
		&Hello{Version: 2, BuildID: "old", Err: "refused"},
		&Scan{ID: 1, Path: "a/b", Hash: true},
		&Entries{ID: 1, Entries: []fstree.Entry{
			{Path: "f", Kind: fstree.File, Perm: 0o644, Size: 1 << 40, Mtime: fstree.TimeFromNs(-5), Uid: 1, Gid: 2, HasHash: true, Hash: h},
			{Path: "d", Kind: fstree.Dir, Perm: 0o2755, Mtime: fstree.TimeFromNs(1700000000123456789)},
			{Path: "l\xff\n", Kind: fstree.Symlink, Perm: 0o777, Target: "../x"},
			{Path: "fifo", Kind: fstree.Other},
		}},
		&ScanEnd{ID: 1, Err: "boom"},
		&SigReq{ID: 2, Path: "f", Size: 99},
		&SigReq{ID: 2, Path: "f", Size: 1 << 30, BlockSize: 1024, Off: 32 << 10, Len: 96 << 10},
		&Sig{ID: 2, Sig: []byte{9, 8, 7}},
		&Mkdir{ID: 3, Path: "d", Meta: Meta{Perm: 0o755, Mtime: fstree.TimeFromNs(42)}},
		&Symlink{ID: 4, Path: "l", Target: "/abs", Meta: Meta{Owner: true, Uid: 7, Gid: 8}},
		&SetMeta{ID: 5, Path: "", Kind: fstree.Dir, Meta: Meta{Perm: 0o700}},
		&Delete{ID: 6, Path: "x", Kind: fstree.File},
		&FileBegin{ID: 7, Path: "f", Size: 10, Meta: Meta{Perm: 0o600}, BlockSize: 700},
		&FileData{Data: []byte("hello")},
		&FileCopy{Block: 12, Count: 3},
		&FileCopyAt{Off: 5 << 30, Len: 3000},
		&FileHole{Len: 20 << 30},
		&FileEnd{Hash: h},
		&FileAbort{},
		&Barrier{ID: 8},
		&Done{ID: 8},
		&Error{ID: 7, Path: "f", Code: CodeNoSpace, Msg: "disk full"},
		&Run{ID: 9, Cmd: "systemctl reload php-fpm", Stdin: []byte("a\nb\n")},
		&RunDone{ID: 9, Code: -1, Output: "killed"},
		&Rename{ID: 10, From: "a/old.txt", To: "b/new.txt", Kind: fstree.File},
		&Heartbeat{},
		&Stop{Code: StopTakenOver, Msg: "another session took over"},
		&Names{ID: 11, Users: []string{"deploy", "www-data"}, Groups: []string{"www-data"}},
		&Names{ID: 12, Groups: []string{"staff"}},
		&Ids{ID: 11, Users: []NameID{{ID: 1001, Known: true}, {}}, Groups: []NameID{{ID: 33, Known: true}}, Self: 1001},
		&Ids{ID: 12},
		&Batch{ID: 11, Flags: BatchDelay, BackupDir: ".backups", Stamp: "20261201-071500.123456789"},
		&Batch{ID: 12, Flags: BatchDelay},
		&Commit{ID: 13},
		&Rollback{ID: 14, Flags: RollbackDryRun, Dir: "/var/backups/www"},
		&Rollback{ID: 14, Flags: RollbackEnd, Stamp: "20261201-071500.123456789", Err: "stopped",
			Items: []RollItem{{Action: RollRestored, Kind: fstree.File, Path: "a/b"}, {Action: RollRemoved, Kind: fstree.Dir, Path: "new"}}},
	}
}

// TestNamesBounded: a names message or its answer may not carry more
// than MaxNames entries, names longer than MaxName or empty names.
func TestNamesBounded(t *testing.T) {
	many := make([]string, MaxNames/2+1)
	for i := range many {
		many[i] = "u"
	}
	for _, m := range []Msg{
		&Names{ID: 1, Users: many, Groups: many},
		&Names{ID: 1, Users: []string{strings.Repeat("x", MaxName+1)}},
		&Names{ID: 1, Groups: []string{""}},
		&Ids{ID: 1, Users: make([]NameID, MaxNames+1)},
	} {
		if _, err := Decode(m.Type(), encode(m)); err == nil {
			t.Errorf("%T decoded beyond its bounds", m)
		}
	}
	ok := &Names{ID: 1, Users: many[:MaxNames/2], Groups: many[:MaxNames/2]}
	if _, err := Decode(TNames, encode(ok)); err != nil {
		t.Errorf("MaxNames names: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, level := range []int{0, 1, 3} {
		var buf bytes.Buffer
		w := NewConn(nil, &buf)
		if err := w.StartCompression(level); err != nil {
			t.Fatal(err)
		}
		for _, m := range sampleMsgs() {
			if err := w.WriteMsg(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		r := NewConn(&buf, io.Discard)
		if err := r.StartCompression(level); err != nil {
			t.Fatal(err)
		}
		for _, want := range sampleMsgs() {
			got, err := r.ReadMsg()
			if err != nil {
				t.Fatalf("level %d: read %T: %v", level, want, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("level %d: got %#v, want %#v", level, got, want)
			}
		}
		if _, err := r.ReadMsg(); !errors.Is(err, io.EOF) {
			t.Fatalf("after last message: %v, want EOF", err)
		}
	}
}

// A flushed message must reach the reader while the writer keeps the
// stream open: batches must never wait for a compression window.
func TestFlushDeliversWithoutClose(t *testing.T) {
	for _, level := range []int{0, 1} {
		pr, pw := io.Pipe()
		w := NewConn(nil, pw)
		r := NewConn(pr, io.Discard)
		w.StartCompression(level)
		r.StartCompression(level)
		got := make(chan Msg)
		go func() {
			m, err := r.ReadMsg()
			if err != nil {
				t.Error(err)
			}
			got <- m
		}()
		if err := w.WriteMsg(&Barrier{ID: 5}); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if m := <-got; !reflect.DeepEqual(m, &Barrier{ID: 5}) {
			t.Fatalf("got %#v", m)
		}
		pw.Close()
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name    string
		t       Type
		payload []byte
		want    string
	}{
		{"unknown type", 200, nil, "unknown message type"},
		{"bad magic", THello, []byte("NOTGOSYNC"), "bad magic"},
		{"dotdot path", TMkdir, encode(&Mkdir{ID: 1, Path: "../x"}), "contains .."},
		{"absolute path", TDelete, encode(&Delete{ID: 1, Path: "/etc", Kind: fstree.File}), "leading/trailing slash"},
		{"NUL in path", TScan, encode(&Scan{ID: 1, Path: "a\x00b"}), "NUL"},
		{"bad kind", TDelete, []byte{1, 1, 'x', 9}, "bad entry kind"},
		{"mode too big", TMkdir, encode(&Mkdir{ID: 1, Path: "d", Meta: Meta{Perm: 0o17777}}), "out of range"},
		{"trailing bytes", TBarrier, []byte{1, 2}, "trailing"},
		{"truncated", TFileBegin, []byte{1, 5, 'a'}, "truncated"},
		{"too many entries", TEntries, []byte{1, 0xff, 0xff, 0xff, 0x0f}, "exceed limit"},
		{"heartbeat with payload", THeartbeat, []byte{0}, "trailing"},
		{"unknown stop code", TStop, encode(&Stop{Code: 9}), "stop code 9"},
		{"chain too long", THello, encode(&Hello{Version: Version, Place: ident.Place{Chain: make([]ident.FileID, ident.MaxChain+1)}}), "exceeds limit"},
		{"boot id too long", THello, encode(&Hello{Version: Version, Place: ident.Place{Boot: strings.Repeat("b", ident.MaxBoot+1)}}), "exceeds limit"},
		{"holder too long", THello, encode(&Hello{Version: Version, Holder: strings.Repeat("h", MaxHolder+1)}), "exceeds limit"},
		{"v3 hello cut short", THello, encode(&Hello{Version: Version})[:len(Magic)+6], "truncated"},
		{"negative size", TSigReq, encode(&SigReq{ID: 1, Path: "f", Size: -3}), "negative size"},
		{"empty hole", TFileHole, encode(&FileHole{}), "empty hole"},
		{"empty copy", TFileCopyAt, encode(&FileCopyAt{Off: 7}), "empty copy"},
		{"negative copy offset", TFileCopyAt, encode(&FileCopyAt{Off: -1, Len: 1}), "negative size"},
		{"range offset without length", TSigReq, encode(&SigReq{ID: 1, Path: "f", Size: 9, Off: 3}), "without a length"},
		{"negative range", TSigReq, encode(&SigReq{ID: 1, Path: "f", Size: 9, Len: -3}), "negative size"},
		{"huge block size", TSigReq, encode(&SigReq{ID: 1, Path: "f", Size: 9, BlockSize: 1<<30 + 1}), "out of range"},
		{"negative hole", TFileHole, encode(&FileHole{Len: -4096}), "negative size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.t, tt.payload)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func encode(m Msg) []byte {
	e := &enc{}
	m.appendPayload(e)
	return e.b
}

func TestFrameLimits(t *testing.T) {
	// A header announcing more than MaxFrame is refused before allocating.
	r := NewConn(bytes.NewReader([]byte{byte(TFileData), 0xff, 0xff, 0xff, 0xff, 0x7f}), io.Discard)
	if _, err := r.ReadMsg(); !errors.Is(err, ErrFrame) {
		t.Fatalf("err = %v, want ErrFrame", err)
	}
	r = NewConn(bytes.NewReader([]byte{byte(TBarrier), 5, 1}), io.Discard)
	if _, err := r.ReadMsg(); !errors.Is(err, ErrFrame) || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("err = %v, want truncated frame", err)
	}
}

func TestValidPath(t *testing.T) {
	good := []string{"", "a", "a/b", ".hidden", "..x", "x..", "a/.b/c", "\xff\xfe", "sp ace"}
	bad := []string{"/a", "a/", "a//b", ".", "..", "a/../b", "./a", "a/.", "a\x00"}
	for _, p := range good {
		if err := ValidPath(p); err != nil {
			t.Errorf("ValidPath(%q) = %v", p, err)
		}
	}
	for _, p := range bad {
		if err := ValidPath(p); !errors.Is(err, ErrBadPath) {
			t.Errorf("ValidPath(%q) = %v, want ErrBadPath", p, err)
		}
	}
}

// A Hello of a newer protocol may carry fields this one does not know:
// it still decodes, so the version mismatch can be reported (and the
// agent re-deployed) instead of a protocol error.
func TestNewerHelloDecodes(t *testing.T) {
	b := encode(&Hello{Version: Version + 1, BuildID: "next"})
	b = append(b, 1, 2, 3, 4, 5)
	m, err := Decode(THello, b)
	if err != nil {
		t.Fatal(err)
	}
	if h := m.(*Hello); h.Version != Version+1 || h.BuildID != "next" {
		t.Fatalf("got %+v", h)
	}
}

func TestBatchAndRollbackBounds(t *testing.T) {
	bad := []Msg{
		&Batch{ID: 1, Flags: 1 << 5},
		&Batch{ID: 1, BackupDir: "b"},
		&Batch{ID: 1, BackupDir: "b", Stamp: "../../etc"},
		&Batch{ID: 1, BackupDir: "b", Stamp: "20261201-071500.12345678x"},
		&Rollback{ID: 1, Flags: 1 << 7},
		&Rollback{ID: 1, Items: []RollItem{{Action: 9, Kind: fstree.File, Path: "a"}}},
		&Rollback{ID: 1, Items: []RollItem{{Action: RollRestored, Kind: fstree.File, Path: "../a"}}},
	}
	for _, m := range bad {
		if _, err := Decode(m.Type(), encode(m)); err == nil {
			t.Errorf("%#v decoded without error", m)
		}
	}
	// A count beyond MaxEntries is refused before anything is allocated.
	e := &enc{}
	e.uvarint(1)
	e.uvarint(RollbackEnd)
	e.str("")
	e.str("")
	e.uvarint(MaxEntries + 1)
	if _, err := Decode(TRollback, e.b); err == nil {
		t.Error("rollback answer with too many items decoded")
	}
}
