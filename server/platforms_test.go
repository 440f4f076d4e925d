package server

import "github.com/porthole-chat/porthole/server/platforms"

// The server names no platform: the binary registers them, and so do its
// tests.
func init() { platforms.Register() }
