package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/gosync/gosync/engine/fstree"
	"github.com/gosync/gosync/engine/ident"
)

// Version is the protocol version. Client and agent must agree exactly;
// a client that finds another version re-deploys its own agent.
const Version = 5

// Magic opens every Hello so that a shell banner or a wrong program on the
// other end is recognised at once instead of being parsed as frames.
const Magic = "GOSYNC\x00\x01"

// Type is a message type, the first byte of a frame.
type Type uint8

const (
	THello      Type = 1  // both ways, first frame
	TScan       Type = 2  // client: list a subtree
	TEntries    Type = 3  // agent: a batch of listed entries
	TScanEnd    Type = 4  // agent: listing complete
	TSigReq     Type = 5  // client: block signature of a file
	TSig        Type = 6  // agent: the signature
	TMkdir      Type = 7  // client: create a directory (parents must exist)
	TSymlink    Type = 8  // client: create or replace a symlink
	TSetMeta    Type = 9  // client: set mode, owner, mtime of an existing entry
	TDelete     Type = 10 // client: remove an entry (a directory with all below it)
	TFileBegin  Type = 11 // client: start writing a file
	TFileData   Type = 12 // client: literal bytes of the open file
	TFileCopy   Type = 13 // client: blocks of the basis for the open file
	TFileEnd    Type = 14 // client: the file is complete; its hash
	TFileAbort  Type = 15 // client: drop the open file (its source changed)
	TBarrier    Type = 16 // client: acknowledge when everything before is applied
	TDone       Type = 17 // agent: barrier acknowledgement
	TError      Type = 18 // agent: an operation failed
	TRun        Type = 19 // client: run a shell command in the mirror directory (--on-sync)
	TRunDone    Type = 20 // agent: the command ended
	TRename     Type = 21 // client: move an entry (a rename in the source)
	THeartbeat  Type = 22 // agent: still working; sent only while busy (protocol 2)
	TStop       Type = 23 // agent: it applies nothing more and exits (protocol 3)
	TNames      Type = 24 // client: user and group names to resolve on the agent's host (protocol 4)
	TIds        Type = 25 // agent: the ids of those names (protocol 4)
	TBatch      Type = 26 // client: the operations up to the next Commit are staged and/or backed up (protocol 4)
	TCommit     Type = 27 // client: rename the batch's staged files into place; the batch ends (protocol 4)
	TRollback   Type = 28 // client: put the latest backup back; agent: what it did (the same message type; protocol 4)
	TFileHole   Type = 29 // client: a run of zero bytes of the open file, left a hole (protocol 4)
	TFileCopyAt Type = 30 // client: a byte range of the basis for the open file (protocol 5)
)

// Limits on what a peer may send.
const (
	MaxFrame    = 32 << 20 // a whole frame payload
	MaxData     = 1 << 20  // literal bytes in one TFileData
	MaxEntries  = 4096     // entries in one TEntries
	MaxGroups   = 65536    // groups in a Hello (Linux's NGROUPS_MAX)
	MaxErrorMsg = 4096
	maxBuildID  = 256
	maxSession  = 64
	MaxHolder   = 512  // Hello.Holder: a line of the session lock
	MaxNames    = 4096 // names in one TNames (users and groups together)
	MaxName     = 256  // bytes of one user or group name
	MaxStamp    = 64   // Batch.Stamp, Rollback.Stamp: one name
)

// Msg is any protocol message.
type Msg interface {
	Type() Type
	appendPayload(e *enc)
}

