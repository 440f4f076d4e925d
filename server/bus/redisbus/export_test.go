package redisbus

import (
	"testing"
	"time"
)

// SetIdlePing makes the readers ping after d of silence, for the test.
func SetIdlePing(t *testing.T, d time.Duration) {
	old := idlePing
	idlePing = d
	t.Cleanup(func() { idlePing = old })
}
