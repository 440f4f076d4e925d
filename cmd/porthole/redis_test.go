package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/porthole-chat/porthole/server/redistest"
	"github.com/porthole-chat/porthole/widget"
)

// TestRedisStoreSurvivesRestart: with store driver redis, the binary
// keeps its conversations in Redis: a visitor's message is there after
// the process is killed and a new one, with an empty data folder,
// starts on the same Redis.
func TestRedisStoreSurvivesRestart(t *testing.T) {
	r := redistest.Start(t)
	cfg := filepath.Join(t.TempDir(), "porthole.yaml")
	if err := os.WriteFile(cfg, []byte(`store: {driver: redis, url: "${REDIS_URL}"}
session_keys: ["${SESSION_KEY}"]
bots:
  - id: demo
    provider: demo
    origins: ["self"]
    demo: {typing_delay: 1ms}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REDIS_URL", r.URL)
	t.Setenv("SESSION_KEY", "redis-test-session-key-0123456789abcdef")
	addr := freeAddr(t)
	p := launch(t, addr, t.TempDir(), "--config", cfg)
	c, _, err := dial(t, p, "")
	if err != nil {
		t.Fatal(err)
	}
	c.hello("", 0)
	w := c.start("st-1")
	c.send(&widget.Send{ID: "m1", Text: "kept in Redis"})
	c.ack("m1")
	// The greeting is stored by the bot's own turn, which can come after
	// the ack: wait for it, so that the kill finds both stored.
	c.until("the greeting", func(f widget.Frame) bool {
		m, ok := f.(*widget.Msg)
		return ok && m.From == "bot"
	})
	p.kill()

	p2 := launch(t, addr, t.TempDir(), "--config", cfg)
	c2, _, err := dial(t, p2, "")
	if err != nil {
		t.Fatal(err)
	}
	again := c2.hello(w.Visitor, 0)
	if again.Conversation != w.Conversation || again.Last < 2 {
		t.Fatalf("after a restart on the same Redis: welcome %+v, want conversation %s with the greeting and the message", again, w.Conversation)
	}
	c2.until("the stored message", func(f widget.Frame) bool {
		m, ok := f.(*widget.Msg)
		return ok && m.Body.Text == "kept in Redis"
	})
}
