package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

// barrier sends a frame the server refuses and waits for that refusal:
// replies to a socket's frames go out in order, so every answer to what
// was sent before it has arrived by then (kept in c.seen).
func (c *client) barrier() {
	c.t.Helper()
	c.sendRaw([]byte(`{"type":"barrier"}`))
	c.waitFor("the barrier's error", func(f widget.Frame) bool {
		e, ok := f.(*widget.ErrorFrame)
		return ok && e.ID == "" && strings.Contains(e.Message, "barrier")
	})
}

// answered returns the ids of the acks and error frames held in c.seen.
func (c *client) answered() []string {
	var ids []string
	for _, f := range c.seen {
		switch f := f.(type) {
		case *widget.Ack:
			ids = append(ids, "ack:"+f.ID)
		case *widget.ErrorFrame:
			ids = append(ids, f.Code+":"+f.ID)
		}
	}
	return ids
}

// TestHelloCreatesNothing: a hello, with or without a visitor token,
// creates no conversation and makes no upstream call. The welcome names
// no conversation but a visitor, whose token a later hello brings back;
// a read frame meanwhile is ignored.
func TestHelloCreatesNothing(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect("acme")
	w := c.hello("", 0)
	if w.Conversation != "" || w.Last != 0 || w.Visitor == "" || w.Widget.Title != "Acme" {
		t.Fatalf("welcome = %+v, want a visitor token, the look and no conversation", w)
	}
	visitor, ok := h.srv.keys.Visitor("acme", w.Visitor)
	if !ok {
		t.Fatal("the welcome's visitor token does not decode")
	}
	c.send(&widget.Read{Seq: 3})
	c.send(&widget.Hello{Bot: "acme", Visitor: w.Visitor, After: 2}) // a repeated hello
	if again := c.waitFor("the second welcome", isType(widget.TypeWelcome)).(*widget.Welcome); again.Conversation != "" || again.Last != 0 {
		t.Fatalf("second welcome = %+v", again)
	}
	c.barrier()
	if ids := c.answered(); len(ids) != 0 {
		t.Fatalf("answers %v, want none (a read without a conversation is ignored)", ids)
	}
	// A new socket with the token: the same visitor, still nothing.
	c2 := h.connect("acme")
	w2 := c2.hello(w.Visitor, 0)
	if v2, _ := h.srv.keys.Visitor("acme", w2.Visitor); v2 != visitor || w2.Conversation != "" {
		t.Fatalf("reconnect: visitor %q conversation %q, want %q and none", v2, w2.Conversation, visitor)
	}
	time.Sleep(50 * time.Millisecond) // room for a wrong greeting call
	if _, err := h.st.Find(context.Background(), "acme", visitor); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the store has a conversation for the visitor: %v", err)
	}
	h.fp.mu.Lock()
	calls := len(h.fp.calls)
	h.fp.mu.Unlock()
	if n := h.created(); n != 0 || calls != 0 {
		t.Fatalf("%d conversations created, %d upstream calls; want none", n, calls)
	}
}

// TestStartCreatesOneConversation: the first start creates the
// conversation and one greeting; a second start on that socket, a start
// from another socket of the same visitor and a reconnect create none.
func TestStartCreatesOneConversation(t *testing.T) {
	h := newHarness(t, nil)
	a := h.connect("acme")
	wa := a.hello("", 0)
	b := h.connect("acme") // a second tab, welcomed before the first starts
	if wb := b.hello(wa.Visitor, 0); wb.Conversation != "" {
		t.Fatalf("second tab's welcome = %+v", wb)
	}
	w := a.start("st-1")
	if len(w.Conversation) != 32 || w.Visitor == "" {
		t.Fatalf("welcome to start = %+v", w)
	}
	waitUntil(t, "the greeting call", func() bool { return h.startCalls()[w.Conversation] == 1 })

	a.send(&widget.Start{ID: "st-2"})
	a.barrier()
	for _, f := range a.seen {
		if f.Type() == widget.TypeWelcome || f.Type() == widget.TypeError {
			t.Fatalf("a second start answered %s; it is a no-op", widget.Encode(f))
		}
	}
	if wb := b.start("st-3"); wb.Conversation != w.Conversation {
		t.Fatalf("second tab started %s, want %s", wb.Conversation, w.Conversation)
	}
	c := h.connect("acme")
	if wc := c.hello(w.Visitor, 0); wc.Conversation != w.Conversation {
		t.Fatalf("reconnect welcome = %+v, want conversation %s", wc, w.Conversation)
	}
	c.send(&widget.Start{ID: "st-4"})
	c.barrier()
	time.Sleep(50 * time.Millisecond) // room for a wrong second greeting
	if n, calls := h.created(), h.startCalls(); n != 1 || len(calls) != 1 || calls[w.Conversation] != 1 {
		t.Fatalf("%d conversations created, greetings %v; want one of each", n, calls)
	}
}

