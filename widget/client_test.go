package widget

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestConversation(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	srv.autoDeliver = true
	store := new(MemoryStorage)
	tb := newTab(t, "tab", srv, store, 1)

	u := tb.apply(tb.c.Start())
	if !u.Dial || tb.c.Conn() != ConnConnecting {
		t.Fatalf("Start: dial %v, conn %v", u.Dial, tb.c.Conn())
	}
	tb.connect()
	hellos := srv.sentFrames(TypeHello)
	if len(hellos) != 1 {
		t.Fatalf("hellos: %d", len(hellos))
	}
	h := hellos[0].(*Hello)
	if h.After != 0 || h.Visitor != "" || h.Locale != "en-GB" || h.TZ != "Europe/Brussels" || h.Page.URL != "https://www.acme.com/" || len(h.Caps) != 5 {
		t.Fatalf("hello: %+v", h)
	}
	if v, _ := store.Get("porthole:acme:visitor"); v != "tok-1" {
		t.Fatalf("visitor token stored: %q", v)
	}
	if lk := tb.c.Look(); lk.Title != "Acme" || lk.BrandColor != "#007171" {
		t.Fatalf("look: %+v", lk)
	}

	e := tb.send("  hello\r\nthere  ")
	if e.Body.Text != "hello\nthere" || e.State != StateDelivered || e.Seq != 1 || e.ID != "m1" {
		t.Fatalf("own entry: %+v", e)
	}
	if CheckClientID("id", e.ClientID) != nil {
		t.Fatalf("client id %q invalid", e.ClientID)
	}
	if len(tb.news) != 0 {
		t.Fatalf("own message announced as new: %v", tb.news)
	}
	if _, ok := store.Get("porthole:acme:outbox"); ok {
		t.Fatal("outbox not emptied after ack")
	}

	srv.typing(true)
	tb.pump()
	if !tb.c.Typing() {
		t.Fatal("typing not shown")
	}
	srv.say("Hi! Pick one", QuickReply{Title: "Dutch", Payload: "nl"}, QuickReply{Title: "French", Payload: "fr"})
	tb.pump()
	if tb.c.Typing() {
		t.Fatal("typing still shown after the bot's message")
	}
	if len(tb.news) != 1 || tb.news[0].Body.Text != "Hi! Pick one" {
		t.Fatalf("new: %v", tb.news)
	}
	if tb.c.Unread() != 1 {
		t.Fatalf("unread %d, want 1 (panel closed)", tb.c.Unread())
	}
	owner, qr := tb.c.QuickReplies()
	if owner == nil || len(qr) != 2 {
		t.Fatal("quick replies not offered on the latest bot message")
	}
	pe, u := tb.c.Postback("Dutch", "nl")
	tb.apply(u)
	if owner, _ := tb.c.QuickReplies(); owner != nil {
		t.Fatal("quick replies still offered after a click")
	}
	if !tb.c.ShowState(pe) || pe.State != StateSending {
		t.Fatalf("postback entry: %+v", pe)
	}
	tb.pump()
	pbs := srv.sentFrames(TypePostback)
	if len(pbs) != 1 || pbs[0].(*Postback).Payload != "nl" || pbs[0].(*Postback).Title != "Dutch" {
		t.Fatalf("postbacks: %v", pbs)
	}
	tb.mustTexts("user:hello\nthere", "bot:Hi! Pick one", "user:Dutch")
	if !tb.c.ShowState(pe) || tb.c.ShowState(e) {
		t.Fatal("state shown on the wrong entry")
	}
}

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

func TestReconnectReplayNoDuplicates(t *testing.T) {
	for _, ackFirst := range []bool{false, true} {
		clock := newClock()
		srv := newServer(t, clock)
		srv.ackFirst = ackFirst
		tb := newTab(t, "tab", srv, nil, 5).online()
		tb.send("one")
		srv.say("two")
		tb.pump()
		clock.Advance(Minute) // a stable connection
		u := tb.lose(CloseServiceRestart)
		if u.Wake < 100*Millisecond || u.Wake >= Second {
			t.Fatalf("restart redial in %v, want [100ms, 1s)", u.Wake)
		}
		// While away: the bot speaks.
		srv.say("three")
		u = tb.sleep()
		if !u.Dial {
			t.Fatal("no dial after the backoff")
		}
		tb.connect()
		if h := srv.sentFrames(TypeHello)[1].(*Hello); h.After != 2 || h.Visitor != "tok-1" {
			t.Fatalf("second hello: %+v", h)
		}
		tb.mustTexts("user:one", "bot:two", "bot:three")
		if len(tb.news) != 2 || tb.news[1].Body.Text != "three" {
			t.Fatalf("news: %v", tb.news)
		}

		// A server that replays everything again (and a second tab's
		// echo of the same messages) changes nothing.
		for _, m := range srv.msgs {
			tb.conn.inbox = append(tb.conn.inbox, Encode(&m.msg))
		}
		tb.pump()
		tb.mustTexts("user:one", "bot:two", "bot:three")
		if len(tb.news) != 2 {
			t.Fatalf("duplicates announced: %v", tb.news)
		}
	}
}

