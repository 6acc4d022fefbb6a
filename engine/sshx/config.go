package sshx

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// ErrConfig wraps errors in the ssh configuration.
var ErrConfig = errors.New("ssh config")

// Options are what the command line can override; empty fields come from
// ssh_config, then OpenSSH's defaults.
type Options struct {
	User         string
	Port         int
	Identity     string // a key file; with it, only this key is offered besides ssh-agent
	KnownHosts   string // a known_hosts file instead of the configured ones
	AcceptNew    bool   // accept and record the key of a host seen for the first time
	ConfigFile   string // instead of ~/.ssh/config
	RemoteGosync string // path of gosync on the remote host; no lookup, no upload
	// RemoteSudo starts the agent as root through `sudo -n` (see
	// SudoRoot and SudoRule); it needs RemoteGosync.
	RemoteSudo bool
	// Passphrase asks for the passphrase of an encrypted key; nil means
	// there is no terminal to ask on.
	Passphrase func(keyFile string) ([]byte, error)
}

// NeedsBinary reports whether a dial with these options starts the agent
// from the client's Binary (looked up, cached or uploaded by its hash),
// rather than the remote gosync the options name.
func (o Options) NeedsBinary() bool { return o.RemoteGosync == "" && !o.RemoteSudo }

// Keepalive defaults when ssh_config sets none: a silent link is closed
// (DefaultAliveCountMax+1)*DefaultAliveInterval after the last byte
// received, 20 s.
const (
	DefaultAliveInterval = 5 * time.Second
	DefaultAliveCountMax = 3
)

// hostConfig is the resolved configuration for one host.
type hostConfig struct {
	Alias          string // as the user wrote it
	HostName       string
	User           string
	Port           int
	IdentityFiles  []string
	IdentitiesOnly bool
	KnownHosts     []string
	Strict         string // yes, accept-new, no, ask (OpenSSH's default)
	ConnectTimeout time.Duration
	AliveInterval  time.Duration
	AliveCountMax  int
	ProxyJump      string
	HostKeyAlias   string // the name known_hosts holds the key under, instead of host and port
	Algos          algorithms
	configFile     string // the user's ssh config, for messages
}

// dialTimeout bounds the TCP connect and the SSH handshake: ConnectTimeout,
// or without it the time keepalives take to give up on a silent link, so
// a frozen link cannot hang a dial where it would not hang a session.
func (hc *hostConfig) dialTimeout() time.Duration {
	if hc.ConnectTimeout > 0 || hc.AliveInterval <= 0 {
		return hc.ConnectTimeout
	}
	return time.Duration(hc.AliveCountMax+1) * hc.AliveInterval
}

// settings reads ssh_config files for hosts, user file first.
type settings struct {
	user, system *ssh_config.Config
	home         string
	userFile     string
}

func loadSettings(opt Options) (*settings, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, fmt.Errorf("%w: find home directory for ~/.ssh: %w", ErrConfig, err)
	}
	s := &settings{home: home}
	userFile := opt.ConfigFile
	if userFile == "" {
		userFile = filepath.Join(home, ".ssh", "config")
	}
	s.userFile = userFile
	if s.user, err = decodeFile(userFile, opt.ConfigFile != ""); err != nil {
		return nil, err
	}
	if s.system, err = decodeFile("/etc/ssh/ssh_config", false); err != nil {
		return nil, err
	}
	return s, nil
}

func decodeFile(path string, must bool) (*ssh_config.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) && !must {
			return nil, nil
		}
		return nil, fmt.Errorf("%w %s: %w", ErrConfig, path, err)
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w; fix the file or pass --ssh-config", ErrConfig, path, err)
	}
	return cfg, nil
}

// get returns the first value for key, as OpenSSH takes the first one
// obtained: the user file before the system file.
func (s *settings) get(alias, key string) string {
	for _, c := range []*ssh_config.Config{s.user, s.system} {
		if c == nil {
			continue
		}
		if v, err := c.Get(alias, key); err == nil && v != "" {
			return v
		}
	}
	return ""
}

func (s *settings) getAll(alias, key string) []string {
	var all []string
	for _, c := range []*ssh_config.Config{s.user, s.system} {
		if c == nil {
			continue
		}
		if v, err := c.GetAll(alias, key); err == nil {
			all = append(all, v...)
		}
	}
	return all
}