// TestFirstMessageStartsTheConversation: a send on a socket without a
// conversation starts it: welcome, greeting call, then the message.
func TestFirstMessageStartsTheConversation(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect("acme")
	c.hello("", 0)
	c.send(&widget.Send{ID: "m1", Text: "hello"})
	w := c.waitFor("the welcome naming the conversation", func(f widget.Frame) bool {
		w, ok := f.(*widget.Welcome)
		return ok && w.Conversation != ""
	}).(*widget.Welcome)
	if a := c.ack("m1"); a.Seq != 1 {
		t.Fatalf("ack = %+v", a)
	}
	c.status("m1")
	h.fp.mu.Lock()
	calls := append([]provider.Message(nil), h.fp.calls...)
	h.fp.mu.Unlock()
	if len(calls) != 2 || calls[0].Kind != provider.Start || calls[1].ClientID != "m1" || calls[0].Conversation != w.Conversation {
		t.Fatalf("upstream calls %+v, want the start then m1", calls)
	}
}

// TestSettingsBeforeStartGoWithTheGreeting: session data and a login sent
// before the conversation exists create nothing and are not answered;
// the start applies them before the greeting is queued, so the first
// upstream call carries them, and only then acknowledges them. A forged
// login is refused at once; settings on a socket that closes before its
// start are dropped.
func TestSettingsBeforeStartGoWithTheGreeting(t *testing.T) {
	const secret = "identity-secret-0123456789"
	h := newHarness(t, func(c *Config, _ *Options) {
		for i := range c.Bots {
			c.Bots[i].IdentitySecret = secret
		}
	})
	sign := func(user string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(user))
		return hex.EncodeToString(m.Sum(nil))
	}
	c := h.connect("acme")
	c.hello("", 0)
	c.send(&widget.Session{ID: "s1", Data: widget.RawJSON(`{"plan":"pro","tmp":1}`)})
	c.send(&widget.Session{ID: "s2", Data: widget.RawJSON(`{"tmp":null,"team":"blue"}`)})
	c.send(&widget.Login{ID: "l1", User: "user-41", Signature: sign("user-41")})
	c.send(&widget.Login{ID: "l2", User: "user-42", Signature: sign("user-42"), Name: "Ann Lee"})
	// Over the bound: refused at once, nothing else held changes.
	c.send(&widget.Session{ID: "s3", Data: widget.RawJSON(`{"big":"` + strings.Repeat("x", widget.MaxSessionData-20) + `"}`)})
	if e := c.waitFor("too_large", isType(widget.TypeError)).(*widget.ErrorFrame); e.Code != widget.CodeTooLarge || e.ID != "s3" {
		t.Fatalf("oversized held session: %+v", e)
	}
	c.barrier()
	time.Sleep(30 * time.Millisecond)
	if ids := c.answered(); len(ids) != 0 || h.created() != 0 || len(h.startCalls()) != 0 {
		t.Fatalf("before the start: answers %v, %d conversations, greetings %v; want none", ids, h.created(), h.startCalls())
	}

	w := c.start("st-1")
	for _, id := range []string{"s1", "s2", "l1", "l2"} {
		c.ack(id)
	}
	waitUntil(t, "the greeting call", func() bool { return h.startCalls()[w.Conversation] == 1 })
	h.fp.mu.Lock()
	first := h.fp.calls[0]
	h.fp.mu.Unlock()
	if first.Kind != provider.Start || string(first.Session) != `{"plan":"pro","team":"blue"}` {
		t.Fatalf("first call %s with session %s, want the start with the merged session", first.Kind, first.Session)
	}
	if first.Contact == nil || first.Contact.User != "user-42" || first.Contact.Name != "Ann Lee" {
		t.Fatalf("first call's contact = %+v, want the latest login", first.Contact)
	}

	// A forged login is refused at once: it is not held, and it starts
	// nothing.
	d := h.connect("acme")
	d.hello("", 0)
	d.send(&widget.Login{ID: "l3", User: "user-43", Signature: sign("user-44")})
	if e := d.waitFor("unauthorized", isType(widget.TypeError)).(*widget.ErrorFrame); e.Code != widget.CodeUnauthorized || e.ID != "l3" {
		t.Fatalf("forged login before the start: %+v", e)
	}
	if n := h.created(); n != 1 {
		t.Fatalf("a forged login created a conversation: %d", n)
	}
	wd := d.start("st-2")
	waitUntil(t, "the second greeting", func() bool { return h.startCalls()[wd.Conversation] == 1 })

	// A socket that closes before its start takes its settings along.
	e := h.connect("acme")
	we := e.hello("", 0)
	e.send(&widget.Session{ID: "s4", Data: widget.RawJSON(`{"plan":"lost"}`)})
	e.barrier()
	e.c.CloseNow()
	f := h.connect("acme")
	f.hello(we.Visitor, 0)
	wf := f.start("st-3")
	waitUntil(t, "the third greeting", func() bool { return h.startCalls()[wf.Conversation] == 1 })
	h.fp.mu.Lock()
	defer h.fp.mu.Unlock()
	for _, m := range h.fp.calls {
		if m.Conversation == wd.Conversation && m.Contact != nil || m.Conversation == wf.Conversation && m.Session != nil {
			t.Fatalf("call %+v carries a refused login or a dropped session", m)
		}
	}
}