// Hello opens the conversation in each direction: the client sends one,
// the agent answers with one. An agent whose root the server side fixed
// (a forced command, --restrict) first sends a greeting, a Hello with
// FlagGreeting, before it reads anything: a client that ran a probe
// script instead of the agent recognises it by the Magic at the start
// of the output (LooksLikeHello).
type Hello struct {
	Version  uint64
	BuildID  string
	Compress int // client: zstd level for both directions, 0 for none
	Flags    uint64
	Err      string // agent: why it cannot serve (the root is unusable)
	// Root is, from the client, the mirror directory as the user wrote it
	// in DEST (protocol 3). An agent started with its root on the
	// command line ignores it; one whose root the server fixed checks
	// that it names that root.
	Root string

	// Protocol 3. Place is where the side's directory is: the client's
	// source, the agent's mirror root (with FlagMissing, its nearest
	// existing parent). An agent on the client's machine does not create
	// its root inside the client's source; the client refuses a mirror
	// inside its source or containing it.
	Place ident.Place
	// Session names the client's process (random), so a lock taken over
	// from an earlier connection of the same process is told apart.
	Session string
	// Holder is the session lock's line of the live session the agent
	// took the mirror over from (FlagLock), "" if none was running.
	Holder string
	// Groups (agent, protocol 3) are the groups an agent that is not root
	// gives files when the source's group is one of them (Meta.Owner):
	// its user's groups, as rsync -a keeps a group its user belongs to.
	Groups []uint32
	// RootMeta (agent, protocol 3, with FlagRootMeta) is the mirror
	// directory's own metadata as the session found it.
	RootMeta Meta
}

// Hello flags.
const (
	FlagCreate  = 1 << 0 // client: create the root (and parents) if missing
	FlagRoot    = 1 << 1 // agent: runs as root and sets owners
	FlagMissing = 1 << 2 // agent: the root does not exist (dry run); it lists nothing
	// Protocol 3.
	FlagGreeting   = 1 << 3 // agent: sent before the client's Hello; the answer follows it
	FlagForced     = 1 << 4 // agent: started as an SSH forced command, whatever the client asked to run
	FlagRestricted = 1 << 5 // agent: --restrict: no setuid, setgid or sticky bits, no commands unless FlagAllowRun
	FlagAllowRun   = 1 << 6 // agent: runs --on-sync commands although restricted
	// FlagLock (client): it will write, so the agent takes the mirror's
	// session lock, fencing any older session on the same root.
	FlagLock = 1 << 7
	// FlagCreated (agent): it created the mirror directory for this
	// session, so the directory takes the source root's metadata; one that
	// existed keeps its own mode, owner and group and takes only the mtime.
	FlagCreated = 1 << 8
	// FlagRootMeta (agent): RootMeta is set.
	FlagRootMeta = 1 << 9
	// FlagSparse (client, protocol 4, --sparse): the agent leaves runs of
	// zeros in the files it writes as holes (rsync's -S), besides the
	// FileHole runs it always leaves unwritten.
	FlagSparse = 1 << 13
)

// Meta is what SetMeta and creations apply.
type Meta struct {
	Perm  uint32
	Mtime fstree.Time
	Owner bool // set Uid and Gid (an agent run as root), or Gid alone when it is one of Hello.Groups
	Uid   uint32
	Gid   uint32
}

type Scan struct {
	ID   uint64
	Path string
	Hash bool
}

type Entries struct {
	ID      uint64
	Entries []fstree.Entry
}

type ScanEnd struct {
	ID  uint64
	Err string
}

type SigReq struct {
	ID   uint64
	Path string
	Size int64 // size the client expects; the agent refuses a mismatch
	// BlockSize is the block length asked for; 0 is delta.BlockSize of
	// Size (protocol 5).
	BlockSize int
	// Off and Len, when Len > 0, ask for the signature of that byte
	// range of the file alone (a second, finer round; protocol 5).
	Off, Len int64
}

type Sig struct {
	ID  uint64
	Err string
	Sig []byte // delta.Signature binary encoding
}

type Mkdir struct {
	ID   uint64
	Path string
	Meta Meta
}

type Symlink struct {
	ID     uint64
	Path   string
	Target string
	Meta   Meta
}

type SetMeta struct {
	ID   uint64
	Path string
	Kind fstree.Kind
	Meta Meta
}

type Delete struct {
	ID   uint64
	Path string
	Kind fstree.Kind // the kind the client saw; anything else is left alone
}

type FileBegin struct {
	ID        uint64
	Path      string
	Size      int64
	Meta      Meta
	BlockSize int // >0: ops copy blocks of the existing file at Path
}

type FileData struct{ Data []byte }

type FileCopy struct {
	Block uint64
	Count uint32
}

// FileCopyAt is Len bytes of the basis from Off: what a finer second
// signature round matched (protocol 5).
type FileCopyAt struct {
	Off int64
	Len uint32
}

// FileHole is Len zero bytes of the open file that the client found in
// a hole of its source (or a run of zeros, with --sparse): the agent
// leaves them unwritten. The FileEnd hash of a file sent with holes is
// a FileHash.
type FileHole struct{ Len int64 }

