// Package endpoint parses destination arguments: a local path,
// scp-style [user@]host:path, or ssh://[user@]host[:port]/path. It only
// reads strings; connecting is the transports' business.
package endpoint

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Endpoint is a parsed destination.
type Endpoint struct {
	Raw string // as the user wrote it
	// Path is the local path, or the remote path: "" or relative is under
	// the remote user's home; "~", "~/x", "~user/x" are expanded on the
	// remote host, as scp and rsync do.
	Path string
	// Remote only:
	User string
	Host string // without brackets for IPv6
	Port int    // 0: from ssh_config or the default
}

// Remote reports whether the endpoint is reached over SSH.
func (e Endpoint) Remote() bool { return e.Host != "" }

func (e Endpoint) String() string { return e.Raw }

// Parse reads one destination argument.
//
// As with scp and rsync, a colon before the first slash makes an argument
// remote: "web1:/var/www", "deploy@web1:site". A local path with a colon
// can be written "./a:b" or as an absolute path.
//
// On Windows, paths in Windows forms are local too: a drive letter
// ("C:\work\site", "C:/work/site", "C:site"), a UNC path
// ("\\server\share\x") and a backslash before the first colon
// (".\a:b"). Elsewhere those stay what they always were (a host "C"):
// a one-letter host name is legal on Unix and a script may use one.
func Parse(s string) (Endpoint, error) { return parse(s, windowsPaths) }

func parse(s string, windows bool) (Endpoint, error) {
	e := Endpoint{Raw: s}
	if s == "" {
		return e, fmt.Errorf("empty destination")
	}
	if strings.HasPrefix(s, "ssh://") {
		return parseURL(s)
	}
	if windows && windowsLocal(s) {
		e.Path = s
		return e, nil
	}
	colon := strings.IndexByte(s, ':')
	slash := strings.IndexByte(s, '/')
	if windows {
		if b := strings.IndexByte(s, '\\'); b >= 0 && (slash < 0 || b < slash) {
			slash = b
		}
	}
	if s[0] == '[' || (strings.Contains(s, "@[") && colon > strings.Index(s, "@[")) {
		return parseBracketed(s)
	}
	if colon < 0 || (slash >= 0 && slash < colon) {
		e.Path = s
		return e, nil
	}
	hostPart, p := s[:colon], s[colon+1:]
	if hostPart == "" {
		return e, fmt.Errorf("destination %q: missing host before ':' (write ./%s for a local path)", s, s)
	}
	user, host := splitUser(hostPart)
	if err := checkHost(s, user, host); err != nil {
		return e, err
	}
	if err := checkTilde(s, p); err != nil {
		return e, err
	}
	e.User, e.Host, e.Path = user, host, p
	return e, nil
}

// windowsLocal reports whether s starts as a Windows drive path or a
// UNC path (\\server\share, \\?\C:\, //server/share).
func windowsLocal(s string) bool {
	if len(s) >= 2 && s[1] == ':' && ('a' <= s[0] && s[0] <= 'z' || 'A' <= s[0] && s[0] <= 'Z') {
		return true
	}
	return strings.HasPrefix(s, `\\`) || strings.HasPrefix(s, "//")
}

// checkTilde refuses a remote ~user whose name the remote shell could
// take for something else than a user name.
func checkTilde(raw, p string) error {
	if !strings.HasPrefix(p, "~") {
		return nil
	}
	user, _, _ := strings.Cut(p[1:], "/")
	if user != "" && !ValidTildeUser(user) {
		return fmt.Errorf("destination %q: %q after ~ is not a user name (write ./~%s for a directory of that name)", raw, user, p[1:])
	}
	return nil
}

// ValidTildeUser reports whether name may follow ~ in a remote path: the
// portable login names (letters, digits, '.', '_', '-', not starting with
// '-'), which a POSIX shell's tilde expansion takes literally.
func ValidTildeUser(name string) bool {
	if name == "" || name[0] == '-' {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

func splitUser(s string) (user, host string) {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return "", s
}

func checkHost(raw, user, host string) error {
	if host == "" {
		return fmt.Errorf("destination %q: missing host name", raw)
	}
	if strings.ContainsAny(host, " \t\n/\\@") || strings.HasPrefix(host, "-") {
		return fmt.Errorf("destination %q: invalid host name %q", raw, host)
	}
	if strings.ContainsAny(user, " \t\n:/") || strings.HasPrefix(user, "-") {
		return fmt.Errorf("destination %q: invalid user name %q", raw, user)
	}
	return nil
}

// parseBracketed handles [user@][v6addr]:path.
func parseBracketed(s string) (Endpoint, error) {
	e := Endpoint{Raw: s}
	user := ""
	rest := s
	if at := strings.Index(s, "@["); at >= 0 {
		user, rest = s[:at], s[at+1:]
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 || end+1 >= len(rest) || rest[end+1] != ':' {
		return e, fmt.Errorf("destination %q: expected [address]:path", s)
	}
	host := rest[1:end]
	if err := checkHost(s, user, host); err != nil {
		return e, err
	}
	if err := checkTilde(s, rest[end+2:]); err != nil {
		return e, err
	}
	e.User, e.Host, e.Path = user, host, rest[end+2:]
	return e, nil
}

func parseURL(s string) (Endpoint, error) {
	e := Endpoint{Raw: s}
	u, err := url.Parse(s)
	if err != nil {
		return e, fmt.Errorf("destination %q: %v", s, err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return e, fmt.Errorf("destination %q: unexpected query or fragment", s)
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return e, fmt.Errorf("destination %q: passwords in URLs are not supported; use keys or ssh-agent", s)
		}
		e.User = u.User.Username()
	}
	e.Host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return e, fmt.Errorf("destination %q: invalid port %q", s, p)
		}
		e.Port = n
	}
	if err := checkHost(s, e.User, e.Host); err != nil {
		return e, err
	}
	if u.Path == "" {
		return e, fmt.Errorf("destination %q: missing path (ssh://host/abs/path)", s)
	}
	e.Path = u.Path
	// As in OpenSSH's scp and sftp URIs, /~/x and /~user/x are under a
	// home directory.
	if strings.HasPrefix(e.Path, "/~") {
		e.Path = e.Path[1:]
		if err := checkTilde(s, e.Path); err != nil {
			return e, err
		}
	}
	return e, nil
}
