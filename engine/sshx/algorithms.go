package sshx

import (
	"errors"
	"fmt"
	"path"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/cpu"
)

// sha1Algorithms are offered only when ssh_config asks for them: SHA-1
// collisions are practical, and OpenSSH no longer offers them either.
var sha1Algorithms = []string{
	ssh.InsecureKeyExchangeDH1SHA1, ssh.InsecureKeyExchangeDH14SHA1, ssh.InsecureKeyExchangeDHGEXSHA1,
	ssh.HMACSHA1, ssh.InsecureHMACSHA196,
	ssh.KeyAlgoRSA, ssh.CertAlgoRSAv01,
}

func isSHA1(a string) bool { return slices.Contains(sha1Algorithms, a) }

// algorithms are what a connection offers, from ssh_config's KexAlgorithms,
// Ciphers, MACs, HostKeyAlgorithms and PubkeyAcceptedAlgorithms over
// gosync's defaults.
type algorithms struct {
	Kex, Ciphers, MACs, HostKeys, PubkeyAuth []string
	// hostKeysSet tells whether HostKeyAlgorithms came from ssh_config:
	// then its order wins over the key types known_hosts holds.
	hostKeysSet bool
}

// algorithmKey is one ssh_config algorithm list: its default and the
// names x/crypto implements for it.
type algorithmKey struct {
	name string
	def  func() []string
	all  []string
}

func withoutSHA1(list []string) []string {
	return slices.DeleteFunc(slices.Clone(list), isSHA1)
}

var (
	supported = ssh.SupportedAlgorithms()
	insecure  = ssh.InsecureAlgorithms()
)

var algorithmKeys = []algorithmKey{
	{"KexAlgorithms", func() []string { return withoutSHA1(supported.KeyExchanges) },
		slices.Concat(supported.KeyExchanges, insecure.KeyExchanges)},
	{"Ciphers", defaultCiphers, slices.Concat(supported.Ciphers, insecure.Ciphers)},
	{"MACs", func() []string { return withoutSHA1(supported.MACs) },
		slices.Concat(supported.MACs, insecure.MACs)},
	{"HostKeyAlgorithms", func() []string { return withoutSHA1(supported.HostKeys) },
		slices.Concat(supported.HostKeys, insecure.HostKeys)},
	{"PubkeyAcceptedAlgorithms", func() []string { return withoutSHA1(supported.PublicKeyAuths) },
		slices.Concat(supported.PublicKeyAuths, insecure.PublicKeyAuths)},
}

// defaultCiphers prefers AES-GCM where the CPU has AES and carry-less
// multiply instructions (about twice chacha20-poly1305 there), and
// chacha20-poly1305 elsewhere, where AES in software is slow and not
// constant-time. OpenSSH always prefers chacha20.
func defaultCiphers() []string {
	aead := []string{ssh.CipherChaCha20Poly1305, ssh.CipherAES128GCM, ssh.CipherAES256GCM}
	if hasAESGCMHardware() {
		aead = []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM, ssh.CipherChaCha20Poly1305}
	}
	rest := slices.DeleteFunc(slices.Clone(supported.Ciphers), func(c string) bool { return slices.Contains(aead, c) })
	return append(aead, rest...)
}

func hasAESGCMHardware() bool {
	switch runtime.GOARCH {
	case "amd64", "386":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	case "s390x":
		return cpu.S390X.HasAES && cpu.S390X.HasAESGCM
	case "ppc64le":
		return true // POWER8 and later, which Go requires there
	}
	return false
}

// errAlgorithms wraps an algorithm list in ssh_config that leaves nothing
// to offer.
var errAlgorithms = errors.New("no usable algorithms")

// loadAlgorithms reads the five lists for alias, as OpenSSH reads them: a
// list replaces the default, "+list" appends to it, "-list" removes from
// it and "^list" puts its names first. Names may hold the wildcards * and
// ?. Names x/crypto does not implement are skipped (the same ssh_config
// serves OpenSSH, which knows more), but a list left empty is an error.
func (s *settings) loadAlgorithms(alias string) (algorithms, error) {
	var a algorithms
	dst := []*[]string{&a.Kex, &a.Ciphers, &a.MACs, &a.HostKeys, &a.PubkeyAuth}
	for i, k := range algorithmKeys {
		v := s.get(alias, k.name)
		if k.name == "PubkeyAcceptedAlgorithms" && v == "" {
			v = s.get(alias, "PubkeyAcceptedKeyTypes") // its name before OpenSSH 8.5
		}
		list, err := assembleAlgorithms(v, k.def(), k.all)
		if err != nil {
			return a, fmt.Errorf("%w for %s: %s %q: %w", ErrConfig, alias, k.name, v, err)
		}
		*dst[i] = list
		if k.name == "HostKeyAlgorithms" && v != "" {
			a.hostKeysSet = true
		}
	}
	return a, nil
}

