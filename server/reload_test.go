package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/web"
	"github.com/porthole-chat/porthole/widget"
)

// reloaded returns a copy of the running config with edit applied, as a
// new file read on SIGHUP would give.
func reloaded(h *harness, edit func(*Config)) *Config {
	h.t.Helper()
	next := *h.srv.config()
	next.Bots = slices.Clone(next.Bots)
	for i := range next.Bots {
		next.Bots[i].Origins = slices.Clone(next.Bots[i].Origins)
	}
	edit(&next)
	return &next
}

// botIndex is the index of bot id in cfg.Bots.
func botIndex(t *testing.T, cfg *Config, id string) int {
	i := slices.IndexFunc(cfg.Bots, func(b BotConfig) bool { return b.ID == id })
	if i < 0 {
		t.Fatalf("no bot %s", id)
	}
	return i
}

// send posts a text and waits for its ack: the socket is alive and the
// conversation goes on.
func (c *client) sendAcked(id string) {
	c.t.Helper()
	c.send(&widget.Send{ID: id, Text: "hello " + id})
	c.ack(id)
}

// TestReloadInPlace: a reload that adds an origin and changes the look
// keeps the open socket (it goes on sending and getting acks), accepts
// the new origin, and the next welcome and the eager stylesheet carry
// the new look; the config the server reads is the new one.
func TestReloadInPlace(t *testing.T) {
	h := newHarness(t, func(_ *Config, o *Options) { o.Styles = web.NewStyles([]byte("/*frame*/")) })
	old, _, err := h.dial("acme", "https://www.acme.com")
	if err != nil {
		t.Fatal(err)
	}
	w := old.open("", 0)
	old.sendAcked("before")
	if w.Widget.Title != "Acme" {
		t.Fatalf("welcome title %q before the reload", w.Widget.Title)
	}
	if _, resp, err := h.dial("acme", "https://shop.acme.net"); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the new origin is accepted before the reload: %v", err)
	}

	next := reloaded(h, func(c *Config) {
		i := botIndex(t, c, "acme")
		c.Bots[i].Origins = append(c.Bots[i].Origins, "https://shop.acme.net")
		c.Bots[i].Widget.Title = "Acme, reloaded"
	})
	if err := h.srv.Reload(next); err != nil {
		t.Fatal(err)
	}

	old.sendAcked("after")
	if w := old.hello(w.Visitor, 0); w.Widget.Title != "Acme, reloaded" {
		t.Errorf("a repeated hello on the open socket welcomes with title %q, want the new one", w.Widget.Title)
	}
	fresh, _, err := h.dial("acme", "https://shop.acme.net")
	if err != nil {
		t.Fatalf("the new origin is refused after the reload: %v", err)
	}
	if w := fresh.hello("", 0); w.Widget.Title != "Acme, reloaded" {
		t.Errorf("a new socket's welcome has title %q, want the new one", w.Widget.Title)
	}
	css := get(t, h.hs.URL+"/widget.css?bot=acme&page=en")
	if !strings.Contains(css, "Acme, reloaded") {
		t.Errorf("/widget.css does not carry the new title: %q", css)
	}
	if got := h.srv.config().Bots[botIndex(t, h.srv.config(), "acme")].Widget.Title; got != "Acme, reloaded" {
		t.Errorf("running config title %q", got)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	return string(b)
}

// TestReloadClosesRefused: a reload that drops an origin closes the
// sockets of pages at it with 1008 and a reason naming the origin; a
// socket from an origin still listed, and one without Origin (not a
// browser page), stay. A reload that drops a bot closes its sockets and
// its handshakes then get 404.
func TestReloadClosesRefused(t *testing.T) {
	h := newHarness(t, nil)
	gone, _, err := h.dial("acme", "https://help.acme.org") // *.acme.org
	if err != nil {
		t.Fatal(err)
	}
	gone.open("", 0)
	kept, _, err := h.dial("acme", "https://www.acme.com")
	if err != nil {
		t.Fatal(err)
	}
	kept.open("", 0)
	program := h.connect("acme")
	program.open("", 0)
	demo := h.connect("demo")
	demo.open("", 0)

	if err := h.srv.Reload(reloaded(h, func(c *Config) {
		c.Bots[botIndex(t, c, "acme")].Origins = []string{"https://www.acme.com"}
	})); err != nil {
		t.Fatal(err)
	}
	code, reason := closeOf(t, gone)
	if code != websocket.StatusPolicyViolation || !strings.Contains(reason, "origin https://help.acme.org is no longer allowed") {
		t.Errorf("socket of the dropped origin closed with %d %q, want 1008 naming the origin", code, reason)
	}
	kept.sendAcked("kept")
	program.sendAcked("program")
	demo.sendAcked("demo")
	if _, resp, err := h.dial("acme", "https://help.acme.org"); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("the dropped origin still opens sockets: %v", err)
	}

	if err := h.srv.Reload(reloaded(h, func(c *Config) {
		c.Bots = slices.DeleteFunc(c.Bots, func(b BotConfig) bool { return b.ID == "demo" })
	})); err != nil {
		t.Fatal(err)
	}
	if code, reason := closeOf(t, demo); code != websocket.StatusPolicyViolation || !strings.Contains(reason, "bot demo was removed") {
		t.Errorf("socket of the removed bot closed with %d %q", code, reason)
	}
	if _, resp, err := h.dial("demo", ""); err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("the removed bot still opens sockets: %v", err)
	}
	kept.sendAcked("kept-again")
}

