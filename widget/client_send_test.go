package widget

import (
	"strings"
	"testing"
)

func TestOfflineTypingThenWelcome(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	store := new(MemoryStorage)
	tb := newTab(t, "tab", srv, store, 2)
	tb.apply(tb.c.Start())
	tb.dialing = false
	u := tb.lose(CloseAbnormal) // the server is down
	if u.Wake <= 0 || u.Wake > BackoffBase {
		t.Fatalf("first redial in %v", u.Wake)
	}
	tb.apply(tb.c.SetNetwork(false))
	if tb.c.Banner() != TextOffline {
		t.Fatalf("banner %q", tb.c.Banner())
	}
	a := tb.send("first")
	b := tb.send("second")
	if a.State != StateSending || b.State != StateSending || len(srv.received) != 0 {
		t.Fatal("sent while offline")
	}
	stored, _ := store.Get("porthole:acme:outbox")
	if !strings.Contains(stored, a.ClientID) || !strings.Contains(stored, b.ClientID) || strings.Index(stored, "first") > strings.Index(stored, "second") {
		t.Fatalf("outbox in storage: %s", stored)
	}
	tb.mustTexts("user:first", "user:second")

	u = tb.apply(tb.c.SetNetwork(true))
	if !u.Dial {
		t.Fatal("coming online did not dial at once")
	}
	tb.connect()
	sends := srv.sentFrames(TypeSend)
	if len(sends) != 2 || sends[0].(*Send).ID != a.ClientID || sends[1].(*Send).ID != b.ClientID {
		t.Fatalf("sends after welcome: %v", sends)
	}
	if a.State != StateSent || b.State != StateSent || a.Seq != 1 || b.Seq != 2 {
		t.Fatalf("states: %+v %+v", a, b)
	}
	if _, ok := store.Get("porthole:acme:outbox"); ok {
		t.Fatal("outbox kept after acks")
	}
	if tb.c.Banner() != "" {
		t.Fatalf("banner %q while online", tb.c.Banner())
	}
}

func TestReloadResendsWithOriginalIDs(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	store := new(MemoryStorage)
	tb := newTab(t, "tab", srv, store, 3).online()
	// The message reaches the server but the ack and echo are lost when
	// the page reloads.
	e, u := tb.c.SendText("lost ack")
	tb.apply(u)
	tb.conn.open = false
	tb.conn.inbox = nil

	reloaded := newTab(t, "reloaded", srv, store, 4)
	pend := reloaded.c.Entries()
	if len(pend) != 1 || pend[0].ClientID != e.ClientID || pend[0].State != StateSending {
		t.Fatalf("reloaded entries: %+v", pend)
	}
	reloaded.online()
	if srv.count(e.ClientID) != 1 {
		t.Fatalf("stored %d times", srv.count(e.ClientID))
	}
	reloaded.mustTexts("user:lost ack")
	if got := reloaded.c.Entries()[0]; got.Seq != 1 || got.State != StateSent {
		t.Fatalf("entry after replay: %+v", got)
	}
	if _, ok := store.Get("porthole:acme:outbox"); ok {
		t.Fatal("outbox kept after the replay showed the message")
	}
	// Its second send was acknowledged again, never stored twice.
	if n := len(srv.sentFrames(TypeSend)); n != 2 {
		t.Fatalf("sends %d, want 2 (original and resend)", n)
	}
}

func TestRateLimited(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	limited := true
	srv.limit = func(id string) int64 {
		if limited {
			return 1500
		}
		return 0
	}
	tb := newTab(t, "tab", srv, nil, 10).online()
	first := tb.send("first")
	if first.State != StateSending || first.Error != CodeRateLimited || len(tb.notices) != 1 || tb.notices[0].Code != CodeRateLimited || tb.notices[0].ID != first.ClientID {
		t.Fatalf("rate limited: %+v, notices %v", first, tb.notices)
	}
	if tb.wake != 1500*Millisecond {
		t.Fatalf("wake %v, want 1.5s", tb.wake)
	}
	second := tb.send("second")
	if n := len(srv.sentFrames(TypeSend)); n != 1 {
		t.Fatalf("second sent ahead of the first: %d sends", n)
	}
	limited = false
	tb.sleep()
	tb.pump()
	sends := srv.sentFrames(TypeSend)
	if len(sends) != 3 || sends[1].(*Send).ID != first.ClientID || sends[2].(*Send).ID != second.ClientID {
		t.Fatalf("resends: %v", sends)
	}
	tb.mustTexts("user:first", "user:second")
	if first.State != StateSent || second.State != StateSent || first.Error != "" {
		t.Fatalf("not sent: %+v", first)
	}
}