type FileEnd struct{ Hash fstree.Hash }

type FileAbort struct{}

type Barrier struct{ ID uint64 }

type Done struct{ ID uint64 }

// Error codes, so the client can tell a full disk from a bad request.
const (
	CodeOther      = 1
	CodeNotExist   = 2
	CodePermission = 3
	CodeNoSpace    = 4
	CodeInvalid    = 5
	CodeMismatch   = 6 // the entry on the mirror is not what the client saw
	CodeVerify     = 7 // written content did not match the hash
	CodeAborted    = 8
)

// Batch opens a batch (protocol 4): the operations after it, up to the
// next Commit, are applied as Flags say. With BatchDelay the agent keeps
// each received file (and symlink) as its temporary instead of renaming
// it into place, and renames them all at the Commit. With BackupDir set,
// every file or symlink the batch replaces and every entry it deletes is
// moved into BackupDir/Stamp/<path> first, and what it creates is
// recorded there, so a Rollback can undo the batch. BackupDir is
// relative to the mirror root unless absolute. A Batch the agent cannot
// honour (the backup directory is unusable) is reported as its error,
// and every operation of the batch is then refused, so nothing is
// replaced without its backup.
type Batch struct {
	ID        uint64
	Flags     uint64
	BackupDir string
	Stamp     string // the batch's backup directory name (see ValidStamp)
}

// Batch flags.
const (
	BatchDelay = 1 << 0 // stage files until the Commit (--delay-updates)
)

// Commit ends the batch: the staged files are renamed into place, one
// after the other without anything in between. A staged file that cannot
// be renamed (its directory was replaced meanwhile) is reported as an
// Error with the Commit's ID and the file's path; there may be one such
// Error per staged file.
type Commit struct{ ID uint64 }

// Rollback, from the client, asks the agent to put the latest backup in
// Dir back (protocol 4). The agent answers with Rollback messages of the
// same ID listing what it did (Items, at most MaxEntries each), the last
// with RollbackEnd, Stamp naming the backup, and Err why it stopped, if
// it did.
type Rollback struct {
	ID    uint64
	Flags uint64
	Dir   string // client
	Stamp string // agent
	Items []RollItem
	Err   string
}

// Rollback flags.
const (
	RollbackDryRun = 1 << 0 // client: say what would be done, do nothing
	RollbackEnd    = 1 << 1 // agent: the last answer
	// RollbackAlready (agent, with RollbackEnd): the newest backup,
	// Stamp, was rolled back before; nothing was done.
	RollbackAlready = 1 << 2
)

// RollItem is one path a rollback changed.
type RollItem struct {
	Action uint8 // RollRestored, RollRemoved
	Kind   fstree.Kind
	Path   string
}

// RollItem actions.
const (
	RollRestored = 1 // the backed-up entry is back at Path
	RollRemoved  = 2 // the batch had created Path: it was moved out of the way
)

// Rename moves the entry at From, of kind Kind, to To (replacing a
// non-directory there); the parent of To must exist.
type Rename struct {
	ID       uint64
	From, To string
	Kind     fstree.Kind
}

// Run asks the agent to run Cmd with sh -c in the mirror directory, Stdin
// on its standard input.
type Run struct {
	ID    uint64
	Cmd   string
	Stdin []byte
}

// RunDone reports how a Run ended: its exit code (-1 if it could not
// start or was killed) and the tail of its combined output.
type RunDone struct {
	ID     uint64
	Code   int
	Output string
}

// Heartbeat tells the client that a busy agent is alive: it is working on
// a message or still receiving one. The client's idle deadline only runs
// while it waits for the agent, so an idle session sends none.
type Heartbeat struct{}

// Stop is the agent's last message: it applies nothing more and exits,
// because its root path no longer names the directory it serves or its
// session lock vanished (StopReconnect: the client connects again), or
// a newer session took the mirror's lock over (StopTakenOver).
type Stop struct {
	Code int
	Msg  string
}

// Stop codes.
const (
	StopReconnect = 1
	StopTakenOver = 2
)

// Names asks the agent for the ids its host gives user and group names
// (rsync's name mapping, --chown). The answer is an Ids with the same ID.
type Names struct {
	ID     uint64
	Users  []string
	Groups []string
}

