package sshx

import (
	"errors"
	"slices"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestAlgorithmsFromConfig(t *testing.T) {
	hc := resolveConfig(t, "Host h\n")
	for _, list := range [][]string{hc.Algos.Kex, hc.Algos.MACs, hc.Algos.HostKeys, hc.Algos.PubkeyAuth} {
		if i := slices.IndexFunc(list, isSHA1); i >= 0 {
			t.Errorf("default offers SHA-1 %s: %v", list[i], list)
		}
	}
	want := ssh.CipherChaCha20Poly1305
	if hasAESGCMHardware() {
		want = ssh.CipherAES128GCM
	}
	if hc.Algos.Ciphers[0] != want {
		t.Errorf("first cipher %s, want %s", hc.Algos.Ciphers[0], want)
	}

	tests := []struct {
		line  string
		check func(a algorithms) bool
	}{
		{"KexAlgorithms +diffie-hellman-group14-sha1", func(a algorithms) bool {
			return a.Kex[len(a.Kex)-1] == ssh.InsecureKeyExchangeDH14SHA1 && slices.Contains(a.Kex, ssh.KeyExchangeCurve25519)
		}},
		{"KexAlgorithms ^diffie-hellman-group14-sha1", func(a algorithms) bool {
			return a.Kex[0] == ssh.InsecureKeyExchangeDH14SHA1 && slices.Contains(a.Kex, ssh.KeyExchangeCurve25519)
		}},
		{"KexAlgorithms diffie-hellman-group14-sha1,sntrup761x25519-sha512@openssh.com", func(a algorithms) bool {
			return slices.Equal(a.Kex, []string{ssh.InsecureKeyExchangeDH14SHA1}) // the unknown name is skipped
		}},
		{"KexAlgorithms -ecdh-sha2-*", func(a algorithms) bool {
			return !slices.ContainsFunc(a.Kex, func(k string) bool { return k == ssh.KeyExchangeECDHP256 || k == ssh.KeyExchangeECDHP521 }) &&
				slices.Contains(a.Kex, ssh.KeyExchangeCurve25519)
		}},
		{"Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com", func(a algorithms) bool {
			return slices.Equal(a.Ciphers, []string{ssh.CipherChaCha20Poly1305, ssh.CipherAES256GCM})
		}},
		{"MACs +hmac-sha1", func(a algorithms) bool { return slices.Contains(a.MACs, ssh.HMACSHA1) }},
		{"MACs hmac-sha2-*", func(a algorithms) bool {
			return len(a.MACs) == 4 && !slices.ContainsFunc(a.MACs, isSHA1)
		}},
		{"HostKeyAlgorithms +ssh-rsa", func(a algorithms) bool { return slices.Contains(a.HostKeys, ssh.KeyAlgoRSA) && a.hostKeysSet }},
		{"PubkeyAcceptedAlgorithms +ssh-rsa", func(a algorithms) bool { return slices.Contains(a.PubkeyAuth, ssh.KeyAlgoRSA) }},
		{"PubkeyAcceptedKeyTypes +ssh-rsa", func(a algorithms) bool { return slices.Contains(a.PubkeyAuth, ssh.KeyAlgoRSA) }},
	}
	for _, tt := range tests {
		hc := resolveConfig(t, "Host h\n  "+tt.line+"\n")
		if !tt.check(hc.Algos) {
			t.Errorf("%s: got %+v", tt.line, hc.Algos)
		}
	}
	for _, bad := range []string{"Ciphers nothing-known", "KexAlgorithms -*", "MACs -hmac-sha2-*"} {
		if _, err := resolveConfigErr(t, "Host h\n  "+bad+"\n"); !errors.Is(err, ErrConfig) || !errors.Is(err, errAlgorithms) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}

func TestHostKeyAlgorithmsFromKnownHosts(t *testing.T) {
	a := resolveConfig(t, "Host h\n").Algos
	known := []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	if got := a.hostKeyAlgorithms(known); !slices.Equal(got, known[:2]) {
		t.Errorf("known RSA key: %v", got)
	}
	a = resolveConfig(t, "Host h\n  HostKeyAlgorithms +ssh-rsa\n").Algos
	if got := a.hostKeyAlgorithms(known); !slices.Contains(got, ssh.KeyAlgoRSA) {
		t.Errorf("ssh-rsa allowed: %v", got)
	}
}
