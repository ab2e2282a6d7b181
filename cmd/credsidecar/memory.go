package main

import (
	"runtime/debug"

	"github.com/credsidecar/credsidecar/config"
)

// largeConfig is the number of clients from which loading a config leaves
// megabytes of garbage (the YAML tree, the validator's maps: about 3 KiB
// per client, against under 1 KiB kept).
const largeConfig = 1000

// releaseLoadGarbage returns the memory a large config's load used and no
// longer needs to the system at once. The runtime would keep it mapped for
// minutes (its scavenger returns idle pages slowly), so a node whose config
// lists 10 000 clients would hold two to three times its live heap after
// every start and reload. A small config's load leaves too little to be
// worth the collection this forces.
func releaseLoadGarbage(cfg *config.Config) {
	if len(cfg.Clients) >= largeConfig {
		debug.FreeOSMemory()
	}
}
