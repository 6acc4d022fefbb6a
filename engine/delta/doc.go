// Package delta implements the rsync algorithm for gosync: block
// signatures of a basis file, a streaming diff of a target against such a
// signature, and a patcher that rebuilds the target from the basis and the
// diff.
//
// It owns:
//   - the block size and strong-sum length policy ([BlockSize], [StrongLen]);
//   - the 32-bit rolling weak checksum and the per-block strong hash;
//   - the binary encoding of a [Signature] ([Signature.AppendBinary],
//     [UnmarshalSignature]), which is validated as untrusted input;
//   - the delta as a stream of [Op] values and their validation when applied.
//
// It does not own: opening files by path (callers pass io.Reader and
// io.ReaderAt), the framing of ops on the wire (engine/wire), or the
// whole-file hash that proves a rebuilt file is right before it is renamed
// into place (engine/agent). A per-block strong hash collision therefore
// yields a wrong file that the whole-file check rejects; it is never
// trusted on its own.
//
// Memory is bounded by the signature and a few buffers, never by the length
// of the target: [Diff] streams the target and hands literal bytes to its
// callback straight from its window buffer.
package delta
