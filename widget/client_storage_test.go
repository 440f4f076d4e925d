package widget

import (
	"strings"
	"testing"
)

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
