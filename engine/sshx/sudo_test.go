package sshx

import (
	"errors"
	"strings"
	"testing"
)

// What sudo 1.9 and the shells print when the agent is not started, as
// seen on Debian 12 (sudo 1.9.13) and in the shells' sources.
func TestClassifySudo(t *testing.T) {
	const prog = "/usr/local/bin/gosync"
	for _, tt := range []struct {
		stderr string
		want   sudoProblem
	}{
		{"sudo: a password is required\n", sudoPassword},
		{"sudo: unable to resolve host web1: Name or service not known\nsudo: a password is required\n", sudoPassword},
		{"deploy is not in the sudoers file.  This incident will be reported.\n", sudoPassword},
		{"Sorry, user deploy is not allowed to execute '/usr/local/bin/gosync agent /var/www' as root on web1.\n", sudoNotAllowed},
		{"sudo: sorry, you must have a tty to run sudo\n", sudoNoTTY},
		{"sudo: /usr/local/bin/gosync: command not found\n", sudoNoProgram},
		{"sh: 1: exec: sudo: not found\n", sudoMissing},
		{"bash: line 1: exec: sudo: not found\n", sudoMissing},
		{"bash: sudo: command not found\n", sudoMissing},
		{"zsh:1: command not found: sudo\n", sudoMissing},
		{"sudo: account validation failure, is your account locked?\n", sudoOther},
		{"gosync agent: refusing to serve /: the file system root\n", sudoOK},
		{"", sudoOK},
	} {
		if got, _ := classifySudo(tt.stderr, prog); got != tt.want {
			t.Errorf("classifySudo(%q) = %d, want %d", tt.stderr, got, tt.want)
		}
	}
}

func TestSudoRoot(t *testing.T) {
	const prog = "/usr/local/bin/gosync"
	for _, tt := range []struct{ prog, root, want string }{
		{prog, "/var/www", "/var/www"},
		{prog, "/var/www/", "/var/www"},
		{prog, "/var/www//", "/var/www"},
		{prog, "/srv/example.com/public_html", "/srv/example.com/public_html"},
		{prog, "/", "/"}, // the agent refuses it, with its own message
		{prog, "www", ""},
		{prog, "~/www", ""},
		{prog, "~deploy/www", ""},
		{prog, "", ""},
		{prog, ".", ""},
		{prog, "/var//www", ""},
		{prog, "/var/./www", ""},
		{prog, "/var/../www", ""},
		{prog, "/var/my www", ""},
		{prog, "/var/www*", ""},
		{prog, "/var/w,w", ""},
		{prog, "/var/w:w", ""},
		{prog, `/var/w\w`, ""},
		{"", "/var/www", ""},
		{"gosync", "/var/www", ""},
		{"/usr/local/bin/../bin/gosync", "/var/www", ""},
		{"/usr/local/bin/go sync", "/var/www", ""},
	} {
		got, err := SudoRoot(tt.prog, tt.root)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("SudoRoot(%q, %q) = %q, %v; want %q", tt.prog, tt.root, got, err, tt.want)
		}
		if err != nil && !errors.Is(err, ErrRemotePath) && !errors.Is(err, ErrSudoProgram) {
			t.Errorf("SudoRoot(%q, %q): %v is neither ErrRemotePath nor ErrSudoProgram", tt.prog, tt.root, err)
		}
	}
}

// Every message is one line that names the host and, where a rule is
// missing, the line to add; all are ErrSudo and ErrAgent (permanent).
func TestSudoMessages(t *testing.T) {
	rule := "deploy ALL=(root) NOPASSWD: /usr/local/bin/gosync agent --restrict --allow-owner /var/www"
	for _, tt := range []struct {
		p        sudoProblem
		withPass bool
		want     []string
	}{
		{sudoPassword, false, []string{"sudo on deploy@web1 asks for a password", "not in sudoers", rule}},
		{sudoPassword, true, []string{"only with a password", "NOPASSWD", rule}},
		{sudoNotAllowed, false, []string{"does not let deploy run", rule}},
		{sudoNoTTY, false, []string{"requiretty", `"Defaults:deploy !requiretty"`}},
		{sudoNoProgram, false, []string{"there is no /usr/local/bin/gosync", "install -o root"}},
		{sudoMissing, false, []string{"deploy@web1 has no sudo", "apt-get install sudo", rule}},
		{sudoOther, false, []string{"sudo: odd", rule}},
	} {
		err := sudoMessage(tt.p, tt.withPass, "sudo: odd", "deploy@web1", "deploy", "/usr/local/bin/gosync", "/var/www")
		if err == nil || !errors.Is(err, ErrSudo) || !Permanent(err) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("problem %d: %v", tt.p, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("problem %d: %q does not say %q", tt.p, err, w)
			}
		}
	}
	if err := sudoMessage(sudoOK, false, "", "web1", "deploy", "/usr/local/bin/gosync", "/var/www"); err != nil {
		t.Errorf("sudoOK: %v", err)
	}
}
