//go:build gosync_agents

package agents

import "embed"

// The release build (cmd/gosync-dist) packs the agents here before
// building with -tags gosync_agents; without them this does not compile,
// which is what a release build should do.
//
//go:embed agents.txt gosync-agent-*.zst
var embedded embed.FS