// TestStartLimits: new conversations are metered per address and per
// bot; a refused start or first message creates and stores nothing and
// says when to try again, while visitors who have a conversation, and
// other addresses and bots within their limits, go on.
func TestStartLimits(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Options) {
		c.TrustedProxies = []string{"127.0.0.1"}
		c.Limits.StartsPerMinute, c.Limits.StartBurst = 1, 2
		c.Limits.BotStartsPerMinute = 3
	})
	const office = "198.51.100.7"
	var first *widget.Welcome
	for i := range 2 {
		c := h.from("acme", office)
		c.hello("", 0)
		if w := c.start("st-ok"); i == 0 {
			first = w
		}
	}
	c := h.from("acme", office)
	c.hello("", 0)
	c.send(&widget.Start{ID: "st-3"})
	e := c.waitFor("refusal", isType(widget.TypeError)).(*widget.ErrorFrame)
	if e.Code != widget.CodeRateLimited || e.ID != "st-3" || e.RetryMS < 1000 {
		t.Fatalf("third start from one address: %+v", e)
	}
	c.send(&widget.Send{ID: "m-3", Text: "hello?"})
	e = c.waitFor("refusal", isType(widget.TypeError)).(*widget.ErrorFrame)
	if e.Code != widget.CodeRateLimited || e.ID != "m-3" || e.RetryMS < 1000 {
		t.Fatalf("first message over the start limit: %+v", e)
	}
	// A visitor from there who has a conversation is not held up.
	back := h.from("acme", office)
	back.hello(first.Visitor, 0)
	back.send(&widget.Send{ID: "m-1", Text: "still here"})
	back.ack("m-1")

	// The bot's ceiling: a third start from elsewhere is its last.
	ok := h.from("acme", "203.0.113.1")
	ok.hello("", 0)
	ok.start("st-4")
	over := h.from("acme", "203.0.113.2")
	over.hello("", 0)
	over.send(&widget.Start{ID: "st-5"})
	if e := over.waitFor("refusal", isType(widget.TypeError)).(*widget.ErrorFrame); e.Code != widget.CodeRateLimited || e.ID != "st-5" || e.RetryMS < 1 {
		t.Fatalf("start over the bot's ceiling: %+v", e)
	}
	// Another bot has a ceiling of its own; the address was not charged.
	other := h.from("demo", "203.0.113.2")
	other.hello("", 0)
	other.start("st-6")

	time.Sleep(30 * time.Millisecond)
	if n := h.created(); n != 4 {
		t.Fatalf("%d conversations created, want 4", n)
	}
	if h.fp.callsFor("m-3") != 0 {
		t.Fatal("a refused first message went upstream")
	}
}

