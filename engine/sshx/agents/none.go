//go:build !gosync_agents

package agents

import "embed"

// A development build carries no agents.
var embedded embed.FS
