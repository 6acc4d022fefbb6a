package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Conn reads and writes frames on a byte stream (a pipe, a child's stdio, an
// SSH session). One goroutine may read while another writes; neither side
// is safe for concurrent use by several goroutines.
type Conn struct {
	rawBuf *bufio.Writer // frames are written here, or into zenc
	zenc   *zstd.Encoder
	wbuf   *bufio.Writer // what WriteMsg writes to
	frame  []byte

	rawR *bufio.Reader
	zdec *zstd.Decoder
	rbuf *bufio.Reader // what ReadMsg reads from
	pay  []byte

	// Written counts bytes handed to the underlying writer, after
	// compression: what crossed the transport.
	Written int64
}

type countWriter struct {
	w io.Writer
	n *int64
}

func (c countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	*c.n += int64(n)
	return n, err
}

// NewConn frames messages on r and w.
func NewConn(r io.Reader, w io.Writer) *Conn {
	c := &Conn{}
	c.rawBuf = bufio.NewWriterSize(countWriter{w, &c.Written}, 64<<10)
	c.wbuf = c.rawBuf
	c.rawR = bufio.NewReaderSize(r, 64<<10)
	c.rbuf = c.rawR
	return c
}

// StartCompression switches both directions to zstd at level (1-4 as
// klauspost's encoder levels, fastest to best). Both peers call it right
// after the handshake, before any other frame.
func (c *Conn) StartCompression(level int) error {
	if level <= 0 {
		return nil
	}
	if err := c.rawBuf.Flush(); err != nil {
		return err
	}
	// Not WithLowerEncoderMem: its history buffer is the window plus one
	// block, so the encoder moved the whole 1 MiB window down after every
	// 128 KiB block, eight times the data in copies; with the default
	// (twice the window, about 1 MiB more) it encoded 3.4 times faster
	// (level 1, half random data: 1.1 -> 3.9 GB/s), and copying was most
	// of the client's CPU for a 1 GiB file over SSH.
	// No frame checksum either: SSH's MAC already guards the stream and
	// BLAKE3 every file's content; the xxhash of every byte cost both
	// ends about 0.1 s a GiB.
	enc, err := zstd.NewWriter(c.rawBuf,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(1<<20),
		zstd.WithEncoderCRC(false))
	if err != nil {
		return fmt.Errorf("zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(c.rawR,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(8<<20),
		zstd.WithDecoderMaxMemory(MaxFrame*2),
		zstd.WithDecoderLowmem(true))
	if err != nil {
		enc.Close()
		return fmt.Errorf("zstd decoder: %w", err)
	}
	c.zenc, c.zdec = enc, dec
	c.wbuf = bufio.NewWriterSize(enc, 64<<10)
	c.rbuf = bufio.NewReaderSize(dec, 64<<10)
	return nil
}

// WriteMsg encodes and buffers one message. Nothing reaches the peer
// until Flush.
func (c *Conn) WriteMsg(m Msg) error {
	e := enc{b: c.frame[:0]}
	e.b = append(e.b, byte(m.Type()), 0, 0, 0, 0, 0) // room for a uvarint length up to 2^35
	m.appendPayload(&e)
	c.frame = e.b
	n := len(e.b) - 6
	if n > MaxFrame {
		return fmt.Errorf("message type %d of %d bytes exceeds frame limit", m.Type(), n)
	}
	var hdr [binary.MaxVarintLen64 + 1]byte
	hdr[0] = byte(m.Type())
	h := binary.AppendUvarint(hdr[:1], uint64(n))
	// Shift the header right up against the payload.
	start := 6 - len(h)
	copy(e.b[start:], h)
	_, err := c.wbuf.Write(e.b[start:])
	if cap(c.frame) > 4<<20 {
		c.frame = nil // do not pin a huge buffer after one big message
	}
	return err
}

// Flush pushes everything written so far to the peer, through the
// compressor, so latency never waits on a compression window.
func (c *Conn) Flush() error {
	if err := c.wbuf.Flush(); err != nil {
		return err
	}
	if c.zenc != nil {
		if err := c.zenc.Flush(); err != nil {
			return err
		}
	}
	return c.rawBuf.Flush()
}

// ErrFrame wraps every framing and decoding error: the peer is not
// speaking this protocol, or the stream is corrupt.
var ErrFrame = errors.New("protocol error")

// ReadMsg reads the next message. io.EOF means the peer closed cleanly
// between frames. The message may alias an internal buffer that the next
// ReadMsg reuses.
func (c *Conn) ReadMsg() (Msg, error) {
	t, err := c.rbuf.ReadByte()
	if err != nil {
		if c.zdec != nil && errors.Is(err, io.ErrUnexpectedEOF) {
			// The peer closed between messages; its compressor had no
			// chance to end the zstd frame. Nothing was cut off.
			return nil, io.EOF
		}
		return nil, err
	}
	n, err := binary.ReadUvarint(c.rbuf)
	if err != nil {
		return nil, fmt.Errorf("%w: frame header: %w", ErrFrame, unexpected(err))
	}
	if n > MaxFrame {
		return nil, fmt.Errorf("%w: frame of %d bytes exceeds limit", ErrFrame, n)
	}
	if cap(c.pay) < int(n) {
		c.pay = make([]byte, n)
	}
	p := c.pay[:n]
	if _, err := io.ReadFull(c.rbuf, p); err != nil {
		return nil, fmt.Errorf("%w: frame body: %w", ErrFrame, unexpected(err))
	}
	m, err := Decode(Type(t), p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFrame, err)
	}
	if cap(c.pay) > 4<<20 {
		c.pay = nil
	}
	return m, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Buffered reports whether received bytes are waiting to be read, so a
// server can flush its answers only before it would block.
func (c *Conn) Buffered() bool { return c.rbuf.Buffered() > 0 || c.rawR.Buffered() > 0 }

// Close releases the compressor's resources; it does not close the
// underlying stream.
func (c *Conn) Close() {
	if c.zenc != nil {
		c.zenc.Close()
	}
	if c.zdec != nil {
		c.zdec.Close()
	}
}
