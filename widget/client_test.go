package widget

import (
	"reflect"
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

type errString string

func (e errString) Error() string { return string(e) }

// TestFormattedReply: a bot's formatted text reaches the entry whole, and
// what the widget announces as new is its plain text.
func TestFormattedReply(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	tb := newTab(t, "tab", srv, new(MemoryStorage), 1)
	tb.apply(tb.c.Start())
	tb.connect()
	tb.send("**hi**") // starts the conversation; stays plain
	body := Body{Kind: KindText, Text: "Hello world\n\n• one", Blocks: []Block{
		{P: []Run{{Text: "Hello "}, {Text: "world", Style: "b", URL: "https://example.com/"}}},
		{UL: [][]Block{{{P: []Run{{Text: "one", Style: "c"}}}}}},
	}}
	srv.fanout(&srv.append("bot", "", body).msg)
	tb.pump()
	entries := tb.c.Entries()
	if len(entries) != 2 || !reflect.DeepEqual(entries[1].Body, body) || !reflect.DeepEqual(entries[0].Body, Text("**hi**")) {
		t.Fatalf("entries: %+v", entries)
	}
	if len(tb.news) != 1 || tb.news[0].Body.Summary() != "Hello world\n\n• one" {
		t.Fatalf("new: %+v", tb.news)
	}
}