// Ids answers Names: for each name asked, in order, the id and whether
// the host knows the name, and the agent's own user.
type Ids struct {
	ID      uint64
	Users   []NameID
	Groups  []NameID
	Self    uint32 // the agent's effective uid
	SelfGid uint32 // and gid
}

// NameID is one resolved name.
type NameID struct {
	ID    uint32
	Known bool
}

type Error struct {
	ID   uint64
	Path string
	Code int
	Msg  string
}

func (*Hello) Type() Type      { return THello }
func (*Scan) Type() Type       { return TScan }
func (*Entries) Type() Type    { return TEntries }
func (*ScanEnd) Type() Type    { return TScanEnd }
func (*SigReq) Type() Type     { return TSigReq }
func (*Sig) Type() Type        { return TSig }
func (*Mkdir) Type() Type      { return TMkdir }
func (*Symlink) Type() Type    { return TSymlink }
func (*SetMeta) Type() Type    { return TSetMeta }
func (*Delete) Type() Type     { return TDelete }
func (*FileBegin) Type() Type  { return TFileBegin }
func (*FileData) Type() Type   { return TFileData }
func (*FileCopy) Type() Type   { return TFileCopy }
func (*FileCopyAt) Type() Type { return TFileCopyAt }
func (*FileEnd) Type() Type    { return TFileEnd }
func (*FileHole) Type() Type   { return TFileHole }
func (*FileAbort) Type() Type  { return TFileAbort }
func (*Barrier) Type() Type    { return TBarrier }
func (*Done) Type() Type       { return TDone }
func (*Error) Type() Type      { return TError }
func (*Run) Type() Type        { return TRun }
func (*Rename) Type() Type     { return TRename }
func (*RunDone) Type() Type    { return TRunDone }
func (*Heartbeat) Type() Type  { return THeartbeat }
func (*Stop) Type() Type       { return TStop }
func (*Names) Type() Type      { return TNames }
func (*Ids) Type() Type        { return TIds }
func (*Batch) Type() Type      { return TBatch }
func (*Commit) Type() Type     { return TCommit }
func (*Rollback) Type() Type   { return TRollback }

func (m *Batch) appendPayload(e *enc) {
	e.uvarint(m.ID)
	e.uvarint(m.Flags)
	e.str(m.BackupDir)
	e.str(m.Stamp)
}
func (m *Commit) appendPayload(e *enc) { e.uvarint(m.ID) }
func (m *Rollback) appendPayload(e *enc) {
	e.uvarint(m.ID)
	e.uvarint(m.Flags)
	e.str(m.Dir)
	e.str(m.Stamp)
	e.uvarint(uint64(len(m.Items)))
	for _, it := range m.Items {
		e.uvarint(uint64(it.Action))
		e.uvarint(uint64(it.Kind))
		e.str(it.Path)
	}
	e.str(m.Err)
}

func (m *Hello) appendPayload(e *enc) {
	e.raw([]byte(Magic))
	e.uvarint(m.Version)
	e.str(m.BuildID)
	e.uvarint(uint64(m.Compress))
	e.uvarint(m.Flags)
	e.str(m.Err)
	if m.Version < 3 {
		return
	}
	e.str(m.Root)
	e.str(m.Place.Boot)
	e.uvarint(uint64(len(m.Place.Chain)))
	for _, id := range m.Place.Chain {
		e.uvarint(id.Dev)
		e.uvarint(id.Ino)
	}
	e.str(m.Session)
	e.str(m.Holder)
	e.uvarint(uint64(len(m.Groups)))
	for _, g := range m.Groups {
		e.uvarint(uint64(g))
	}
	if m.Flags&FlagRootMeta != 0 {
		m.RootMeta.append(e)
	}
}

func (m *Meta) append(e *enc) {
	e.uvarint(uint64(m.Perm))
	e.mtime(m.Mtime)
	e.bool(m.Owner)
	if m.Owner {
		e.uvarint(uint64(m.Uid))
		e.uvarint(uint64(m.Gid))
	}
}

func (m *Scan) appendPayload(e *enc) { e.uvarint(m.ID); e.str(m.Path); e.bool(m.Hash) }

