package sshx

import (
	"io"
	"net"
	"testing"
)

// A TCP connection to sshd acknowledges every read at once
// (TCP_QUICKACK set without error); anything else is left alone.
func TestAliveConnQuickAck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		s.Write([]byte("one"))
		s.Write([]byte("two"))
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := newAliveConn(raw)
	defer c.Close()
	if c.ack == nil {
		t.Fatal("a TCP connection got no quick acknowledgement")
	}
	acks, real := 0, c.ack
	c.ack = func() error {
		acks++
		err := real()
		if err != nil {
			t.Errorf("TCP_QUICKACK: %v", err)
		}
		return err
	}
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "onetwo" {
		t.Fatalf("read %q, %v", b, err)
	}
	if acks == 0 {
		t.Fatal("reads were not acknowledged at once")
	}
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if newAliveConn(p).ack != nil {
		t.Fatal("a pipe got a TCP option")
	}
}
