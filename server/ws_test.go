package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

func TestSendAckReplyAndReplay(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect("acme")
	w := c.open("", 0)
	if w.Visitor == "" || len(w.Conversation) != 32 || w.Last != 0 {
		t.Fatalf("welcome = %+v", w)
	}
	if w.Widget.Title != "Acme" || w.Widget.Position != "left" {
		t.Fatalf("welcome carries the bot's look: %+v", w.Widget)
	}
	c.send(&widget.Send{ID: "c1", Text: "hello"})
	if a := c.ack("c1"); a.Seq != 1 {
		t.Fatalf("ack seq = %d, want 1", a.Seq)
	}
	mine := c.msgWith("own message", func(m *widget.Msg) bool { return m.Seq == 1 })
	if mine.From != "user" || mine.ClientID != "c1" || mine.Body.Text != "hello" {
		t.Fatalf("user msg = %+v", mine)
	}
	if s := c.status("c1"); s.State != widget.StateDelivered {
		t.Fatalf("status = %+v", s)
	}
	reply := c.msgWith("bot reply", func(m *widget.Msg) bool { return m.From == "bot" })
	if reply.Seq != 2 || reply.Body.Text != "echo: hello" || reply.ClientID != "" {
		t.Fatalf("reply = %+v", reply)
	}
	if _, err := time.Parse(time.RFC3339Nano, reply.At); err != nil {
		t.Fatalf("at = %q: %v", reply.At, err)
	}

	// A new socket with the token and after=1 sees the same conversation
	// and only the later message.
	c2 := h.connect("acme")
	w2 := c2.hello(w.Visitor, 1)
	if w2.Conversation != w.Conversation || w2.Last != 2 {
		t.Fatalf("reconnect welcome = %+v, want conversation %s last 2", w2, w.Conversation)
	}
	m := c2.waitFor("replay", isType(widget.TypeMsg)).(*widget.Msg)
	if m.Seq != 2 {
		t.Fatalf("replay started at seq %d, want 2", m.Seq)
	}
	// A second hello on the same socket (gap recovery) replays again.
	c2.send(&widget.Hello{Bot: "acme", Visitor: w.Visitor})
	c2.waitFor("second welcome", isType(widget.TypeWelcome))
	if m := c2.waitFor("full replay", isType(widget.TypeMsg)).(*widget.Msg); m.Seq != 1 {
		t.Fatalf("resync replay started at %d, want 1", m.Seq)
	}
}

func TestDuplicateSendIsAcknowledgedOnce(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect("acme")
	w := c.open("", 0)
	c.send(&widget.Send{ID: "dup-1", Text: "once"})
	first := c.ack("dup-1")
	c.status("dup-1")
	c.send(&widget.Send{ID: "dup-1", Text: "once"})
	second := c.ack("dup-1")
	if first.Seq != second.Seq {
		t.Fatalf("acks differ: %d vs %d", first.Seq, second.Seq)
	}
	// After a reconnect the same id is still known.
	c2 := h.connect("acme")
	c2.hello(w.Visitor, 0)
	c2.send(&widget.Send{ID: "dup-1", Text: "once"})
	if a := c2.ack("dup-1"); a.Seq != first.Seq {
		t.Fatalf("ack after reconnect = %d, want %d", a.Seq, first.Seq)
	}
	ms, _ := h.st.Read(context.Background(), w.Conversation, 0, 100)
	n := 0
	for _, m := range ms {
		if m.ClientID == "dup-1" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("stored %d copies, want 1", n)
	}
	time.Sleep(50 * time.Millisecond) // let a wrong second dispatch happen
	if calls := h.fp.callsFor("dup-1"); calls != 1 {
		t.Fatalf("upstream calls = %d, want 1", calls)
	}
}