func (m *Entries) appendPayload(e *enc) {
	e.uvarint(m.ID)
	e.uvarint(uint64(len(m.Entries)))
	for i := range m.Entries {
		appendEntry(e, &m.Entries[i])
	}
}

func appendEntry(e *enc, x *fstree.Entry) {
	e.str(x.Path)
	e.uvarint(uint64(x.Kind))
	e.uvarint(uint64(x.Perm))
	e.mtime(x.Mtime)
	e.uvarint(uint64(x.Uid))
	e.uvarint(uint64(x.Gid))
	switch x.Kind {
	case fstree.File:
		e.varint(x.Size)
		e.bool(x.HasHash)
		if x.HasHash {
			e.raw(x.Hash[:])
		}
	case fstree.Symlink:
		e.str(x.Target)
	}
}

func (m *ScanEnd) appendPayload(e *enc) { e.uvarint(m.ID); e.str(m.Err) }
func (m *SigReq) appendPayload(e *enc) {
	e.uvarint(m.ID)
	e.str(m.Path)
	e.varint(m.Size)
	e.uvarint(uint64(m.BlockSize))
	e.varint(m.Off)
	e.varint(m.Len)
}
func (m *Sig) appendPayload(e *enc)   { e.uvarint(m.ID); e.str(m.Err); e.bytes(m.Sig) }
func (m *Mkdir) appendPayload(e *enc) { e.uvarint(m.ID); e.str(m.Path); m.Meta.append(e) }
func (m *Symlink) appendPayload(e *enc) {
	e.uvarint(m.ID)
	e.str(m.Path)
	e.str(m.Target)
	m.Meta.append(e)
}
func (m *SetMeta) appendPayload(e *enc) {
	e.uvarint(m.ID)
	e.str(m.Path)
	e.uvarint(uint64(m.Kind))
	m.Meta.append(e)
}
func (m *Delete) appendPayload(e *enc) { e.uvarint(m.ID); e.str(m.Path); e.uvarint(uint64(m.Kind)) }
func (m *FileBegin) appendPayload(e *enc) {
	e.uvarint(m.ID)
	e.str(m.Path)
	e.varint(m.Size)
	m.Meta.append(e)
	e.uvarint(uint64(m.BlockSize))
}
func (m *FileData) appendPayload(e *enc)   { e.raw(m.Data) }
func (m *FileCopy) appendPayload(e *enc)   { e.uvarint(m.Block); e.uvarint(uint64(m.Count)) }
func (m *FileCopyAt) appendPayload(e *enc) { e.varint(m.Off); e.uvarint(uint64(m.Len)) }
func (m *FileEnd) appendPayload(e *enc)    { e.raw(m.Hash[:]) }
func (m *FileHole) appendPayload(e *enc)   { e.varint(m.Len) }
func (m *FileAbort) appendPayload(e *enc)  {}
func (m *Barrier) appendPayload(e *enc)    { e.uvarint(m.ID) }
func (m *Done) appendPayload(e *enc)       { e.uvarint(m.ID) }
func (m *Error) appendPayload(e *enc) {
	e.uvarint(m.ID)
	e.str(m.Path)
	e.uvarint(uint64(m.Code))
	e.str(m.Msg)
}

func (m *Rename) appendPayload(e *enc) {
	e.uvarint(m.ID)
	e.str(m.From)
	e.str(m.To)
	e.uvarint(uint64(m.Kind))
}
func (m *Heartbeat) appendPayload(e *enc) {}
func (m *Stop) appendPayload(e *enc)      { e.uvarint(uint64(m.Code)); e.str(m.Msg) }
func (m *Run) appendPayload(e *enc)       { e.uvarint(m.ID); e.str(m.Cmd); e.bytes(m.Stdin) }
func (m *RunDone) appendPayload(e *enc)   { e.uvarint(m.ID); e.varint(int64(m.Code)); e.str(m.Output) }

func (m *Names) appendPayload(e *enc) {
	e.uvarint(m.ID)
	for _, l := range [][]string{m.Users, m.Groups} {
		e.uvarint(uint64(len(l)))
		for _, n := range l {
			e.str(n)
		}
	}
}

