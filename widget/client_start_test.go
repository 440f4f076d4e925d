package widget

import (
	"strings"
	"testing"
)

// TestNothingBeforeIntent: a widget that connects with its panel closed
// and nothing to send starts no conversation; opening the panel does,
// once, and a reconnect finds it without another start.
func TestNothingBeforeIntent(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	srv.greeting = "Hi! How can I help?"
	tb := newTab(t, "tab", srv, nil, 40).online()
	tb.apply(tb.c.Tick())
	if n := len(srv.sentFrames(TypeStart)); n != 0 || srv.started {
		t.Fatalf("%d start frames with the panel closed, started %v", n, srv.started)
	}
	if tb.wake != 0 {
		t.Fatalf("a timer is set while idle: %v", tb.wake)
	}
	tb.apply(tb.c.SetOpen(true, true))
	tb.pump()
	starts := srv.sentFrames(TypeStart)
	if len(starts) != 1 || srv.starts != 1 || CheckClientID("id", starts[0].(*Start).ID) != nil {
		t.Fatalf("start frames %v, server starts %d", starts, srv.starts)
	}
	tb.mustTexts("bot:Hi! How can I help?")
	if len(tb.news) != 1 {
		t.Fatalf("the greeting is not announced as new: %v", tb.news)
	}
	// Closing and opening again, or a new socket, starts nothing more.
	tb.apply(tb.c.SetOpen(false, true))
	tb.apply(tb.c.SetOpen(true, true))
	tb.lose(CloseServiceRestart)
	tb.sleepUntilDial()
	tb.connect()
	if n := len(srv.sentFrames(TypeStart)); n != 1 {
		t.Fatalf("%d start frames, want 1", n)
	}
	tb.mustTexts("bot:Hi! How can I help?")
}

// TestStartGoesAfterSettingsAndBeforeMessages: with the panel closed the
// first message starts the conversation; session data and a login
// queued before it go first, so the platform's first call carries them,
// and they are acknowledged once the conversation exists.
func TestStartGoesAfterSettingsAndBeforeMessages(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	tb := newTab(t, "tab", srv, nil, 41)
	tb.apply(tb.c.SetSession(RawJSON(`{"plan":"pro"}`)))
	tb.apply(tb.c.Login(Login{User: "user-42", Signature: strings.Repeat("a", 64)}))
	tb.online()
	if len(srv.sentFrames(TypeStart)) != 0 || len(srv.sessions) != 0 || len(tb.c.queue) != 2 {
		t.Fatalf("started before intent: starts %d, sessions %q, queue %d", len(srv.sentFrames(TypeStart)), srv.sessions, len(tb.c.queue))
	}
	e := tb.send("hello")
	var order []string
	for _, f := range srv.received {
		order = append(order, f.Type())
	}
	if got := strings.Join(order, ","); got != "hello,session,login,start,send" {
		t.Fatalf("order %s", got)
	}
	if len(srv.sessions) != 1 || len(srv.logins) != 1 || len(tb.c.queue) != 0 {
		t.Fatalf("settings not applied and acknowledged: sessions %q logins %q queue %d", srv.sessions, srv.logins, len(tb.c.queue))
	}
	if e.State != StateSent || e.Seq != 1 {
		t.Fatalf("message %+v", e)
	}
}

// TestStartRateLimited: a start refused with rate_limited goes again,
// with a fresh id, after retry_ms; the message typed meanwhile waits
// behind it and goes once the conversation exists.
func TestStartRateLimited(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	refusals := 1
	srv.startLimit = func() int64 {
		if refusals > 0 {
			refusals--
			return 3000
		}
		return 0
	}
	tb := newTab(t, "tab", srv, nil, 42).online()
	tb.apply(tb.c.SetOpen(true, true))
	tb.pump()
	if len(tb.notices) != 1 || tb.notices[0].Code != CodeRateLimited || srv.started {
		t.Fatalf("notices %v, started %v", tb.notices, srv.started)
	}
	if tb.wake != 3000*Millisecond {
		t.Fatalf("wake %v, want the retry_ms", tb.wake)
	}
	e := tb.send("waiting")
	if n := len(srv.sentFrames(TypeSend)); n != 0 || e.State != StateSending {
		t.Fatalf("%d sends while the start waits; entry %+v", n, e)
	}
	clock.Advance(2 * Second)
	tb.apply(tb.c.Tick())
	if n := len(srv.sentFrames(TypeStart)); n != 1 {
		t.Fatalf("start sent again early: %d", n)
	}
	tb.sleep()
	tb.pump()
	starts := srv.sentFrames(TypeStart)
	if len(starts) != 2 || starts[0].(*Start).ID == starts[1].(*Start).ID {
		t.Fatalf("start frames %v, want two with their own ids", starts)
	}
	if !srv.started || e.State != StateSent || len(srv.sentFrames(TypeSend)) != 1 {
		t.Fatalf("started %v, entry %+v, sends %d", srv.started, e, len(srv.sentFrames(TypeSend)))
	}
}