// TestNotStoredIsRetried: the server could not store a message (its disk
// is full) and asks for a retry: the entry stays sending, says why, goes
// out again after retry_ms with the same id, and is sent once acked.
func TestNotStoredIsRetried(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	tb := newTab(t, "tab", srv, nil, 12).online()
	e, u := tb.c.SendText("kept for later")
	tb.apply(u)
	tb.conn.inbox = nil // the server could not store it
	u = tb.apply(tb.c.Handle(&ErrorFrame{Code: CodeInternal, Message: "the message could not be stored", ID: e.ClientID, RetryMS: 1000}))
	if e.State != StateSending || e.Error != CodeInternal || u.Change&ChangeTranscript == 0 {
		t.Fatalf("not stored: %+v, change %v", e, u.Change)
	}
	if tb.wake != Second {
		t.Fatalf("wake %v, want 1s", tb.wake)
	}
	if msg := NewTexts("en", nil).Error(CodeInternal); !strings.Contains(msg, "keep trying") {
		t.Fatalf("text for a message not stored yet: %q", msg)
	}
	tb.sleep()
	tb.pump()
	sends := srv.sentFrames(TypeSend)
	if len(sends) != 2 || sends[1].(*Send).ID != e.ClientID {
		t.Fatalf("resends: %v", sends)
	}
	if e.State != StateSent || e.Error != "" {
		t.Fatalf("after the retry: %+v", e)
	}
}

func TestRefusedMessageFails(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	store := new(MemoryStorage)
	tb := newTab(t, "tab", srv, store, 11).online()
	e, u := tb.c.SendText("too big for the server")
	tb.apply(u)
	tb.conn.inbox = nil // the server refuses it
	tb.apply(tb.c.Handle(&ErrorFrame{Code: CodeTooLarge, Message: "text is too long", ID: e.ClientID}))
	if e.State != StateFailed || e.Error != CodeTooLarge || e.Detail != "text is too long" || e.CanRetry() {
		t.Fatalf("refused entry: %+v", e)
	}
	if _, ok := store.Get("porthole:acme:outbox"); ok {
		t.Fatal("refused message kept in the outbox")
	}
	tb.apply(tb.c.Retry(e.ClientID))
	if e.State != StateFailed {
		t.Fatal("retry loop on a refused message")
	}
	if tb.wake != 0 {
		t.Fatalf("timer %v armed for nothing", tb.wake)
	}
	if tx := NewTexts("en", nil); tx.Error(e.Error) == "" || tx.State(e.State) != "Not delivered" {
		t.Fatal("no text for the failure")
	}
	// Local validation: nothing goes out.
	e2, u := tb.c.SendText(strings.Repeat("x", MaxText+1))
	if e2 != nil || u.Notice == nil || u.Notice.Code != CodeBadRequest {
		t.Fatalf("over-long text: %v %+v", e2, u.Notice)
	}
	if e3, _ := tb.c.SendText(" \n "); e3 != nil {
		t.Fatal("blank text queued")
	}
}

func TestFailedThenRetry(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	store := new(MemoryStorage)
	tb := newTab(t, "tab", srv, store, 12).online()
	e := tb.send("hello")
	srv.status(e.ClientID, StateFailed, "upstream_unavailable")
	tb.pump()
	if e.State != StateFailed || !e.CanRetry() || !tb.c.ShowState(e) {
		t.Fatalf("failed entry: %+v", e)
	}
	tb.apply(tb.c.Retry(e.ClientID))
	if e.State != StateSending {
		t.Fatal("retry did not go back to sending")
	}
	tb.pump()
	sends := srv.sentFrames(TypeSend)
	if len(sends) != 2 || sends[1].(*Send).ID != e.ClientID {
		t.Fatalf("retry frames: %v", sends)
	}
	if e.State != StateSent || srv.count(e.ClientID) != 1 {
		t.Fatalf("after retry: %+v, stored %d", e, srv.count(e.ClientID))
	}
	srv.status(e.ClientID, StateDelivered, "")
	tb.pump()
	if e.State != StateDelivered {
		t.Fatal("not delivered")
	}

	// A failure replayed to a reloaded page offers retry too, and the
	// retry of a postback carries its payload when this page sent it.
	pb, u := tb.c.Postback("Dutch", "lang=nl")
	tb.apply(u)
	tb.pump()
	srv.status(pb.ClientID, StateFailed, "upstream_unavailable")
	tb.pump()
	tb.apply(tb.c.Retry(pb.ClientID))
	tb.pump()
	pbs := srv.sentFrames(TypePostback)
	if len(pbs) != 2 || pbs[1].(*Postback).Payload != "lang=nl" {
		t.Fatalf("postback retry: %v", pbs)
	}
	srv.status(pb.ClientID, StateFailed, "upstream_unavailable")
	reloaded := newTab(t, "reloaded", srv, store, 13).online()
	re := reloaded.c.Entry(pb.ClientID)
	if re == nil || re.State != StateFailed || !re.CanRetry() {
		t.Fatalf("replayed failure: %+v", re)
	}
	reloaded.apply(reloaded.c.Retry(pb.ClientID))
	reloaded.pump()
	if re.State != StateSent {
		t.Fatalf("retry after reload: %+v", re)
	}
}