// resolve computes the configuration for alias with opt's overrides.
func (s *settings) resolve(alias string, opt Options) (*hostConfig, error) {
	hc := &hostConfig{Alias: alias, HostName: alias, Port: 22, Strict: "ask", AliveCountMax: DefaultAliveCountMax, configFile: tildePath(s.userFile)}
	if v := s.get(alias, "HostName"); v != "" {
		hc.HostName = strings.ReplaceAll(v, "%h", alias)
	}
	hc.User = s.get(alias, "User")
	if hc.User == "" {
		if u, err := user.Current(); err == nil {
			hc.User = u.Username
		}
	}
	if v := s.get(alias, "Port"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%w for %s: bad Port %q", ErrConfig, alias, v)
		}
		hc.Port = p
	}
	if opt.User != "" {
		hc.User = opt.User
	}
	if opt.Port != 0 {
		hc.Port = opt.Port
	}
	expand := func(p string) string {
		r := strings.NewReplacer("%d", s.home, "%u", hc.User, "%r", hc.User, "%h", hc.HostName, "%p", strconv.Itoa(hc.Port), "%%", "%")
		p = r.Replace(p)
		if p == "~" {
			return s.home
		}
		if strings.HasPrefix(p, "~/") {
			return filepath.Join(s.home, p[2:])
		}
		return p
	}
	if opt.Identity != "" {
		hc.IdentityFiles = []string{expand(opt.Identity)}
		hc.IdentitiesOnly = true
	} else {
		for _, f := range s.getAll(alias, "IdentityFile") {
			hc.IdentityFiles = append(hc.IdentityFiles, expand(f))
		}
		hc.IdentitiesOnly = strings.EqualFold(s.get(alias, "IdentitiesOnly"), "yes")
		if len(hc.IdentityFiles) == 0 {
			for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
				hc.IdentityFiles = append(hc.IdentityFiles, filepath.Join(s.home, ".ssh", n))
			}
		}
	}
	if opt.KnownHosts != "" {
		hc.KnownHosts = []string{expand(opt.KnownHosts)}
	} else {
		files := s.get(alias, "UserKnownHostsFile")
		if files == "" {
			files = "~/.ssh/known_hosts ~/.ssh/known_hosts2"
		}
		for _, f := range strings.Fields(files) {
			hc.KnownHosts = append(hc.KnownHosts, expand(f))
		}
		if g := s.get(alias, "GlobalKnownHostsFile"); g != "" {
			for _, f := range strings.Fields(g) {
				hc.KnownHosts = append(hc.KnownHosts, expand(f))
			}
		} else {
			hc.KnownHosts = append(hc.KnownHosts, "/etc/ssh/ssh_known_hosts")
		}
	}
	if v := strings.ToLower(s.get(alias, "StrictHostKeyChecking")); v != "" {
		switch v {
		case "yes", "accept-new", "no", "off", "ask":
			hc.Strict = v
		default:
			return nil, fmt.Errorf("%w for %s: bad StrictHostKeyChecking %q", ErrConfig, alias, v)
		}
	}
	if opt.AcceptNew {
		hc.Strict = "accept-new"
	}
	var err error
	if hc.ConnectTimeout, err = seconds(alias, "ConnectTimeout", s.get(alias, "ConnectTimeout")); err != nil {
		return nil, err
	}
	// On by default, unlike OpenSSH: a watch must notice a link that went
	// silent (a NAT entry dropped, a host frozen) without waiting for the
	// kernel's TCP timeouts, which take minutes to hours. An explicit 0
	// turns them off, as in OpenSSH.
	hc.AliveInterval = DefaultAliveInterval
	if v := s.get(alias, "ServerAliveInterval"); v != "" {
		if hc.AliveInterval, err = seconds(alias, "ServerAliveInterval", v); err != nil {
			return nil, err
		}
	}
	if v := s.get(alias, "ServerAliveCountMax"); v != "" {
		if hc.AliveCountMax, err = strconv.Atoi(v); err != nil || hc.AliveCountMax < 0 {
			return nil, fmt.Errorf("%w for %s: bad ServerAliveCountMax %q", ErrConfig, alias, v)
		}
	}
	if v := s.get(alias, "ProxyJump"); v != "" && !strings.EqualFold(v, "none") {
		hc.ProxyJump = v
	}
	hc.HostKeyAlias = s.get(alias, "HostKeyAlias")
	if hc.Algos, err = s.loadAlgorithms(alias); err != nil {
		return nil, err
	}
	return hc, nil
}

func seconds(alias, key, v string) (time.Duration, error) {
	if v == "" || v == "0" || strings.EqualFold(v, "none") {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w for %s: bad %s %q", ErrConfig, alias, key, v)
	}
	return time.Duration(n) * time.Second, nil
}
