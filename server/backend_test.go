package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/server/redistest"
)

// TestRedisBackend: driver redis opens the Redis store and a Redis bus
// over one client, and a server on them serves a conversation and says
// it is ready, and unready when Redis is gone.
func TestRedisBackend(t *testing.T) {
	r := redistest.Start(t)
	be, err := OpenBackend(&Config{Store: StoreConfig{Driver: "redis", URL: Secret(r.URL)}, Limits: DefaultConfig().Limits}, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := be.Bus
	if _, ok := b.(*bus.Local); ok {
		t.Fatal("driver redis got the in-process bus")
	}
	if _, ok := be.Limits.(*redisLimiter); !ok {
		t.Fatalf("driver redis got limits %T, want them counted in Redis", be.Limits)
	}
	h := newHarness(t, func(_ *Config, o *Options) { o.Store, o.Bus, o.Limits = be.Store, b, be.Limits })
	c := h.connect("acme")
	w := c.open("", 0)
	if w.Conversation == "" {
		t.Fatal("no conversation")
	}
	got := make(chan bus.Event, 1)
	cancel := b.Subscribe(w.Conversation, func(ev bus.Event) {
		select {
		case got <- ev:
		default:
		}
	})
	defer cancel()
	if err := b.Publish(t.Context(), bus.Event{Conversation: w.Conversation, Seq: 99}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("an event published on the Redis bus did not arrive")
	}
	ready := func() int {
		rec := httptest.NewRecorder()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.srv.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if code := ready(); code != http.StatusOK {
		t.Fatalf("/readyz on a live Redis = %d", code)
	}
	r.Stop()
	if code := ready(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis stopped = %d, want 503", code)
	}
}

// TestRedisStoreConfig: driver redis needs a redis URL, and says so.
func TestRedisStoreConfig(t *testing.T) {
	for _, tc := range []struct{ store, want string }{
		{"store: {driver: redis}\n", "store.url: is empty"},
		{"store: {driver: redis, url: \"http://localhost:6379\"}\n", "store.url: must be a redis://"},
		{"store: {driver: redis, url: \"redis://localhost:6379/0\"}\n", ""},
		{"store: {driver: redis, url: \"redis://localhost:6379/0\", replicas: 1, replica_timeout: 500ms}\n", ""},
		{"store: {driver: redis, url: \"redis://localhost:6379/0\", replicas: -1}\n", "store.replicas: -1 is negative"},
		{"store: {driver: bolt, replicas: 1}\n", "store.replicas: only applies to driver redis"},
	} {
		_, err := ParseConfig([]byte(tc.store+"bots:\n  - id: a\n    provider: demo\n    origins: [self]\n"), testEnv)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.store, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want it to say %q", tc.store, err, tc.want)
		}
	}
}