// TestSessionQueued: session updates made offline wait in the outbox, in
// order with messages, one frame each (the server merges them).
func TestSessionQueued(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	store := new(MemoryStorage)
	tb := newTab(t, "tab", srv, store, 19)
	tb.apply(tb.c.SetSession(RawJSON(`{"plan":"pro","a":1}`)))
	tb.apply(tb.c.SetSession(RawJSON(`{"a":null,"b":[1,2]}`)))
	if u := tb.apply(tb.c.SetSession(RawJSON(`[1]`))); u.Notice == nil {
		t.Fatal("non-object session data accepted")
	}
	e, u := tb.c.SendText("after session")
	tb.apply(u)
	tb.apply(tb.c.SetSession(RawJSON(`{"c":true}`)))
	stored, _ := store.Get("porthole:acme:outbox")
	if strings.Count(stored, `"type":"session"`) != 3 {
		t.Fatalf("stored outbox: %s", stored)
	}
	// A reload keeps them.
	tb = newTab(t, "reloaded", srv, store, 20).online()
	want := []string{`{"plan":"pro","a":1}`, `{"a":null,"b":[1,2]}`, `{"c":true}`}
	if len(srv.sessions) != 3 || srv.sessions[0] != want[0] || srv.sessions[1] != want[1] || srv.sessions[2] != want[2] {
		t.Fatalf("sessions %q", srv.sessions)
	}
	// In order with the message between them.
	var order []string
	for _, f := range srv.received {
		order = append(order, f.Type())
	}
	// The conversation starts with the message, after the session data
	// queued before it, so that the bot's greeting already has it.
	if strings.Join(order, ",") != "hello,session,session,start,send,session" {
		t.Fatalf("order %v", order)
	}
	if tb.c.Entry(e.ClientID) == nil {
		t.Fatal("message lost")
	}
	if _, ok := store.Get("porthole:acme:outbox"); ok {
		t.Fatal("outbox not empty")
	}
	// Online: sent at once.
	tb.apply(tb.c.SetSession(RawJSON(`{"d":1}`)))
	tb.pump()
	if len(srv.sessions) != 4 {
		t.Fatal("online session update not sent")
	}
}

func TestClientIDs(t *testing.T) {
	clock := newClock()
	c := NewClient(ClientOptions{Bot: "acme", Now: clock.Now, Random: func() uint64 { return 42 }})
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		e, _ := c.SendText("x")
		if e == nil {
			break // the outbox is full
		}
		if seen[e.ClientID] || CheckClientID("id", e.ClientID) != nil || len(e.ClientID) > 32 {
			t.Fatalf("id %q", e.ClientID)
		}
		seen[e.ClientID] = true
	}
	if len(seen) != OutboxCap {
		t.Fatalf("%d queued, want the cap %d", len(seen), OutboxCap)
	}
	_, u := c.SendText("one too many")
	if u.Notice == nil || u.Notice.Code != CodeOutboxFull {
		t.Fatal("no outbox_full notice")
	}
	// Default options work.
	d := NewClient(ClientOptions{Bot: "acme"})
	a, _ := d.SendText("a")
	b, _ := d.SendText("b")
	if a.ClientID == b.ClientID {
		t.Fatal("default random repeats")
	}
}