func (m *Ids) appendPayload(e *enc) {
	e.uvarint(m.ID)
	for _, l := range [][]NameID{m.Users, m.Groups} {
		e.uvarint(uint64(len(l)))
		for _, x := range l {
			e.bool(x.Known)
			if x.Known {
				e.uvarint(uint64(x.ID))
			}
		}
	}
	e.uvarint(uint64(m.Self))
	e.uvarint(uint64(m.SelfGid))
}

// LooksLikeHello reports whether b, the first bytes read from a peer,
// start a Hello frame: its type, a length, and Magic. Fewer than
// HelloPrefix bytes never do.
func LooksLikeHello(b []byte) bool {
	if len(b) < 2 || Type(b[0]) != THello {
		return false
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n < uint64(len(Magic)) || n > MaxFrame {
		return false
	}
	rest := b[1+k:]
	return len(rest) >= len(Magic) && string(rest[:len(Magic)]) == Magic
}

// HelloPrefix is how many bytes LooksLikeHello needs at most to decide:
// the type, the longest length a Hello can have, and Magic.
const HelloPrefix = 1 + 4 + len(Magic)

// Decode parses one frame payload of type t. The returned message may alias
// payload (FileData.Data does); copy what must outlive the next read.
func Decode(t Type, payload []byte) (Msg, error) {
	d := &dec{b: payload}
	var m Msg
	switch t {
	case THello:
		if string(d.raw(len(Magic))) != Magic {
			return nil, fmt.Errorf("not a gosync agent (bad magic)")
		}
		x := &Hello{}
		x.Version = d.uvarint()
		x.BuildID = d.str(maxBuildID)
		c := d.uvarint()
		if c > 22 {
			d.fail(fmt.Errorf("compression level %d out of range", c))
		}
		x.Compress = int(c)
		x.Flags = d.uvarint()
		x.Err = d.str(MaxErrorMsg)
		switch {
		case x.Version < 3:
		case x.Version > Version:
			// A newer peer may say more; the version mismatch is what
			// matters, and it is reported by the caller.
			d.b = nil
		default:
			x.Root = d.str(MaxPath)
			x.Place = d.place()
			x.Session = d.str(maxSession)
			x.Holder = d.str(MaxHolder)
			if n := d.uvarint(); n > MaxGroups {
				d.fail(fmt.Errorf("%w: %d groups, more than %d", ErrFrame, n, MaxGroups))
			} else if n > 0 {
				x.Groups = make([]uint32, n)
				for i := range x.Groups {
					x.Groups[i] = d.u32()
				}
			}
			if x.Flags&FlagRootMeta != 0 {
				x.RootMeta = d.meta()
			}
		}
		m = x
	case TScan:
		m = &Scan{ID: d.uvarint(), Path: d.path(), Hash: d.bool()}
	case TEntries:
		x := &Entries{ID: d.uvarint()}
		n := d.uvarint()
		if n > MaxEntries {
			d.fail(fmt.Errorf("%d entries exceed limit %d", n, MaxEntries))
			n = 0
		}
		if d.err == nil {
			x.Entries = make([]fstree.Entry, 0, min(n, uint64(len(d.b))))
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			x.Entries = append(x.Entries, d.entry())
		}
		m = x
	case TScanEnd:
		m = &ScanEnd{ID: d.uvarint(), Err: d.str(MaxErrorMsg)}
	case TSigReq:
		x := &SigReq{ID: d.uvarint(), Path: d.path(), Size: d.size()}
		bs := d.uvarint()
		if bs > 1<<30 {
			d.fail(fmt.Errorf("block size %d out of range", bs))
		}
		x.BlockSize = int(bs)
		x.Off, x.Len = d.size(), d.size()
		if x.Len == 0 && x.Off != 0 {
			d.fail(fmt.Errorf("offset %d without a length", x.Off))
		}
		m = x
	case TSig:
		m = &Sig{ID: d.uvarint(), Err: d.str(MaxErrorMsg), Sig: d.bytes(MaxFrame)}
	case TMkdir:
		m = &Mkdir{ID: d.uvarint(), Path: d.path(), Meta: d.meta()}
	case TSymlink:
		m = &Symlink{ID: d.uvarint(), Path: d.path(), Target: d.str(MaxPath), Meta: d.meta()}
	case TSetMeta:
		m = &SetMeta{ID: d.uvarint(), Path: d.path(), Kind: d.kind(), Meta: d.meta()}
	case TDelete:
		m = &Delete{ID: d.uvarint(), Path: d.path(), Kind: d.kind()}
	case TFileBegin:
		x := &FileBegin{ID: d.uvarint(), Path: d.path(), Size: d.size(), Meta: d.meta()}
		bs := d.uvarint()
		if bs > 1<<30 {
			d.fail(fmt.Errorf("block size %d out of range", bs))
		}
		x.BlockSize = int(bs)
		m = x
	case TFileData:
		if len(payload) > MaxData {
			return nil, fmt.Errorf("file data of %d bytes exceeds limit %d", len(payload), MaxData)
		}
		m = &FileData{Data: d.raw(len(payload))}
	case TFileCopy:
		m = &FileCopy{Block: d.uvarint(), Count: d.u32()}
	case TFileCopyAt:
		x := &FileCopyAt{Off: d.size(), Len: d.u32()}
		if x.Len == 0 {
			d.fail(fmt.Errorf("empty copy"))
		}
		m = x
	case TFileHole:
		x := &FileHole{Len: d.size()}
		if x.Len == 0 {
			d.fail(fmt.Errorf("empty hole"))
		}
		m = x
	case TFileEnd:
		x := &FileEnd{}
		copy(x.Hash[:], d.raw(fstree.HashSize))
		m = x
	case TFileAbort:
		m = &FileAbort{}
	case TBarrier:
		m = &Barrier{ID: d.uvarint()}
	case TDone:
		m = &Done{ID: d.uvarint()}
	case TError:
		x := &Error{ID: d.uvarint(), Path: d.str(MaxPath)}
		code := d.uvarint()
		if code > 255 {
			d.fail(fmt.Errorf("error code %d out of range", code))
		}
		x.Code = int(code)
		x.Msg = d.str(MaxErrorMsg)
		m = x
	case TRename:
		m = &Rename{ID: d.uvarint(), From: d.path(), To: d.path(), Kind: d.kind()}
	case TRun:
		m = &Run{ID: d.uvarint(), Cmd: d.str(MaxErrorMsg), Stdin: d.bytes(MaxFrame)}
	case TRunDone:
		x := &RunDone{ID: d.uvarint()}
		code := d.varint()
		if code < -1 || code > 255 {
			d.fail(fmt.Errorf("exit code %d out of range", code))
		}
		x.Code = int(code)
		x.Output = d.str(MaxErrorMsg)
		m = x
	case THeartbeat:
		m = &Heartbeat{}
	case TStop:
		x := &Stop{}
		code := d.uvarint()
		if code != StopReconnect && code != StopTakenOver {
			d.fail(fmt.Errorf("stop code %d unknown", code))
		}
		x.Code = int(code)
		x.Msg = d.str(MaxErrorMsg)
		m = x
	case TNames:
		x := &Names{ID: d.uvarint()}
		x.Users = d.names(MaxNames)
		x.Groups = d.names(MaxNames - len(x.Users))
		m = x
	case TIds:
		x := &Ids{ID: d.uvarint()}
		x.Users = d.nameIDs(MaxNames)
		x.Groups = d.nameIDs(MaxNames - len(x.Users))
		x.Self, x.SelfGid = d.u32(), d.u32()
		m = x
	case TBatch:
		x := &Batch{ID: d.uvarint(), Flags: d.uvarint(), BackupDir: d.str(MaxPath), Stamp: d.str(MaxStamp)}
		if x.Flags&^BatchDelay != 0 {
			d.fail(fmt.Errorf("batch flags %#x unknown", x.Flags))
		}
		if d.err == nil && (x.BackupDir != "") != (x.Stamp != "") {
			d.fail(fmt.Errorf("batch with a backup directory and no stamp, or the reverse"))
		}
		if d.err == nil && x.Stamp != "" && !ValidStamp(x.Stamp) {
			d.fail(fmt.Errorf("bad backup stamp %q", x.Stamp))
		}
		m = x
	case TCommit:
		m = &Commit{ID: d.uvarint()}
	case TRollback:
		x := &Rollback{ID: d.uvarint(), Flags: d.uvarint(), Dir: d.str(MaxPath), Stamp: d.str(MaxStamp)}
		if x.Flags&^(RollbackDryRun|RollbackEnd|RollbackAlready) != 0 {
			d.fail(fmt.Errorf("rollback flags %#x unknown", x.Flags))
		}
		n := d.uvarint()
		if n > MaxEntries {
			d.fail(fmt.Errorf("%d rollback items exceed limit %d", n, MaxEntries))
			n = 0
		}
		if d.err == nil && n > 0 {
			x.Items = make([]RollItem, 0, min(n, uint64(len(d.b))))
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			a := d.uvarint()
			if a != RollRestored && a != RollRemoved {
				d.fail(fmt.Errorf("rollback action %d unknown", a))
			}
			x.Items = append(x.Items, RollItem{Action: uint8(a), Kind: d.kind(), Path: d.path()})
		}
		x.Err = d.str(MaxErrorMsg)
		m = x
	default:
		return nil, fmt.Errorf("unknown message type %d", t)
	}
	if err := d.done(); err != nil {
		return nil, fmt.Errorf("decode message type %d: %w", t, err)
	}
	return m, nil
}

func (d *dec) path() string {
	p := d.str(MaxPath)
	if d.err == nil {
		if err := ValidPath(p); err != nil {
			d.fail(err)
		}
	}
	return p
}

// names reads a count and that many names, at most max.
func (d *dec) names(max int) []string {
	n := d.uvarint()
	if n > uint64(max) {
		d.fail(fmt.Errorf("%w: %d names, more than %d", ErrFrame, n, max))
		return nil
	}
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]string, 0, min(n, uint64(len(d.b))))
	for i := uint64(0); i < n && d.err == nil; i++ {
		s := d.str(MaxName)
		if d.err == nil && s == "" {
			d.fail(fmt.Errorf("%w: empty name", ErrFrame))
		}
		out = append(out, s)
	}
	return out
}

