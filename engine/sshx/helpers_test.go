package sshx_test

import "golang.org/x/crypto/ssh"

func sshMarshal(k ssh.PublicKey) []byte { return ssh.MarshalAuthorizedKey(k) }
