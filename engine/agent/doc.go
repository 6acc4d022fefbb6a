// Package agent is the mirror side of gosync: it serves the wire protocol
// on a byte stream and applies what the client asks inside an os.Root
// opened on the mirror's directory, so no message and no symlink can make
// it read, write or delete anything outside that directory.
//
// Every file is written to a temporary beside its target, verified against
// the whole-file hash the client sent, given its mode, owner and mtime,
// and only then renamed over the target: a reader of the mirror sees the
// old or the new content, never a mix. Temporaries left by an interrupted
// run are removed by the next full scan.
//
// As the forced command of an SSH key (`gosync agent --restrict ROOT` in
// authorized_keys), the agent is also a trust boundary against its own
// client: Restriction fixes the root, and one policy, applied to each
// message before it is handled (admit), strips setuid, setgid and sticky
// bits and owners and refuses commands unless allowed. An agent whose
// root the server fixed greets first, so a client that sent a probe
// script instead knows at once that it reached an agent.
//
// The agent decides nothing: it does not compare trees, plan, or know about
// ignore rules, watching or transports. It runs in-process over a pipe for
// local mirrors and as `gosync agent ROOT` at the other end of SSH.
package agent