// TestStartLimitsGroupIPv6By64: the addresses of one IPv6 /64 share a
// start bucket, another /64 has its own, and an IPv4 address counts the
// same written as IPv4-mapped IPv6.
func TestStartLimitsGroupIPv6By64(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Options) {
		c.TrustedProxies = []string{"127.0.0.1"}
		c.Limits.StartsPerMinute, c.Limits.StartBurst = 1, 1
	})
	for _, tc := range []struct {
		ip string
		ok bool
	}{
		{"2001:db8:1:2::1", true},
		{"2001:db8:1:2:ffff:ffff:ffff:9", false}, // the same /64
		{"2001:db8:1:3::1", true},                // the next /64
		{"::ffff:192.0.2.1", true},
		{"192.0.2.1", false},
	} {
		c := h.from("acme", tc.ip)
		c.hello("", 0)
		c.send(&widget.Start{ID: "st"})
		f := c.waitFor("the answer to start", func(f widget.Frame) bool {
			w, ok := f.(*widget.Welcome)
			return ok && w.Conversation != "" || f.Type() == widget.TypeError
		})
		if got := f.Type() == widget.TypeWelcome; got != tc.ok {
			t.Errorf("start from %s: %s, want allowed %v", tc.ip, widget.Encode(f), tc.ok)
		}
	}
}