func TestUpstreamFailureShowsFailedAndRetryDelivers(t *testing.T) {
	h := newHarness(t, nil)
	up := h.fp.down()
	c := h.connect("acme")
	w := c.open("", 0)
	c.send(&widget.Send{ID: "f1", Text: "are you there?"})
	c.ack("f1")
	s := c.status("f1")
	if s.State != widget.StateFailed || s.Error != provider.ReasonUnavailable {
		t.Fatalf("status = %+v", s)
	}
	ms, _ := h.st.Read(context.Background(), w.Conversation, 0, 10)
	if len(ms) != 1 || entryOf(ms[0]).State != widget.StateFailed {
		t.Fatalf("stored = %+v, want the message kept as failed", ms)
	}
	// A reloaded widget is told about the failure in the replay.
	c2 := h.connect("acme")
	c2.hello(w.Visitor, 0)
	if s := c2.status("f1"); s.State != widget.StateFailed {
		t.Fatalf("replayed status = %+v", s)
	}
	// The upstream comes back; the visitor presses retry (same id).
	up()
	c.send(&widget.Send{ID: "f1", Text: "are you there?"})
	c.ack("f1")
	if s := c.status("f1"); s.State != widget.StateDelivered {
		t.Fatalf("after retry: %+v", s)
	}
	c.msgWith("echo", func(m *widget.Msg) bool { return m.From == "bot" })
}

func TestPermanentFailureIsNotRetried(t *testing.T) {
	h := newHarness(t, nil)
	h.fp.setFail(func(m provider.Message, attempt int) error {
		if m.Kind == provider.Start {
			return nil
		}
		return &provider.Error{Reason: provider.ReasonRejected, Status: 400}
	})
	c := h.connect("acme")
	c.hello("", 0)
	c.send(&widget.Send{ID: "p1", Text: "x"})
	if s := c.status("p1"); s.State != widget.StateFailed || s.Error != provider.ReasonRejected {
		t.Fatalf("status = %+v", s)
	}
	time.Sleep(50 * time.Millisecond)
	if n := h.fp.callsFor("p1"); n != 1 {
		t.Fatalf("calls = %d, want 1 (a 4xx is not retried)", n)
	}
}

func TestPostbackAndSession(t *testing.T) {
	h := newHarness(t, nil)
	h.fp.echo = false
	c := h.connect("acme")
	w := c.open("", 0)
	c.send(&widget.Session{ID: "s1", Data: widget.RawJSON(`{"plan":"pro"}`)})
	if a := c.ack("s1"); a.Seq != 0 {
		t.Fatalf("session ack = %+v", a)
	}
	c.send(&widget.Session{ID: "s2", Data: widget.RawJSON(`{"team":"blue","plan":null}`)})
	c.ack("s2")
	// A click must be on a button the bot sent: first a forged one, then
	// the bot offers it.
	c.send(&widget.Postback{ID: "b0", Title: "Dutch", Payload: `{"nextDialogstateId":"3050"}`})
	if e := c.waitFor("error b0", isType(widget.TypeError)).(*widget.ErrorFrame); e.ID != "b0" || e.Code != widget.CodeBadRequest {
		t.Fatalf("forged postback answered %+v", e)
	}
	if err := h.srv.service.Deliver(context.Background(), w.Conversation, "offer", widget.Body{Kind: widget.KindButtons, Text: "Language?",
		Buttons: []widget.Button{{Type: widget.ButtonPostback, Title: "Dutch", Payload: `{"nextDialogstateId":"3050"}`}}}); err != nil {
		t.Fatal(err)
	}
	c.send(&widget.Postback{ID: "b1", Title: "Dutch", Payload: `{"nextDialogstateId":"3050"}`})
	c.ack("b1")
	c.status("b1")
	// The same click again from the widget's outbox is the stored one.
	c.send(&widget.Postback{ID: "b1", Title: "Dutch", Payload: `{"nextDialogstateId":"3050"}`})
	c.ack("b1")
	h.fp.mu.Lock()
	last := h.fp.calls[len(h.fp.calls)-1]
	h.fp.mu.Unlock()
	if last.Kind != provider.Postback || last.Payload != `{"nextDialogstateId":"3050"}` || last.Text != "Dutch" {
		t.Fatalf("upstream postback = %+v", last)
	}
	if string(last.Session) != `{"team":"blue"}` {
		t.Fatalf("session = %s, want merged with plan removed", last.Session)
	}
	if last.Visitor.TZ != "Europe/Brussels" || last.Visitor.Locale != "en-GB" {
		t.Fatalf("visitor = %+v", last.Visitor)
	}
	// The transcript shows what the visitor clicked, never the payload.
	ms, _ := h.st.Read(context.Background(), w.Conversation, 0, 10)
	if len(ms) != 2 || !strings.Contains(string(ms[1].Body), "Dutch") || strings.Contains(string(ms[1].Body), "3050") {
		t.Fatalf("stored %d messages, the click %s; want the offer and one click", len(ms), ms[len(ms)-1].Body)
	}
	h.fp.mu.Lock()
	for _, call := range h.fp.calls {
		if call.ClientID == "b0" {
			t.Errorf("the forged postback went upstream: %+v", call)
		}
	}
	h.fp.mu.Unlock()
}

