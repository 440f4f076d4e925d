package store_test

import (
	"testing"

	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/server/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := store.NewMemory()
		t.Cleanup(func() { s.Close() })
		return s
	})
}