func TestStatusEdgesAndShowState(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	tb := newTab(t, "tab", srv, nil, 27).online()
	if u := tb.apply(tb.c.Handle(&Status{ID: "unknown", State: StateDelivered})); u.Change != 0 {
		t.Fatal("status for an unknown id changed something")
	}
	a := tb.send("a")
	if u := tb.apply(tb.c.Handle(&Status{ID: a.ClientID, State: "weird"})); u.Change != 0 || a.State != StateSent {
		t.Fatal("unknown state applied")
	}
	tb.apply(tb.c.Handle(&Status{ID: a.ClientID, State: StateFailed}))
	if a.State != StateFailed || a.Error != StateFailed || !a.CanRetry() {
		t.Fatalf("failed without a reason: %+v", a)
	}
	b := tb.send("b")
	if !tb.c.ShowState(a) || !tb.c.ShowState(b) {
		t.Fatal("failed and latest states hidden")
	}
	srv.say("reply")
	tb.pump()
	bot := tb.c.Entries()[2]
	if tb.c.ShowState(b) || tb.c.ShowState(bot) {
		t.Fatal("state shown after the reply, or on a bot message")
	}
	if owner, qr := tb.c.QuickReplies(); owner != nil || qr != nil {
		t.Fatal("quick replies without any")
	}
	if n := noticeOf(errString("boom")); n.Code != CodeBadRequest || n.Message != "boom" {
		t.Fatalf("notice %+v", n)
	}
	// An error frame without an id is surfaced and changes nothing else.
	u := tb.apply(tb.c.Handle(&ErrorFrame{Code: CodeUnauthorized, Message: "who are you"}))
	if u.Notice == nil || u.Notice.Code != CodeUnauthorized || u.Change != 0 {
		t.Fatalf("error frame: %+v", u)
	}
	tx := NewTexts("nl", nil)
	for _, code := range []string{CodeRateLimited, CodeTooLarge, CodeBadRequest, CodeOutboxFull, CodeUpstreamUnavailable, CodeInternal, "other"} {
		if tx.Error(code) == "" || strings.Contains(tx.Error(code), "_") {
			t.Errorf("no Dutch text for %s", code)
		}
	}
	for _, st := range []string{StateSending, StateSent, StateDelivered, StateFailed} {
		if tx.State(st) == "" {
			t.Errorf("no Dutch text for %s", st)
		}
	}
}

// TestLoginQueuedAndRefusedOnce: a login made offline goes out once the
// socket is up; a forged one is refused with a notice and not retried.
func TestLoginQueuedAndRefusedOnce(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	srv.started = true // a returning visitor: the login is applied at once
	store := new(MemoryStorage)
	tb := newTab(t, "tab", srv, store, 31)
	tb.apply(tb.c.Login(Login{User: "user-42", Signature: strings.Repeat("a", 64), Name: "Ann"}))
	if u := tb.apply(tb.c.Login(Login{User: "user-42", Signature: "short"})); u.Notice == nil || u.Notice.Code != CodeBadRequest {
		t.Fatalf("an invalid login was queued: %+v", u.Notice)
	}
	if stored, _ := store.Get("porthole:acme:outbox"); strings.Contains(stored, "login") {
		t.Fatalf("a login was stored for the next page: %s", stored)
	}
	tb.online()
	if len(srv.logins) != 1 || srv.logins[0] != "user-42" {
		t.Fatalf("logins = %q", srv.logins)
	}
	tb.apply(tb.c.Login(Login{User: "user-43", Signature: strings.Repeat("b", 64)}))
	tb.pump()
	if n := len(srv.sentFrames(TypeLogin)); n != 2 {
		t.Fatalf("%d login frames sent, want 2 (the forged one once)", n)
	}
	tb.apply(tb.c.Tick())
	tb.pump()
	if n := len(srv.sentFrames(TypeLogin)); n != 2 {
		t.Fatalf("the forged login was retried: %d frames", n)
	}
	tb.apply(tb.c.Login(Login{}))
	tb.pump()
	if len(srv.logins) != 2 || srv.logins[1] != "" {
		t.Fatalf("logout not sent: %q", srv.logins)
	}
}

// TestPageContext: setContext's keys and a single-page site's new URL
// and title reach the bot as session data under "page.", the page only
// when it changed; a non-object is refused with a clear notice.
func TestPageContext(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	tb := newTab(t, "tab", srv, new(MemoryStorage), 7).online()
	tb.apply(tb.c.SetContext(RawJSON(`{"plan":"pro","cart":{"items":2}}`)))
	// Opened told the server this page already: no frame for it.
	tb.apply(tb.c.SetPage(Page{URL: "https://www.acme.com/", Title: "Acme"}))
	tb.apply(tb.c.SetPage(Page{URL: "https://www.acme.com/pricing", Title: "Pricing \"now\""}))
	tb.apply(tb.c.SetPage(Page{URL: "https://www.acme.com/pricing", Title: "Pricing \"now\""}))
	_, u := tb.c.SendText("hi") // the server holds session data for the start
	tb.apply(u)
	tb.pump()
	want := []string{`{"page.plan":"pro","page.cart":{"items":2}}`, `{"page.url":"https://www.acme.com/pricing","page.title":"Pricing \"now\""}`}
	if strings.Join(srv.sessions, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sessions\n%s\nwant\n%s", strings.Join(srv.sessions, "\n"), strings.Join(want, "\n"))
	}
	u = tb.apply(tb.c.SetContext(RawJSON(`"pricing"`)))
	if u.Notice == nil || u.Notice.Code != CodeBadRequest || u.Notice.Message != "page context must be a JSON object" {
		t.Fatalf("non-object context: %+v", u.Notice)
	}
}