// TestSessionIdentityKeys: session data never sets an identity key (issue
// 12): the rest applies, and the error names what was left out, held
// before the start or sent after it.
func TestSessionIdentityKeys(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect("acme")
	c.hello("", 0)
	c.send(&widget.Session{ID: "s1", Data: widget.RawJSON(`{"externalId":"admin","plan":"pro"}`)})
	if e := c.waitFor("error s1", isType(widget.TypeError)).(*widget.ErrorFrame); e.ID != "s1" || e.Code != widget.CodeBadRequest || !strings.Contains(e.Message, "externalId") {
		t.Fatalf("held session with an identity key answered %+v", e)
	}
	w := c.start("st")
	c.send(&widget.Session{ID: "s2", Data: widget.RawJSON(`{"E-Mail":"a@b","First_Name":"Eve","user.phone":"1","team":"red"}`)})
	e := c.waitFor("error s2", isType(widget.TypeError)).(*widget.ErrorFrame)
	if e.ID != "s2" || !strings.Contains(e.Message, "E-Mail, First_Name, user.phone") {
		t.Fatalf("session with identity keys answered %+v", e)
	}
	got, _ := h.st.Attr(context.Background(), w.Conversation, attrSession)
	if got != `{"plan":"pro","team":"red"}` {
		t.Fatalf("session data = %s, want only plan and team", got)
	}
}

func (h *harness) socketCount() int {
	n := 0
	h.srv.sockets.Range(func(any, any) bool { n++; return true })
	return n
}

func TestShutdownClosesWith1012(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect("acme")
	c.hello("", 0)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	if code := c.closeStatus(); code != websocket.StatusServiceRestart {
		t.Fatalf("close code = %d, want 1012", code)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// While draining, new sockets are refused with 503 and readyz says so.
	if _, resp, _ := h.dial("acme", ""); resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial while draining: %v", resp)
	}
}

