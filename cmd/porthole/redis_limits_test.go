package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/redistest"
	"github.com/porthole-chat/porthole/widget"
)

// TestRedisLimitsSharedByProcesses: two `porthole serve` processes on
// one Redis count a visitor's messages and an address's sockets once:
// the visitor's burst of 3 spent over both is refused with rate_limited
// on both, and the address's connections_per_ip of 2 held over both
// refuses a third socket on either, until one closes.
func TestRedisLimitsSharedByProcesses(t *testing.T) {
	r := redistest.Start(t)
	cfg := filepath.Join(t.TempDir(), "porthole.yaml")
	if err := os.WriteFile(cfg, []byte(`store: {driver: redis, url: "${REDIS_URL}"}
session_keys: ["${SESSION_KEY}"]
limits: {messages_per_minute: 1, burst: 3, connections_per_ip: 2}
bots:
  - id: demo
    provider: demo
    origins: ["self"]
    demo: {typing_delay: 1ms}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REDIS_URL", r.URL)
	t.Setenv("SESSION_KEY", "redis-limits-session-key-0123456789abcdef")
	a := launch(t, freeAddr(t), t.TempDir(), "--config", cfg)
	b := launch(t, freeAddr(t), t.TempDir(), "--config", cfg)

	ca, _, err := dial(t, a, "")
	if err != nil {
		t.Fatal(err)
	}
	ca.hello("", 0)
	w := ca.start("st-1")
	for _, id := range []string{"m1", "m2"} {
		ca.send(&widget.Send{ID: id, Text: id})
		ca.ack(id)
	}
	cb, _, err := dial(t, b, "")
	if err != nil {
		t.Fatal(err)
	}
	cb.hello(w.Visitor, 0)
	cb.send(&widget.Send{ID: "m3", Text: "m3"})
	cb.ack("m3")
	refused := func(c *wsc, id string) {
		t.Helper()
		c.send(&widget.Send{ID: id, Text: id})
		f := c.until("the answer to "+id, func(f widget.Frame) bool {
			a, isAck := f.(*widget.Ack)
			e, isErr := f.(*widget.ErrorFrame)
			return isAck && a.ID == id || isErr && e.ID == id
		})
		e, ok := f.(*widget.ErrorFrame)
		if !ok || e.Code != widget.CodeRateLimited || e.RetryMS <= 0 {
			t.Fatalf("%s, over the visitor's burst of 3 spent on two processes, got %+v; want rate_limited with retry_ms", id, f)
		}
	}
	refused(cb, "m4")
	refused(ca, "m5")

	// The address holds 2 sockets, one on each process: a third is
	// refused on both.
	for _, p := range []*proc{a, b} {
		if _, resp, err := dial(t, p, ""); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a third socket of the address on %s: %v, %v; want 429", p.addr, err, resp)
		}
	}
	ca.c.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, resp, err := dial(t, b, "")
		if err == nil {
			c.hello(w.Visitor, 0)
			break
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after a socket on the other process closed: %v, %v; want a socket", err, resp)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
