// Package wire is the protocol between the gosync client and its agent:
// framing, message types and their binary encoding, the version handshake,
// and the optional zstd compression of the stream with explicit flushes.
//
// A frame is a one-byte message type, a uvarint payload length and the
// payload. Frames stream in both directions without waiting for each other:
// the client pipelines many operations and the agent answers only with
// errors, scan listings, signatures, and an acknowledgement for each
// Barrier. Everything read off the wire is untrusted: lengths are bounded,
// paths are validated by ValidPath on both ends, and decoding never panics.
//
// The package knows nothing of files or trees beyond the fstree.Entry it
// encodes; what an operation does is the agent's business.
package wire