func TestOutboxIsResumedAfterRestart(t *testing.T) {
	st := store.NewMemory()
	// A first server stores a message while upstream is down and stops.
	h1 := newHarness(t, func(_ *Config, o *Options) { o.Store = st })
	h1.fp.setFail(func(m provider.Message, attempt int) error {
		return &provider.Error{Reason: provider.ReasonUnavailable, Temporary: true}
	})
	c := h1.connect("acme")
	w := c.open("", 0)
	c.send(&widget.Send{ID: "o1", Text: "kept"})
	c.ack("o1")
	ctx := context.Background()
	conv, _ := st.Get(ctx, w.Conversation)
	// Simulate a crash before the message got delivered: still pending.
	if _, err := st.SetState(ctx, conv.ID, 1, store.Pending, ""); err != nil {
		t.Fatal(err)
	}
	h1.srv.service.Close(ctx)

	// A second server over the same store hands it upstream.
	h2 := newHarness(t, func(_ *Config, o *Options) { o.Store = st; o.DataDir = h1.srv.opts.DataDir })
	deadline := time.Now().Add(3 * time.Second)
	for h2.fp.callsFor("o1") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("pending message not resumed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c2 := h2.connect("acme")
	c2.hello(w.Visitor, 0)
	c2.msgWith("echo after resume", func(m *widget.Msg) bool { return m.From == "bot" })
}

func TestHealthAndReady(t *testing.T) {
	h := newHarness(t, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(h.hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s = %d", path, resp.StatusCode)
		}
	}
}

func TestLoginIsVerifiedAndReachesTheProvider(t *testing.T) {
	const secret = "identity-secret-0123456789"
	h := newHarness(t, func(c *Config, _ *Options) {
		for i := range c.Bots {
			if c.Bots[i].ID == "acme" {
				c.Bots[i].IdentitySecret = secret
			}
		}
	})
	sign := func(user string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(user))
		return hex.EncodeToString(m.Sum(nil))
	}
	c := h.connect("acme")
	c.open("", 0)

	// A forged signature is refused and stores nothing.
	c.send(&widget.Login{ID: "l1", User: "user-42", Signature: sign("user-43")})
	e := c.waitFor("error", isType(widget.TypeError)).(*widget.ErrorFrame)
	if e.Code != widget.CodeUnauthorized || e.ID != "l1" || !strings.Contains(e.Message, "signature") {
		t.Fatalf("forged login: %+v", e)
	}
	// A signed one is acknowledged, and the next message carries it.
	c.send(&widget.Login{ID: "l2", User: "user-42", Signature: sign("user-42"), Name: "Ann Lee", Email: "ann@example.com"})
	c.ack("l2")
	c.send(&widget.Send{ID: "m1", Text: "hi"})
	c.status("m1")
	h.fp.mu.Lock()
	got := h.fp.calls[len(h.fp.calls)-1].Contact
	h.fp.mu.Unlock()
	if got == nil || got.User != "user-42" || got.Name != "Ann Lee" || got.Email != "ann@example.com" {
		t.Fatalf("contact upstream = %+v", got)
	}
	// Logout forgets it.
	c.send(&widget.Login{ID: "l3"})
	c.ack("l3")
	c.send(&widget.Send{ID: "m2", Text: "bye"})
	c.status("m2")
	h.fp.mu.Lock()
	got = h.fp.calls[len(h.fp.calls)-1].Contact
	h.fp.mu.Unlock()
	if got != nil {
		t.Fatalf("contact after logout = %+v", got)
	}

	// A bot without an identity secret refuses login.
	d := h.connect("demo")
	d.open("", 0)
	d.send(&widget.Login{ID: "l4", User: "user-42", Signature: sign("user-42")})
	if e := d.waitFor("error", isType(widget.TypeError)).(*widget.ErrorFrame); e.Code != widget.CodeUnauthorized || !strings.Contains(e.Message, "identity_secret") {
		t.Fatalf("login without a secret: %+v", e)
	}
}

// TestReconnectSeesStatesChangedWhileAway: a widget that was away while
// its message failed is told so when it comes back, though it already
// holds the message (its hello's after covers it); the newest message's
// later delivery is told too.
func TestReconnectSeesStatesChangedWhileAway(t *testing.T) {
	h := newHarness(t, nil)
	up := h.fp.down()
	c := h.connect("acme")
	w := c.open("", 0)
	c.send(&widget.Send{ID: "a1", Text: "while you were away"})
	seq := c.ack("a1").Seq
	c.c.CloseNow() // gone before the failure is known
	deadline := time.Now().Add(5 * time.Second)
	for {
		ms, _ := h.st.Read(context.Background(), w.Conversation, 0, 10)
		if len(ms) == 1 && entryOf(ms[0]).State == widget.StateFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not failed: %+v", ms)
		}
		time.Sleep(time.Millisecond)
	}
	back := h.connect("acme")
	back.hello(w.Visitor, seq)
	if s := back.status("a1"); s.State != widget.StateFailed || s.Error != provider.ReasonUnavailable {
		t.Fatalf("status after reconnect = %+v", s)
	}
	back.c.CloseNow()

	up()
	for { // background retries deliver it while nobody watches
		ms, _ := h.st.Read(context.Background(), w.Conversation, 0, 1)
		if ms[0].State == store.Delivered {
			break
		}
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatalf("not delivered: %+v", ms)
		}
		time.Sleep(time.Millisecond)
	}
	again := h.connect("acme")
	again.hello(w.Visitor, seq)
	if s := again.status("a1"); s.State != widget.StateDelivered {
		t.Fatalf("status after the second reconnect = %+v", s)
	}
}
