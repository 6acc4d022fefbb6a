//go:build linux

package sshx_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/cpu"

	"github.com/gosync/gosync/engine/sshx"
	"github.com/gosync/gosync/engine/sshx/sshtest"
)

func negotiated(t *testing.T, opt sshx.Options) ssh.NegotiatedAlgorithms {
	t.Helper()
	c, err := sshx.Dial(context.Background(), sshtest.Alias, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.Conn.(ssh.AlgorithmsConnMetadata).Algorithms()
}

// An old server offering only SHA-1 key exchange is refused, naming the
// host and the ssh_config line that allows it; with that line it works.
func TestSHA1KexRefusedUnlessConfigured(t *testing.T) {
	srv := sshtest.StartWith(t, sshtest.Options{ServerConfig: "KexAlgorithms diffie-hellman-group14-sha1"})
	err := dialErr(t, sshx.Options{})
	want := "add `KexAlgorithms +diffie-hellman-group14-sha1` under `Host " + sshtest.Alias + "` in "
	if !errors.Is(err, sshx.ErrNegotiation) || !sshx.Permanent(err) || !strings.Contains(err.Error(), want) ||
		!strings.Contains(err.Error(), sshtest.Alias) || !strings.Contains(err.Error(), "key exchange") {
		t.Fatalf("err = %v", err)
	}
	srv.AppendConfig(t, "\nHost "+sshtest.Alias+"\n  KexAlgorithms +diffie-hellman-group14-sha1\n")
	if got := negotiated(t, sshx.Options{}).KeyExchange; got != ssh.InsecureKeyExchangeDH14SHA1 {
		t.Fatalf("kex %s", got)
	}
}

func TestSHA1MACRefusedUnlessConfigured(t *testing.T) {
	srv := sshtest.StartWith(t, sshtest.Options{ServerConfig: "Ciphers aes128-ctr\nMACs hmac-sha1"})
	err := dialErr(t, sshx.Options{})
	if !errors.Is(err, sshx.ErrNegotiation) || !strings.Contains(err.Error(), "`MACs +hmac-sha1`") {
		t.Fatalf("err = %v", err)
	}
	srv.AppendConfig(t, "\nHost "+sshtest.Alias+"\n  MACs +hmac-sha1\n")
	if got := negotiated(t, sshx.Options{}).Write.MAC; got != ssh.HMACSHA1 {
		t.Fatalf("MAC %s", got)
	}
}

// AES-GCM by default where the CPU has AES instructions; ssh_config's
// Ciphers wins.
func TestCipherPreference(t *testing.T) {
	srv := sshtest.Start(t)
	want := ssh.CipherChaCha20Poly1305
	if cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ || cpu.ARM64.HasAES && cpu.ARM64.HasPMULL {
		want = ssh.CipherAES128GCM
	}
	if a := negotiated(t, sshx.Options{}); a.Write.Cipher != want || a.Read.Cipher != want {
		t.Fatalf("ciphers %s/%s, want %s", a.Write.Cipher, a.Read.Cipher, want)
	}
	srv.AppendConfig(t, "\nHost "+sshtest.Alias+"\n  Ciphers aes256-ctr,chacha20-poly1305@openssh.com\n")
	if a := negotiated(t, sshx.Options{}); a.Write.Cipher != ssh.CipherAES256CTR {
		t.Fatalf("Ciphers in ssh_config ignored: %s", a.Write.Cipher)
	}
}
