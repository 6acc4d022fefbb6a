// Package sshtest starts a real OpenSSH sshd on 127.0.0.1 for tests and the
// benchmark (Linux only: it relies on Pdeathsig and process groups to leave
// nothing running), and a loopback proxy that can freeze a link.
package sshtest