func TestLimitKey(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:DB8:1:2::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"not an address", "not an address"},
	} {
		if got := limitKey(tc.ip); got != tc.want {
			t.Errorf("limitKey(%q) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}

// staleFind is a store whose lookups miss while stale is set, as when
// another instance or tab creates the conversation between our lookup
// and our start.
type staleFind struct {
	store.Store
	stale bool
}

func (s *staleFind) Find(ctx context.Context, bot, visitor string) (store.Conversation, error) {
	if s.stale {
		return store.Conversation{}, store.ErrNotFound
	}
	return s.Store.Find(ctx, bot, visitor)
}

// TestStartThatFindsAConversationIsNotCounted: a start that meant to
// create a conversation but found one is given back to the limits, and
// queues no second greeting.
func TestStartThatFindsAConversationIsNotCounted(t *testing.T) {
	st := &staleFind{Store: store.NewMemory(), stale: true}
	h := newHarness(t, func(c *Config, o *Options) {
		c.Limits.StartsPerMinute, c.Limits.StartBurst = 1, 1
		o.Store = st
	})
	ctx := context.Background()
	existing, _, err := st.Conversation(ctx, "acme", "feedfacefeedfacefeedfacefeedface")
	if err != nil {
		t.Fatal(err)
	}
	token, _ := h.srv.keys.MintVisitor("acme", existing.Visitor)
	c := h.connect("acme")
	if w := c.hello(token, 0); w.Conversation != "" {
		t.Fatalf("the stale lookup found %q", w.Conversation)
	}
	if w := c.start("st-1"); w.Conversation != existing.ID {
		t.Fatalf("start reached %s, want the existing %s", w.Conversation, existing.ID)
	}
	st.stale = false
	d := h.connect("acme") // a new visitor from the same address
	d.hello("", 0)
	w := d.start("st-2") // refused if the first start had been counted
	waitUntil(t, "the new visitor's greeting", func() bool { return h.startCalls()[w.Conversation] == 1 })
	if n := h.startCalls()[existing.ID]; n != 0 {
		t.Fatalf("the existing conversation was greeted %d times", n)
	}
}

// TestServiceStartConcurrent: starts of one visitor at once make one
// conversation and one greeting; setup runs for each of them.
func TestServiceStartConcurrent(t *testing.T) {
	st := store.NewMemory()
	fp := &fakeProvider{}
	svc := NewService(st, bus.NewLocal(), slog.New(slog.DiscardHandler), testRetry)
	defer svc.Close(context.Background())
	fp.sink = svc
	svc.SetProvider("acme", fp)
	var mu sync.Mutex
	created, setups := 0, 0
	ids := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c, _, made, err := svc.Open(context.Background(), Opening{Bot: "acme", Key: "v1", Visitor: provider.Visitor{ID: "v1"}, Create: true, Setup: func(Conv) {
				mu.Lock()
				setups++
				mu.Unlock()
			}})
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			ids[c.ID] = true
			if made {
				created++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if created != 1 || setups != 8 || len(ids) != 1 {
		t.Fatalf("created %d, setups %d, conversations %d; want 1, 8, 1", created, setups, len(ids))
	}
	waitUntil(t, "the greeting", func() bool { fp.mu.Lock(); defer fp.mu.Unlock(); return len(fp.calls) > 0 })
	time.Sleep(30 * time.Millisecond)
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if len(fp.calls) != 1 || fp.calls[0].Kind != provider.Start {
		t.Fatalf("calls %+v, want one start", fp.calls)
	}
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestGreetingRetriedBriefly: a greeting the platform refuses with 429
// is retried for RetryPolicy.Greet only, then given up and logged, while
// a visitor's message keeps being retried; a greeting whose platform
// asks to wait past that window is given up at once.
func TestGreetingRetriedBriefly(t *testing.T) {
	logs := &syncBuffer{}
	h := newHarness(t, func(_ *Config, o *Options) {
		o.Retry = &RetryPolicy{Quick: 3, Base: time.Millisecond, Max: 5 * time.Millisecond, GiveUp: time.Minute, Greet: 150 * time.Millisecond, Timeout: time.Second}
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	var mu sync.Mutex
	wait := time.Duration(0)
	h.fp.setFail(func(m provider.Message, _ int) error {
		mu.Lock()
		defer mu.Unlock()
		return &provider.Error{Reason: provider.ReasonRateLimited, Temporary: true, Status: 429, After: wait}
	})
	c := h.connect("acme")
	w := c.open("", 0)
	c.send(&widget.Send{ID: "m1", Text: "hello"})
	c.ack("m1")
	time.Sleep(500 * time.Millisecond)
	greets, tries := h.startCalls()[w.Conversation], h.fp.callsFor("m1")
	time.Sleep(300 * time.Millisecond)
	if again := h.startCalls()[w.Conversation]; greets < 3 || again != greets {
		t.Fatalf("greeting attempts %d, then %d: want a few, then none", greets, again)
	}
	if more := h.fp.callsFor("m1"); tries == 0 || more <= tries {
		t.Fatalf("the visitor's message: %d attempts, then %d; want it still retried", tries, more)
	}
	if !strings.Contains(logs.String(), "conversation start given up") {
		t.Fatalf("the give-up is not logged:\n%s", logs.String())
	}

	mu.Lock()
	wait = time.Minute // Retry-After beyond the window
	mu.Unlock()
	d := h.connect("acme")
	wd := d.open("", 0)
	time.Sleep(100 * time.Millisecond)
	if n := h.startCalls()[wd.Conversation]; n != 1 {
		t.Fatalf("greeting asked to wait a minute: %d attempts, want 1", n)
	}
}

// waitUntil polls cond for up to 5 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
