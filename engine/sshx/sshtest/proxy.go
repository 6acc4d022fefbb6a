//go:build linux

package sshtest

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Proxy forwards TCP connections from 127.0.0.1 to target until
// frozen; then it forwards nothing in either direction but keeps both
// sockets open, as a link whose packets are silently dropped.
type Proxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
	closed bool
	conns  []net.Conn
	// held are the connections FreezeOpen froze; later ones pass.
	held map[net.Conn]bool
	wg   sync.WaitGroup
	// up and down count the bytes forwarded to and from the target,
	// for tests that measure what a connection costs on the wire.
	up, down atomic.Int64
}

// Bytes returns the bytes forwarded so far: client to server (up) and
// server to client (down).
func (p *Proxy) Bytes() (up, down int64) { return p.up.Load(), p.down.Load() }

// StartProxy forwards 127.0.0.1:Port() to target until the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{l: l, target: target}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Port is the port the proxy listens on.
func (p *Proxy) Port() string {
	_, port, _ := net.SplitHostPort(p.l.Addr().String())
	return port
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			u.Close()
			return
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(u, c, c, &p.up)
		go p.pipe(c, u, c, &p.down)
	}
}

func (p *Proxy) pipe(dst, src, client net.Conn, count *atomic.Int64) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass(client) {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
			count.Add(int64(n))
		}
		if err != nil {
			dst.(*net.TCPConn).CloseWrite()
			return
		}
	}
}

// pass waits while the proxy or this connection is frozen; false once
// it is closed.
func (p *Proxy) pass(client net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for (p.frozen || p.held[client]) && !p.closed {
		p.cond.Wait()
	}
	return !p.closed
}

// Freeze stops forwarding in both directions, keeping the sockets open:
// a link whose packets are silently dropped.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

// FreezeOpen freezes the connections open now, as Freeze does, and lets
// later ones through: a link that hangs while a reconnection works (the
// old SSH session and its agent stay alive on the server).
func (p *Proxy) FreezeOpen() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == nil {
		p.held = map[net.Conn]bool{}
	}
	for i := 0; i < len(p.conns); i += 2 {
		p.held[p.conns[i]] = true
	}
}

// Thaw forwards again, on every connection.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	p.frozen = false
	clear(p.held)
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Reset drops every connection through the proxy with a TCP reset (RST),
// as a server that crashed or a firewall that forgot the connection
// does; new connections are forwarded again.
func (p *Proxy) Reset() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // close sends RST instead of FIN
		}
		c.Close()
	}
}

// Close ends the proxy and every connection through it.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	conns := p.conns
	p.mu.Unlock()
	p.l.Close()
	for _, c := range conns {
		c.Close()
	}
	p.wg.Wait()
}

// ViaProxy adds a Host alias reaching the server through a new Proxy,
// with extra ssh_config lines, and trusts its host key under the proxy's
// address.
func (srv *Server) ViaProxy(t testing.TB, alias, extra string) *Proxy {
	t.Helper()
	p := StartProxy(t, srv.Addr())
	srv.AppendConfig(t, "\nHost "+alias+"\n  HostName 127.0.0.1\n  Port "+p.Port()+"\n  IdentityFile "+srv.UserKey+
		"\n  UserKnownHostsFile "+srv.KnownHosts+"\n  StrictHostKeyChecking yes\n"+extra)
	f, err := os.OpenFile(srv.KnownHosts, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n[127.0.0.1]:" + p.Port() + " " + string(ssh.MarshalAuthorizedKey(srv.HostKey))); err != nil {
		t.Fatal(err)
	}
	return p
}