func assembleAlgorithms(v string, def, all []string) ([]string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return def, nil
	}
	op := v[0]
	switch op {
	case '+', '-', '^':
		v = v[1:]
	default:
		op = 0
	}
	var pats []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			pats = append(pats, p)
		}
	}
	matching := func(from []string) []string {
		var out []string
		for _, p := range pats {
			for _, name := range from {
				if ok, _ := path.Match(p, name); ok && !slices.Contains(out, name) {
					out = append(out, name)
				}
			}
		}
		return out
	}
	var out []string
	switch op {
	case '+':
		out = slices.Clone(def)
		for _, n := range matching(all) {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	case '-':
		drop := matching(all)
		out = slices.DeleteFunc(slices.Clone(def), func(n string) bool { return slices.Contains(drop, n) })
	case '^':
		out = matching(all)
		for _, n := range def {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	default:
		out = matching(all)
	}
	if len(out) == 0 {
		return nil, errAlgorithms
	}
	return out, nil
}

// hostKeyAlgorithms is what to accept as the server's host key: the key
// types known_hosts holds for the host (so a server preferring another
// type is not taken for a changed key), among those allowed; or, with
// none known, every allowed type.
func (a algorithms) hostKeyAlgorithms(known []string) []string {
	if len(known) == 0 {
		return a.HostKeys
	}
	var out []string
	if a.hostKeysSet {
		for _, h := range a.HostKeys {
			if slices.Contains(known, h) {
				out = append(out, h)
			}
		}
	} else {
		for _, k := range known {
			if slices.Contains(a.HostKeys, k) {
				out = append(out, k)
			}
		}
	}
	if len(out) == 0 {
		// Every known key type is refused: offer what is allowed, and
		// the host key check names the key the server shows.
		return a.HostKeys
	}
	return out
}

// restrictSigners keeps RSA keys from signing with SHA-1 (ssh-rsa) unless
// PubkeyAcceptedAlgorithms allows it, and drops keys none of whose
// signature algorithms is accepted.
func (a algorithms) restrictSigners(signers []ssh.Signer) []ssh.Signer {
	var out []ssh.Signer
	for _, s := range signers {
		typ := s.PublicKey().Type()
		if typ != ssh.KeyAlgoRSA {
			if slices.Contains(a.PubkeyAuth, typ) || strings.Contains(typ, "-cert-") {
				out = append(out, s)
			}
			continue
		}
		as, ok := s.(ssh.AlgorithmSigner)
		if !ok {
			if slices.Contains(a.PubkeyAuth, ssh.KeyAlgoRSA) {
				out = append(out, s)
			}
			continue
		}
		var algos []string
		for _, alg := range []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA} {
			if slices.Contains(a.PubkeyAuth, alg) {
				algos = append(algos, alg)
			}
		}
		if len(algos) == 0 {
			continue
		}
		ms, err := ssh.NewSignerWithAlgorithms(as, algos)
		if err != nil {
			continue
		}
		out = append(out, ms)
	}
	return out
}

// describeNegotiation explains a server whose algorithms gosync does not
// offer: which ones it offers, and the ssh_config line that would allow
// them if the user accepts the risk.
func describeNegotiation(ne *ssh.AlgorithmNegotiationError, hc *hostConfig) error {
	key := ""
	switch {
	case strings.Contains(ne.What, "key exchange"):
		key = "KexAlgorithms"
	case strings.Contains(ne.What, "host key"):
		key = "HostKeyAlgorithms"
	case strings.Contains(ne.What, "cipher"):
		key = "Ciphers"
	case strings.Contains(ne.What, "MAC"):
		key = "MACs"
	}
	// What the server offers that x/crypto implements, SHA-1 first: that
	// is the usual reason (an old server).
	var known []string
	for _, k := range algorithmKeys {
		if k.name == key {
			for _, r := range ne.RequestedAlgorithms {
				if slices.Contains(k.all, r) {
					known = append(known, r)
				}
			}
		}
	}
	// Markers such as kex-strict-s-v00@openssh.com are no algorithms.
	offers := strings.Join(slices.DeleteFunc(slices.Clone(ne.RequestedAlgorithms), func(a string) bool {
		return strings.HasPrefix(a, "kex-strict-") || strings.HasPrefix(a, "ext-info-")
	}), ", ")
	if key == "" || len(known) == 0 {
		return &describedError{fmt.Sprintf("no common %s algorithm: the server offers only %s, which gosync does not implement", ne.What, offers), ne}
	}
	weak := ""
	if slices.ContainsFunc(known, isSHA1) {
		weak = " (SHA-1, not offered by default)"
	}
	return &describedError{fmt.Sprintf("no common %s algorithm: the server offers only %s%s; to allow it anyway, add `%s +%s` under `Host %s` in %s",
		ne.What, offers, weak, key, known[0], hc.Alias, hc.configFile), ne}
}