func (d *dec) nameIDs(max int) []NameID {
	n := d.uvarint()
	if n > uint64(max) {
		d.fail(fmt.Errorf("%w: %d ids, more than %d", ErrFrame, n, max))
		return nil
	}
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]NameID, 0, min(n, uint64(len(d.b))))
	for i := uint64(0); i < n && d.err == nil; i++ {
		x := NameID{Known: d.bool()}
		if x.Known {
			x.ID = d.u32()
		}
		out = append(out, x)
	}
	return out
}

func (d *dec) place() ident.Place {
	p := ident.Place{Boot: d.str(ident.MaxBoot)}
	n := d.uvarint()
	if n > ident.MaxChain {
		d.fail(fmt.Errorf("chain of %d directories exceeds limit %d", n, ident.MaxChain))
		return p
	}
	if d.err == nil && n > 0 {
		p.Chain = make([]ident.FileID, 0, min(n, uint64(len(d.b)/2)))
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		p.Chain = append(p.Chain, ident.FileID{Dev: d.uvarint(), Ino: d.uvarint()})
	}
	return p
}

func (d *dec) size() int64 {
	v := d.varint()
	if v < 0 {
		d.fail(fmt.Errorf("negative size %d", v))
	}
	return v
}

func (d *dec) kind() fstree.Kind {
	k := d.uvarint()
	if k < uint64(fstree.File) || k > uint64(fstree.Other) {
		d.fail(fmt.Errorf("bad entry kind %d", k))
		return 0
	}
	return fstree.Kind(k)
}

func (d *dec) meta() Meta {
	m := Meta{Perm: d.u32(), Mtime: d.mtime(), Owner: d.bool()}
	if m.Perm > 07777 {
		d.fail(fmt.Errorf("mode %o out of range", m.Perm))
	}
	if m.Owner {
		m.Uid, m.Gid = d.u32(), d.u32()
	}
	return m
}

func (d *dec) entry() fstree.Entry {
	x := fstree.Entry{Path: d.path(), Kind: d.kind(), Perm: d.u32(), Mtime: d.mtime(), Uid: d.u32(), Gid: d.u32()}
	if x.Perm > 07777 {
		d.fail(fmt.Errorf("mode %o out of range", x.Perm))
	}
	switch x.Kind {
	case fstree.File:
		x.Size = d.size()
		x.HasHash = d.bool()
		if x.HasHash {
			copy(x.Hash[:], d.raw(fstree.HashSize))
		}
	case fstree.Symlink:
		x.Target = d.str(MaxPath)
	}
	return x
}