// TestStartOncePerSocket: a start that is not answered is not repeated
// on the same socket, whatever else happens; the next socket sends a new
// one. Another error for it is a Notice and no retry.
func TestStartOncePerSocket(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	srv.ignoreStart = true
	tb := newTab(t, "tab", srv, nil, 43).online()
	tb.apply(tb.c.SetOpen(true, true))
	tb.apply(tb.c.SetOpen(false, true))
	tb.apply(tb.c.SetOpen(true, true))
	clock.Advance(Minute)
	tb.apply(tb.c.Tick())
	tb.apply(tb.c.SetSession(RawJSON(`{"a":1}`)))
	if n := len(srv.sentFrames(TypeStart)); n != 1 {
		t.Fatalf("%d start frames on one socket, want 1", n)
	}
	id := srv.sentFrames(TypeStart)[0].(*Start).ID
	tb.apply(tb.c.Receive(Encode(&ErrorFrame{Code: CodeInternal, Message: "boom", ID: id})))
	clock.Advance(Minute)
	tb.apply(tb.c.Tick())
	if n := len(srv.sentFrames(TypeStart)); n != 1 || len(tb.notices) != 1 || tb.notices[0].ID != id {
		t.Fatalf("after an error: %d starts, notices %v", n, tb.notices)
	}
	tb.lose(CloseAbnormal)
	tb.sleepUntilDial()
	srv.ignoreStart = false
	tb.connect()
	starts := srv.sentFrames(TypeStart)
	if len(starts) != 2 || starts[1].(*Start).ID == id || !srv.started {
		t.Fatalf("the next socket: starts %v, started %v", starts, srv.started)
	}
}

// TestLogoutStartsAfreshInEveryTab: a logout drops the transcript in the
// tab that logged out (the server's welcome names no conversation and
// brings a new token) and, through storage, in the browser's other
// tabs, which say hello again at once with the new token.
func TestLogoutStartsAfreshInEveryTab(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	store := new(MemoryStorage)
	a := newTab(t, "A", srv, store, 1).online()
	b := newTab(t, "B", srv, store, 2).online()
	a.apply(a.c.SetOpen(true, true))
	a.pump()
	a.send("ann's secret")
	b.apply(b.c.SetOpen(true, true))
	b.pump()
	b.mustTexts("user:ann's secret")

	a.apply(a.c.Login(Login{}))
	a.pump()
	a.mustTexts()
	if tok, _ := store.Get("porthole:acme:visitor"); tok != srv.token || tok == "tok-1" {
		t.Fatalf("stored token after logout = %q, want the new visitor's %q", tok, srv.token)
	}
	mark, ok := store.Get("porthole:acme:logout")
	if !ok || mark == "" {
		t.Fatal("logout left no mark for the other tabs")
	}

	u := b.c.Sync()
	if !u.Hangup || !u.Dial || u.Change&ChangeTranscript == 0 {
		t.Fatalf("B after A's logout: %+v; want the transcript dropped and a new socket", u)
	}
	b.conn.open, b.conn = false, nil
	b.apply(u)
	b.mustTexts()
	b.connect()
	b.mustTexts()
	hellos := srv.sentFrames(TypeHello)
	if h := hellos[len(hellos)-1].(*Hello); h.Visitor != srv.token {
		t.Fatalf("B said hello with %q, want the new token %q", h.Visitor, srv.token)
	}
	// Nothing more happens on the next storage event.
	if u := b.c.Sync(); u.Hangup || u.Dial {
		t.Fatalf("a second Sync redialled: %+v", u)
	}
	// And a new message starts the new visitor's conversation.
	b.send("bea here")
	b.mustTexts("user:bea here")
}

// TestHelloCarriesTheLogin: every hello carries the page's latest valid
// login, so that a reconnecting widget opens the signed-in user's
// conversation at once; a logout, or a login the server refused, stops
// that.
func TestHelloCarriesTheLogin(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	a := newTab(t, "A", srv, new(MemoryStorage), 1).online()
	lastHello := func() *Hello {
		hs := srv.sentFrames(TypeHello)
		return hs[len(hs)-1].(*Hello)
	}
	reconnect := func() {
		a.lose(CloseAbnormal)
		a.sleepUntilDial()
		a.connect()
	}
	if lastHello().Login != nil {
		t.Fatal("a first hello carries a login nobody gave")
	}
	sig := strings.Repeat("a", 64)
	a.apply(a.c.Login(Login{User: "ann", Signature: sig, Name: "Ann"}))
	a.pump()
	reconnect()
	if l := lastHello().Login; l == nil || l.User != "ann" || l.Signature != sig || l.Name != "Ann" || l.ID != "" {
		t.Fatalf("hello after a login carries %+v", l)
	}
	a.apply(a.c.Login(Login{User: "bad", Signature: "short"}))
	reconnect()
	if l := lastHello().Login; l == nil || l.User != "ann" {
		t.Fatalf("an invalid login replaced the valid one in hellos: %+v", l)
	}
	a.apply(a.c.Login(Login{User: "eve", Signature: strings.Repeat("b", 64)}))
	a.pump() // the fake server refuses it: unauthorized
	reconnect()
	if l := lastHello().Login; l != nil {
		t.Fatalf("hello still carries a refused login: %+v", l)
	}
	a.apply(a.c.Login(Login{User: "ann", Signature: sig}))
	a.pump()
	a.apply(a.c.Login(Login{}))
	a.pump()
	reconnect()
	if l := lastHello().Login; l != nil {
		t.Fatalf("hello after a logout carries %+v", l)
	}
}