// closeOf reads until the server closes the socket and returns the code
// and reason.
func closeOf(t *testing.T, c *client) (websocket.StatusCode, string) {
	t.Helper()
	for {
		_, err := c.read(5 * time.Second)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("socket not closed with a close frame: %v", err)
		}
		return ce.Code, ce.Reason
	}
}

// TestReloadRestartOnly: what cannot change in place keeps its running
// value, with a warning naming the field and "restart to change it",
// and the rest of the reload applies; the limits change in the limiter.
func TestReloadRestartOnly(t *testing.T) {
	var logs syncBuffer
	h := newHarness(t, func(_ *Config, o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	running := *h.srv.config()
	next := reloaded(h, func(c *Config) {
		c.Listen = "127.0.0.1:9999"
		c.PublicURL = "https://chat.example.com"
		c.SessionKeys = []Secret{Secret(strings.Repeat("k", 32))}
		c.Store.Driver = "redis"
		c.Upstream.Timeout = Duration(time.Minute)
		c.Limits.HeaderTimeout = Duration(time.Minute)
		c.Limits.Burst = 1
		c.Bots[botIndex(t, c, "acme")].Widget.Title = "Applied"
	})
	if err := h.srv.Reload(next); err != nil {
		t.Fatal(err)
	}
	cur := h.srv.config()
	if cur.Listen != running.Listen || cur.PublicURL != running.PublicURL || len(cur.SessionKeys) != 0 ||
		cur.Store != running.Store || cur.Upstream != running.Upstream || cur.Limits.HeaderTimeout != running.Limits.HeaderTimeout {
		t.Errorf("a restart-only field changed: %+v", cur)
	}
	if cur.Bots[botIndex(t, cur, "acme")].Widget.Title != "Applied" || cur.Limits.Burst != 1 {
		t.Error("the rest of the reload was not applied")
	}
	for _, f := range []string{"listen", "public_url", "session_keys", "store", "upstream", "limits.header_timeout"} {
		if !strings.Contains(logs.String(), "config reload: "+f+" changed") || !strings.Contains(logs.String(), "field="+f) {
			t.Errorf("no warning names %s:\n%s", f, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "restart to change it") {
		t.Errorf("the warning does not say to restart:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), strings.Repeat("k", 32)) {
		t.Error("a session key reached the log")
	}
	// Burst 1 now: a second message at once is refused.
	c := h.connect("acme")
	c.open("", 0)
	c.sendAcked("one")
	c.send(&widget.Send{ID: "two", Text: "two"})
	f := c.waitFor("an answer to two", func(f widget.Frame) bool {
		switch f := f.(type) {
		case *widget.Ack:
			return f.ID == "two"
		case *widget.ErrorFrame:
			return f.ID == "two"
		}
		return false
	})
	if e, ok := f.(*widget.ErrorFrame); !ok || e.Code != widget.CodeRateLimited {
		t.Errorf("second message after lowering the burst to 1: %s, want rate_limited", widget.Encode(f))
	}
}

// TestReloadProvider: a bot whose platform settings change gets a new
// provider (the platform's callbacks are checked with the new verify
// token at once), and the old one is closed once its calls have had the
// upstream timeout to end. A bot whose provider cannot be made refuses
// the whole reload, and nothing changes.
func TestReloadProvider(t *testing.T) {
	const file = `
bots:
  - id: cl
    provider: chatlayer
    origins: ["https://www.acme.com"]
    chatlayer:
      base_url: "http://127.0.0.1:9"
      channel_id: "ch"
      token: "tok"
      verify_token: "%s"
    widget:
      title: "%s"
`
	parse := func(verify, title string) *Config {
		c, err := ParseConfig(fmt.Appendf(nil, file, verify, title), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	retry := testRetry
	retry.Timeout = 200 * time.Millisecond
	srv, err := New(parse("verify-one", "One"), Options{DataDir: t.TempDir(), Store: store.NewMemory(), Retry: &retry,
		Logger: slog.New(slog.NewTextHandler(newTestWriter(t), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	hook := func(verify string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/hooks/chatlayer/cl", strings.NewReader(`{"verifyToken":"`+verify+`"}`))
		srv.ServeHTTP(rec, req)
		return rec.Code
	}
	if hook("verify-one") == http.StatusUnauthorized || hook("verify-two") != http.StatusUnauthorized {
		t.Fatal("the first verify token is not the one checked")
	}
	first := srv.service.provider("cl")

	// The title alone changes: the provider stays.
	if err := srv.Reload(parse("verify-one", "Two")); err != nil {
		t.Fatal(err)
	}
	if srv.service.provider("cl") != first {
		t.Error("a reload that changed no platform setting made a new provider")
	}

	if err := srv.Reload(parse("verify-two", "Two")); err != nil {
		t.Fatal(err)
	}
	if srv.service.provider("cl") == first {
		t.Fatal("a new verify token did not make a new provider")
	}
	if hook("verify-two") == http.StatusUnauthorized || hook("verify-one") != http.StatusUnauthorized {
		t.Error("callbacks are not checked with the new verify token after the reload")
	}
	old := first.(provider.Webhook)
	direct := func() int {
		rec := httptest.NewRecorder()
		old.ServeWebhook(rec, httptest.NewRequest("POST", "/", strings.NewReader(`{"verifyToken":"verify-one"}`)))
		return rec.Code
	}
	if code := direct(); code == http.StatusServiceUnavailable {
		t.Error("the old provider was closed before its calls had the upstream timeout to end")
	}
	deadline := time.Now().Add(5 * time.Second)
	for direct() != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("the old provider is never closed")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A provider that cannot be made: nothing changes.
	bad := parse("verify-three", "Three")
	bad.Bots = append(bad.Bots, BotConfig{ID: "ghost", Provider: "no-such-platform", Origins: []string{"self"}})
	err = srv.Reload(bad)
	if err == nil || !strings.Contains(err.Error(), "bot ghost") || !strings.Contains(err.Error(), "running configuration is kept") {
		t.Fatalf("reload with a provider that cannot be made: %v", err)
	}
	if srv.bot("ghost") != nil || srv.bot("cl").Config.Widget.Title != "Two" || hook("verify-three") != http.StatusUnauthorized {
		t.Error("a refused reload changed the running configuration")
	}
}

// TestReloadRace reloads while sockets open, talk and read the config,
// for the race detector: every request sees one whole configuration.
func TestReloadRace(t *testing.T) {
	h := newHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			title := "Acme " + strings.Repeat("!", i%3)
			h.srv.Reload(reloaded(h, func(c *Config) {
				c.Bots[botIndex(t, c, "acme")].Widget.Title = title
				c.Limits.Burst = 10 + i%5
			}))
			time.Sleep(time.Millisecond)
		}
	}()
	for i := range 5 {
		c, _, err := h.dial("acme", "https://www.acme.com")
		if err != nil {
			t.Fatal(err)
		}
		if w := c.open("", 0); !strings.HasPrefix(w.Widget.Title, "Acme") {
			t.Errorf("welcome title %q", w.Widget.Title)
		}
		c.sendAcked("m" + string(rune('a'+i)))
	}
	cancel()
	wg.Wait()
}

// TestLimiterSetLimits: a reload's limits apply to the buckets already
// in use, in memory and on Redis (single and Cluster): a visitor who
// has used some of a burst of 10 is held to a new burst of 1, and the
// socket cap per address changes for the next socket.
func TestLimiterSetLimits(t *testing.T) {
	check := func(t *testing.T, l Limiter) {
		ctx := t.Context()
		for i := range 3 {
			if ok, _ := l.Allow(ctx, "v1", "192.0.2.1"); !ok {
				t.Fatalf("message %d refused within the burst of 10", i)
			}
		}
		if ok, release := l.Connect(ctx, "192.0.2.9"); !ok {
			t.Fatal("first socket refused")
		} else {
			defer release()
		}
		l.SetLimits(Limits{MessagesPerMinute: 1, Burst: 1, IPMessagesPerMinute: 6000, StartsPerMinute: 6, StartBurst: 20, BotStartsPerMinute: 300, ConnectionsPerIP: 1})
		ok1, _ := l.Allow(ctx, "v1", "192.0.2.1")
		ok2, wait := l.Allow(ctx, "v1", "192.0.2.1")
		if ok1 && ok2 {
			t.Error("two messages at once allowed after lowering the burst to 1")
		}
		if !ok2 && wait <= 0 {
			t.Error("a refusal without a wait")
		}
		if ok, release := l.Connect(ctx, "192.0.2.9"); ok {
			release()
			t.Error("a second socket from the address allowed after lowering connections_per_ip to 1")
		}
	}
	base := Limits{MessagesPerMinute: 1, Burst: 10, IPMessagesPerMinute: 6000, StartsPerMinute: 6, StartBurst: 20, BotStartsPerMinute: 300, ConnectionsPerIP: 4}
	t.Run("memory", func(t *testing.T) { check(t, NewMemoryLimiter(base)) })
	for name, open := range limiterBackends(t) {
		t.Run(name, func(t *testing.T) { check(t, open(t, 1, base, 0)[0]) })
	}
}