func TestGapResync(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	srv.started = true // a returning visitor
	tb := newTab(t, "tab", srv, nil, 6).online()
	srv.say("1")
	tb.conn.drop[2] = true // this socket misses seq 2
	srv.say("2")
	tb.conn.drop[3] = true
	srv.say("3")
	tb.pump()
	tb.mustTexts("bot:1")
	delete(tb.conn.drop, 2)
	srv.say("4") // seq 4 shows the gap: a hello asks after 1; seq 3 is still lost
	tb.pump()
	hellos := srv.sentFrames(TypeHello)
	if len(hellos) != 2 || hellos[1].(*Hello).After != 1 {
		t.Fatalf("resync hellos: %v", hellos)
	}
	tb.mustTexts("bot:1", "bot:2", "bot:4")
	// The same gap (after 2) asks once more, then never again.
	srv.say("5")
	tb.pump()
	srv.say("6")
	tb.pump()
	if n := len(srv.sentFrames(TypeHello)); n != 3 {
		t.Fatalf("hellos %d, want 3 (one per gap)", n)
	}
	// A new socket asks after the contiguous prefix and fills the hole.
	tb.lose(CloseAbnormal)
	tb.sleep()
	tb.connect()
	if h := srv.sentFrames(TypeHello)[3].(*Hello); h.After != 2 {
		t.Fatalf("after = %d, want 2", h.After)
	}
	tb.mustTexts("bot:1", "bot:2", "bot:3", "bot:4", "bot:5", "bot:6")
}

func TestWelcomeLastBelowAfterResets(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	tb := newTab(t, "tab", srv, nil, 7).online()
	srv.say("a")
	srv.say("b")
	srv.say("c")
	tb.pump()
	// The server lost the conversation's tail (a restored backup).
	srv.msgs = srv.msgs[:1]
	srv.msgs[0].msg.Body = Text("A")
	tb.lose(CloseAbnormal)
	tb.apply(tb.c.SetNetwork(false))
	e := tb.send("offline")
	tb.apply(tb.c.SetNetwork(true))
	tb.connect()
	tb.mustTexts("bot:A", "user:offline")
	if e.Seq != 2 {
		t.Fatalf("pending message seq %d", e.Seq)
	}

	// A different conversation (a fresh visitor) also resets.
	srv.conv, srv.msgs, srv.byClient = "conv-2", nil, map[string]*fakeMsg{}
	srv.say("new")
	tb.lose(CloseAbnormal)
	tb.sleep()
	tb.connect()
	tb.mustTexts("bot:new")
}

