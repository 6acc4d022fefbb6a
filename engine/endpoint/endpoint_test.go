package endpoint

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in               string
		path, user, host string
		port             int
		err              string
	}{
		{in: "/srv/www", path: "/srv/www"},
		{in: "site", path: "site"},
		{in: "./a:b", path: "./a:b"},
		{in: "/abs/a:b", path: "/abs/a:b"},
		{in: "dir/x:y", path: "dir/x:y"},
		{in: "web1:/var/www", host: "web1", path: "/var/www"},
		{in: "web1:", host: "web1", path: ""},
		{in: "web1:site", host: "web1", path: "site"},
		{in: "deploy@prod:/var/www", user: "deploy", host: "prod", path: "/var/www"},
		{in: "deploy@prod.example.com:www/x", user: "deploy", host: "prod.example.com", path: "www/x"},
		{in: "[::1]:/srv", host: "::1", path: "/srv"},
		{in: "me@[fe80::1%eth0]:dir", user: "me", host: "fe80::1%eth0", path: "dir"},
		{in: "ssh://deploy@10.0.0.5:2222/var/www", user: "deploy", host: "10.0.0.5", port: 2222, path: "/var/www"},
		{in: "ssh://host/srv", host: "host", path: "/srv"},
		{in: "ssh://[::1]:22/srv", host: "::1", port: 22, path: "/srv"},
		{in: "web1:~", host: "web1", path: "~"},
		{in: "web1:~/www", host: "web1", path: "~/www"},
		{in: "deploy@web1:~/my site/it's", user: "deploy", host: "web1", path: "~/my site/it's"},
		{in: "web1:~deploy/www", host: "web1", path: "~deploy/www"},
		{in: "web1:~web-1.x_y", host: "web1", path: "~web-1.x_y"},
		{in: "[::1]:~/www", host: "::1", path: "~/www"},
		{in: "ssh://web1/~/www", host: "web1", path: "~/www"},
		{in: "ssh://deploy@web1:2222/~deploy/www", user: "deploy", host: "web1", port: 2222, path: "~deploy/www"},
		{in: "ssh://web1/~", host: "web1", path: "~"},
		{in: "ssh://web1/srv/~x", host: "web1", path: "/srv/~x"},
		{in: "web1:www/~x", host: "web1", path: "www/~x"},
		{in: "./~x", path: "./~x"},
		{in: "web1:~$(reboot)/x", err: `"$(reboot)" after ~ is not a user name`},
		{in: "web1:~a b/x", err: "is not a user name"},
		{in: "web1:~-x/y", err: "is not a user name"},
		{in: "web1:~'x'", err: "is not a user name"},
		{in: "ssh://web1/~a;b/x", err: "is not a user name"},
		{in: "[::1]:~`x`", err: "is not a user name"},
		{in: "", err: "empty destination"},
		{in: ":foo", err: "missing host"},
		{in: "@:foo", err: "missing host name"},
		{in: "-oProxyCommand=x:foo", err: "invalid host name"},
		{in: "ssh://host", err: "missing path"},
		{in: "ssh://host:99999/x", err: "invalid port"},
		{in: "ssh://u:pw@host/x", err: "passwords in URLs"},
		{in: "[::1]/x", err: "expected [address]:path"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := Parse(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse(%q) error = %v, want containing %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if e.Path != tt.path || e.User != tt.user || e.Host != tt.host || e.Port != tt.port {
				t.Fatalf("Parse(%q) = %+v, want path=%q user=%q host=%q port=%d", tt.in, e, tt.path, tt.user, tt.host, tt.port)
			}
			if e.Remote() != (tt.host != "") {
				t.Fatalf("Remote() = %v", e.Remote())
			}
		})
	}
}

// Windows path forms are local on Windows and keep their Unix meaning
// elsewhere; parse takes the platform as a parameter so that both run
// everywhere.
func TestParseWindowsForms(t *testing.T) {
	tests := []struct {
		in         string
		windows    bool
		path, host string
	}{
		{in: `C:\work\site`, windows: true, path: `C:\work\site`},
		{in: `C:/work/site`, windows: true, path: `C:/work/site`},
		{in: `c:\`, windows: true, path: `c:\`},
		{in: `D:site`, windows: true, path: `D:site`},
		{in: `\\server\share\x`, windows: true, path: `\\server\share\x`},
		{in: `\\?\C:\very\long`, windows: true, path: `\\?\C:\very\long`},
		{in: `//server/share/x`, windows: true, path: `//server/share/x`},
		{in: `.\a:b`, windows: true, path: `.\a:b`},
		{in: `out\www`, windows: true, path: `out\www`},
		{in: `deploy@prod:/var/www`, windows: true, host: "prod", path: "/var/www"},
		{in: `web1:site`, windows: true, host: "web1", path: "site"},
		{in: `ssh://web1/srv`, windows: true, host: "web1", path: "/srv"},
		// On Unix a one-letter host stays a host, as rsync and scp read it.
		{in: `C:/work/site`, windows: false, host: "C", path: "/work/site"},
		{in: `C:\work\site`, windows: false, host: "C", path: `\work\site`},
		{in: `//server/share/x`, windows: false, path: `//server/share/x`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := parse(tt.in, tt.windows)
			if err != nil {
				t.Fatalf("parse(%q, windows=%v): %v", tt.in, tt.windows, err)
			}
			if e.Path != tt.path || e.Host != tt.host {
				t.Fatalf("parse(%q, windows=%v) = %+v, want path=%q host=%q", tt.in, tt.windows, e, tt.path, tt.host)
			}
		})
	}
}
