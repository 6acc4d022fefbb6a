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