func TestTwoTabsSharedStorage(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	store := new(MemoryStorage)
	a := newTab(t, "A", srv, store, 8).online()
	b := newTab(t, "B", srv, store, 9).online()

	ea := a.send("from A")
	b.pump()
	eb := b.send("from B")
	a.pump()
	a.mustTexts("user:from A", "user:from B")
	b.mustTexts("user:from A", "user:from B")
	if ea.ClientID == eb.ClientID {
		t.Fatal("two tabs made the same id")
	}
	if got := b.c.Entry(ea.ClientID); got == nil || got.State != StateSent {
		t.Fatalf("B's view of A's message: %+v", got)
	}
	srv.status(ea.ClientID, StateDelivered, "")
	a.pump()
	b.pump()
	if b.c.Entry(ea.ClientID).State != StateDelivered || ea.State != StateDelivered {
		t.Fatal("status not applied in both tabs")
	}

	// A goes offline and queues a message; B adopts it from storage.
	a.lose(CloseAbnormal)
	a.apply(a.c.SetNetwork(false))
	queued := a.send("queued in A")
	u := b.apply(b.c.Sync())
	if u.Change&ChangeTranscript == 0 {
		t.Fatal("B did not adopt A's queued message")
	}
	b.pump()
	if srv.count(queued.ClientID) != 1 {
		t.Fatal("B did not send A's queued message")
	}
	b.mustTexts("user:from A", "user:from B", "user:queued in A")
	// A comes back and sends it too: the server dedupes, A shows it once.
	a.apply(a.c.SetNetwork(true))
	a.connect()
	a.mustTexts("user:from A", "user:from B", "user:queued in A")
	if srv.count(queued.ClientID) != 1 || queued.State != StateSent || queued.Seq != 3 {
		t.Fatalf("after both sent: count %d, %+v", srv.count(queued.ClientID), queued)
	}
	if _, ok := store.Get("porthole:acme:outbox"); ok {
		t.Fatal("outbox not empty")
	}
	// Nothing more to adopt.
	if u := b.apply(b.c.Sync()); u.Change&ChangeTranscript != 0 {
		t.Fatal("re-adopted")
	}

	// Interleaved offline typing in both tabs keeps both messages.
	a.lose(CloseAbnormal)
	b.lose(CloseAbnormal)
	x := a.send("x")
	y := b.send("y")
	stored, _ := store.Get("porthole:acme:outbox")
	if !strings.Contains(stored, x.ClientID) || !strings.Contains(stored, y.ClientID) {
		t.Fatalf("one tab overwrote the other's outbox: %s", stored)
	}
	a.sleep()
	a.connect()
	b.sleep()
	b.connect()
	a.pump()
	for _, tb := range []*tab{a, b} {
		tb.mustTexts("user:from A", "user:from B", "user:queued in A", "user:x", "user:y")
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

func TestUnreadAcrossReload(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	store := new(MemoryStorage)
	tb := newTab(t, "tab", srv, store, 14).online()
	tb.send("question")
	srv.say("answer 1")
	srv.say("answer 2")
	tb.pump()
	if tb.c.Unread() != 2 || tb.changes&ChangeUnread == 0 {
		t.Fatalf("unread %d", tb.c.Unread())
	}
	if v, _ := store.Get("porthole:acme:unread"); v != "2" {
		t.Fatalf("stored unread %q", v)
	}

	reloaded := newTab(t, "reloaded", srv, store, 15)
	if reloaded.c.Unread() != 2 {
		t.Fatalf("unread before connecting %d", reloaded.c.Unread())
	}
	reloaded.apply(reloaded.c.Start())
	reloaded.dialing = false
	reloaded.conn = &fakeConn{srv: srv, open: true, drop: map[uint64]bool{}}
	srv.conns = append(srv.conns, reloaded.conn)
	reloaded.apply(reloaded.c.Opened(Page{}))
	// Mid-replay the badge keeps the stored count.
	for len(reloaded.conn.inbox) > 2 {
		data := reloaded.conn.inbox[0]
		reloaded.conn.inbox = reloaded.conn.inbox[1:]
		reloaded.apply(reloaded.c.Receive(data))
		if reloaded.c.Unread() != 2 {
			t.Fatalf("badge blinked to %d mid-replay", reloaded.c.Unread())
		}
	}
	reloaded.pump()
	if reloaded.c.Unread() != 2 || len(reloaded.news) != 0 {
		t.Fatalf("after replay: unread %d, news %v", reloaded.c.Unread(), reloaded.news)
	}

	// Opening the panel in a visible tab reads everything.
	u := reloaded.apply(reloaded.c.SetOpen(true, true))
	if u.Change&ChangeUnread == 0 || reloaded.c.Unread() != 0 {
		t.Fatal("opening did not clear unread")
	}
	if reloaded.c.Divider() != 2 {
		t.Fatalf("divider %d, want 2", reloaded.c.Divider())
	}
	if len(srv.reads) != 1 || srv.reads[0] != 3 {
		t.Fatalf("reads %v", srv.reads)
	}
	// The other tab's badge clears through Sync.
	tb.apply(tb.c.Sync())
	if tb.c.Unread() != 0 || tb.changes&ChangeUnread == 0 {
		t.Fatalf("other tab unread %d", tb.c.Unread())
	}
	// Messages arriving while the panel is open are read (one read frame
	// after ReadDelay for a burst); a hidden tab counts them.
	srv.say("answer 3")
	srv.say("answer 4")
	reloaded.pump()
	if reloaded.c.Unread() != 0 || len(srv.reads) != 1 || reloaded.wake != ReadDelay {
		t.Fatalf("open panel: unread %d, reads %v, wake %v", reloaded.c.Unread(), srv.reads, reloaded.wake)
	}
	reloaded.sleep()
	if len(srv.reads) != 2 || srv.reads[1] != 5 {
		t.Fatalf("reads %v", srv.reads)
	}
	reloaded.apply(reloaded.c.SetOpen(true, false))
	srv.say("answer 5")
	reloaded.pump()
	if reloaded.c.Unread() != 1 {
		t.Fatalf("hidden tab: unread %d", reloaded.c.Unread())
	}
	again := newTab(t, "again", srv, store, 16)
	if again.c.Unread() != 1 {
		t.Fatalf("stored unread after reload: %d", again.c.Unread())
	}
}

func TestGarbageStorage(t *testing.T) {
	clock := newClock()
	garbage := []string{"", "null", "{", "[1,2", `{"a":1}`, "[", "[null, 1, \"x\", {}]", "\xff\xfe",
		`[{"type":"send","id":"bad id!","text":"x"}]`,
		`[{"type":"send","id":"ok-1","text":""}]`,
		`[{"type":"hello","bot":"acme"}]`,
		`[{"type":"send","id":"ok-1","text":"kept","at":"soon"}]`,
		strings.Repeat("[", 100000),
	}
	for _, g := range garbage {
		store := new(MemoryStorage)
		for _, k := range []string{KeyVisitor, KeyOutbox, KeySeen, KeyUnread} {
			store.Set(StorageKey("acme", k), g)
		}
		srv := newServer(t, clock)
		tb := newTab(t, "tab", srv, store, 17)
		if n := len(tb.c.Entries()); n != 0 {
			t.Fatalf("%q: %d entries from garbage", g, n)
		}
		if tb.c.Unread() != 0 {
			t.Fatalf("%q: unread %d", g, tb.c.Unread())
		}
		tb.online()
		tb.send("works")
		tb.mustTexts("user:works")
	}
	// A valid item among garbage survives; a duplicate id is taken once;
	// an old one is dropped.
	store := new(MemoryStorage)
	old := clock.Now().Add(-OutboxMaxAge - Hour).UnixMilli()
	store.Set("porthole:acme:outbox", `[7,{"type":"send","id":"ok-1","text":"kept"},{"type":"send","id":"ok-1","text":"dup"},`+
		`{"type":"send","id":"old-1","text":"old","at":`+itoa(old)+`},{"type":"postback","id":"ok-2","title":"Yes","payload":"y"}]`)
	tb := newTab(t, "tab", newServer(t, clock), store, 18)
	tb.mustTexts("user:kept", "user:Yes")
}

func itoa(n int64) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int64) []byte {
	if n < 0 {
		b = append(b, '-')
		n = -n
	}
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
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

func TestTypingExpires(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	srv.started = true
	tb := newTab(t, "tab", srv, nil, 21).online()
	srv.typing(true)
	tb.pump()
	if !tb.c.Typing() || tb.wake != TypingTimeout {
		t.Fatalf("typing %v, wake %v", tb.c.Typing(), tb.wake)
	}
	clock.Advance(10 * Second)
	srv.typing(true) // news: the timeout starts again
	tb.pump()
	clock.Advance(25 * Second)
	if u := tb.apply(tb.c.Tick()); !tb.c.Typing() || u.Change&ChangeTyping != 0 {
		t.Fatal("typing expired early")
	}
	u := tb.sleep()
	if tb.c.Typing() || u.Change&ChangeTyping == 0 {
		t.Fatal("typing did not expire")
	}
	srv.typing(true)
	tb.pump()
	srv.typing(false)
	tb.pump()
	if tb.c.Typing() || tb.wake != 0 {
		t.Fatal("typing off ignored")
	}
	srv.typing(true)
	tb.pump()
	tb.lose(CloseAbnormal)
	if tb.c.Typing() {
		t.Fatal("typing survives a lost connection")
	}
}

func TestHandshakeTimeoutAndBanner(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	tb := newTab(t, "tab", srv, nil, 22)
	tb.apply(tb.c.Start())
	if tb.c.Banner() != "" {
		t.Fatal("banner at once")
	}
	// The dial hangs: the banner shows after FirstBannerDelay, the
	// socket is hung up after HandshakeTimeout.
	tb.sleep()
	if clock.Now().Sub(newClock().Now()) != FirstBannerDelay || tb.c.Banner() != TextReconnecting || tb.changes&ChangeConnection == 0 {
		t.Fatalf("banner %q at %v", tb.c.Banner(), clock.Now())
	}
	u := tb.sleep()
	if !u.Hangup {
		t.Fatal("no hangup after the handshake timeout")
	}
	tb.dialing, tb.hungUp = false, false
	tb.lose(CloseNormal)
	tb.sleepUntilDial()
	tb.connect()
	if tb.c.Banner() != "" {
		t.Fatal("banner while online")
	}
	// Open socket, no welcome: hung up too.
	tb.lose(CloseAbnormal)
	if tb.c.Banner() != "" {
		t.Fatal("banner flashes on a quick reconnect")
	}
	tb.sleepUntilDial()
	tb.dialing = false
	tb.conn = &fakeConn{srv: srv, open: true}
	tb.apply(tb.c.Opened(Page{}))
	tb.conn.inbox = nil
	for !tb.hungUp {
		tb.sleep()
	}
	if tb.c.Banner() != TextReconnecting {
		t.Fatalf("banner %q", tb.c.Banner())
	}
}

func TestBackoffBounds(t *testing.T) {
	for attempt := 0; attempt < 12; attempt++ {
		ceil := min(BackoffBase<<attempt, BackoffCap)
		for _, r := range []uint64{0, 1, math.MaxUint64, math.MaxUint64 / 3, 123456789} {
			if d := Backoff(attempt, CloseAbnormal, r); d < 0 || d >= ceil {
				t.Fatalf("attempt %d: %v outside [0, %v)", attempt, d, ceil)
			}
			pc := min(PolicyBackoff<<attempt, BackoffCap)
			if d := Backoff(attempt, ClosePolicy, r); d < pc/2 || d >= pc {
				t.Fatalf("policy attempt %d: %v outside [%v, %v)", attempt, d, pc/2, pc)
			}
		}
	}
	if d := Backoff(0, CloseServiceRestart, math.MaxUint64); d < 100*Millisecond || d >= Second {
		t.Fatalf("restart: %v", d)
	}
	if Backoff(3, CloseServiceRestart, 7) != Backoff(3, CloseAbnormal, 7) {
		t.Fatal("repeated restarts should back off normally")
	}
	if Backoff(-1, 0, 5) != Backoff(0, 0, 5) {
		t.Fatal("negative attempt")
	}
}

func TestBackoffJitterDistribution(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	for _, attempt := range []int{0, 3, 10} {
		ceil := min(BackoffBase<<attempt, BackoffCap)
		var buckets [10]int
		var sum float64
		for i := 0; i < n; i++ {
			d := Backoff(attempt, CloseAbnormal, rng.Uint64())
			buckets[int(d*10/ceil)]++
			sum += float64(d)
		}
		mean := sum / n / float64(ceil)
		if math.Abs(mean-0.5) > 0.02 {
			t.Fatalf("attempt %d: mean %.3f of the ceiling, want 0.5", attempt, mean)
		}
		for i, b := range buckets {
			if b < n/10*85/100 || b > n/10*115/100 {
				t.Fatalf("attempt %d: bucket %d holds %d of %d: not uniform", attempt, i, b, n)
			}
		}
	}
}

func TestBackoffGrowsAndResets(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	tb := newTab(t, "tab", srv, nil, 23)
	tb.apply(tb.c.Start())
	var waits []Span
	for i := 0; i < 8; i++ {
		tb.dialing = false
		tb.lose(CloseAbnormal)
		waits = append(waits, tb.redialIn())
		tb.sleepUntilDial()
	}
	for i, w := range waits {
		if w >= min(BackoffBase<<i, BackoffCap) {
			t.Fatalf("waits %v", waits)
		}
	}
	if tb.c.attempt != 8 {
		t.Fatalf("attempt %d", tb.c.attempt)
	}
	// A short-lived connection does not reset the attempts; a stable one does.
	tb.connect()
	clock.Advance(Second)
	if tb.lose(CloseAbnormal); tb.c.attempt != 9 {
		t.Fatalf("unstable connection reset the backoff: attempt %d", tb.c.attempt)
	}
	tb.sleepUntilDial()
	tb.connect()
	clock.Advance(StableAfter)
	if tb.lose(CloseAbnormal); tb.redialIn() >= BackoffBase || tb.c.attempt != 1 {
		t.Fatalf("stable connection did not reset the backoff: %v", tb.redialIn())
	}
	// Visibility and opening the panel dial at once.
	tb.apply(tb.c.SetOpen(false, false))
	if u := tb.apply(tb.c.SetOpen(false, true)); !u.Dial {
		t.Fatal("tab shown: no dial")
	}
	tb.dialing = false
	tb.lose(CloseAbnormal)
	if u := tb.apply(tb.c.SetOpen(true, true)); !u.Dial {
		t.Fatal("panel opened: no dial")
	}
	// Stop hangs up and never redials.
	tb.connect()
	if u := tb.apply(tb.c.Stop()); !u.Hangup || u.Wake != 0 {
		t.Fatalf("stop: %+v", u)
	}
	if u := tb.lose(CloseNormal); u.Dial || u.Wake != 0 {
		t.Fatal("redial after stop")
	}
}

func TestReceiveUnsupportedAndJunk(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	tb := newTab(t, "tab", srv, nil, 24).online()
	for _, junk := range []string{"", "nope", `{"type":"later_frame"}`, `{"type":"msg","seq":0}`, `[]`} {
		if u := tb.apply(tb.c.Receive([]byte(junk))); u.Change != 0 || len(u.Send) != 0 {
			t.Fatalf("%q changed something", junk)
		}
	}
	tb.apply(tb.c.Receive([]byte(`{"type":"msg","seq":1,"id":"m1","from":"bot","at":"2026-11-21T12:00:00.000Z","body":{"kind":"poll","question":"?"}}`)))
	tb.apply(tb.c.Receive([]byte(`{"type":"msg","seq":2,"id":"m2","from":"bot","at":"2026-11-21T12:00:01.000Z","body":{"kind":"text","text":"next"}}`)))
	es := tb.c.Entries()
	if len(es) != 2 || es[0].Body.Kind != KindUnsupported || es[1].Body.Text != "next" {
		t.Fatalf("entries %+v", es)
	}
	if n := len(srv.sentFrames(TypeHello)); n != 1 {
		t.Fatal("an unreadable message caused a resync")
	}
	if es[1].Stamp != "2026-11-21T12:00:01.000Z" {
		t.Fatalf("at %v", es[1].At)
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

func TestLookMergeAndTexts(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	srv.look = Look{Title: "Acme", BrandColor: "#007171", Locale: "nl", Texts: map[string]string{"send": "Stuur", "close": "Dicht"}}
	store := new(MemoryStorage)
	tb := newTab(t, "tab", srv, store, 25).online()
	if tb.changes&ChangeLook == 0 {
		t.Fatal("look change not reported")
	}
	tx := tb.c.Texts()
	if tx.Lang() != "nl" || tx.Get(TextSend) != "Stuur" || tx.Get(TextRetry) != "Opnieuw proberen" {
		t.Fatalf("texts %s %q", tx.Lang(), tx.Get(TextSend))
	}
	tb.apply(tb.c.SetLook(Look{Title: "Page", Texts: map[string]string{"close": "Sluit"}}))
	lk := tb.c.Look()
	if lk.Title != "Page" || lk.BrandColor != "#007171" || lk.Texts["send"] != "Stuur" || lk.Texts["close"] != "Sluit" {
		t.Fatalf("merged look %+v", lk)
	}
	tb.apply(tb.c.SetLanguage("fr-BE"))
	if tb.c.Language() != "fr" {
		t.Fatal("SetLanguage ignored")
	}
	if h := tb.c.hello(); h.Locale != "fr-BE" {
		t.Fatalf("hello locale %q", h.Locale)
	}
	// The look is not stored: a reload gets it with the next welcome
	// (keeping it cost widget.wasm more than the moment it saves).
	re := newTab(t, "re", srv, store, 26)
	if re.c.Look().Title != "" {
		t.Fatalf("look before any welcome: %+v", re.c.Look())
	}
}

func TestWatchesKey(t *testing.T) {
	c := NewClient(ClientOptions{Bot: "acme"})
	for key, want := range map[string]bool{"": true, "porthole:acme:outbox": true, "porthole:acme:seen": true, "porthole:acme2:seen": false, "other": false} {
		if c.WatchesKey(key) != want {
			t.Errorf("WatchesKey(%q) != %v", key, want)
		}
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

type errString string

func (e errString) Error() string { return string(e) }

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
