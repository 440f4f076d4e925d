package server

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/server/redistest"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

// TestTypingAcrossInstances: two services over one real Redis, as two
// `porthole serve` processes. The typing indicator turned on where the
// platform's callback (or the Send) landed is what the other's no-JS chat
// page sees, its bus event reaches the other's sockets, and turning it
// off anywhere turns it off everywhere.
func TestTypingAcrossInstances(t *testing.T) {
	r := redistest.Start(t)
	ctx := t.Context()
	var svcs [2]*Service
	var buses [2]bus.Bus
	for i := range svcs {
		be, err := OpenBackend(&Config{Store: StoreConfig{Driver: "redis", URL: Secret(r.URL)}}, t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		svc := NewService(be.Store, be.Bus, slog.New(slog.NewTextHandler(newTestWriter(t), nil)), testRetry)
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			svc.Close(cctx)
			be.Close()
		})
		svcs[i], buses[i] = svc, be.Bus
	}
	sc, _, err := svcs[0].store.Conversation(ctx, "acme", "visitor-typing")
	if err != nil {
		t.Fatal(err)
	}
	conv := Conv{ID: sc.ID, Created: time.Now().Add(-time.Hour)} // long past its greeting
	events := make(chan bus.Event, 8)
	defer buses[1].Subscribe(sc.ID, func(ev bus.Event) {
		if ev.Typing != 0 {
			events <- ev
		}
	})()
	event := func(want uint8) {
		t.Helper()
		select {
		case ev := <-events:
			if ev.Typing != want {
				t.Errorf("typing event %d on the other instance, want %d", ev.Typing, want)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("no typing event reached the other instance's bus")
		}
	}

	if svcs[1].IsTyping(ctx, sc.ID) || svcs[1].AwaitingReply(ctx, conv, nil) {
		t.Fatal("typing before anyone said so")
	}
	svcs[0].Typing(sc.ID, true)
	if !svcs[1].IsTyping(ctx, sc.ID) {
		t.Error("instance 1 does not see the indicator instance 0 turned on")
	}
	if !svcs[1].AwaitingReply(ctx, conv, nil) {
		t.Error("instance 1's chat page does not wait while the bot types")
	}
	event(bus.TypingOn)

	svcs[1].Typing(sc.ID, false)
	if svcs[0].IsTyping(ctx, sc.ID) || svcs[1].IsTyping(ctx, sc.ID) {
		t.Error("still typing after instance 1 turned it off")
	}
	event(bus.TypingOff)
	if v, _ := svcs[0].store.Attr(ctx, sc.ID, attrTyping); v != "" {
		t.Errorf("typing attribute %q after off, want none", v)
	}

	// An indicator a provider never turned off stops counting after
	// typingFor, whoever wrote it.
	old := strconv.FormatInt(time.Now().Add(-typingFor-time.Second).UnixMilli(), 10)
	if err := svcs[0].store.SetAttr(ctx, sc.ID, attrTyping, old); err != nil {
		t.Fatal(err)
	}
	if svcs[1].IsTyping(ctx, sc.ID) {
		t.Error("an indicator turned on more than typingFor ago still counts")
	}
	recent := strconv.FormatInt(time.Now().UnixMilli(), 10)
	svcs[0].store.SetAttr(ctx, sc.ID, attrTyping, recent)
	if !svcs[1].IsTyping(ctx, sc.ID) {
		t.Error("an indicator turned on within typingFor does not count")
	}
	// A reply ends it, on every instance, without a write of its own.
	time.Sleep(5 * time.Millisecond)
	if err := svcs[0].Deliver(ctx, sc.ID, "typing-test/1", widget.Text("here you are")); err != nil {
		t.Fatal(err)
	}
	if svcs[1].IsTyping(ctx, sc.ID) {
		t.Error("still typing after the bot's reply was stored")
	}

	// A conversation that does not exist is not typing, and turning its
	// indicator on stores nothing.
	svcs[0].Typing("no-such-conversation", true)
	if svcs[1].IsTyping(ctx, "no-such-conversation") {
		t.Error("an unknown conversation is typing")
	}

	// A store that cannot answer reads as not typing.
	r.Stop()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if svcs[1].IsTyping(dctx, sc.ID) {
		t.Error("typing while the store is down")
	}
}

// TestTypingStoreErrors: IsTyping's error path on the in-process store:
// a closed store and a malformed value read as not typing.
func TestTypingStoreErrors(t *testing.T) {
	st := store.NewMemory()
	svc := NewService(st, bus.NewLocal(), slog.New(slog.NewTextHandler(newTestWriter(t), nil)), testRetry)
	defer svc.Close(context.Background())
	ctx := t.Context()
	sc, _, err := st.Conversation(ctx, "acme", "v")
	if err != nil {
		t.Fatal(err)
	}
	st.SetAttr(ctx, sc.ID, attrTyping, "soon")
	if svc.IsTyping(ctx, sc.ID) {
		t.Error("a malformed indicator counts as typing")
	}
	svc.Typing(sc.ID, true)
	if !svc.IsTyping(ctx, sc.ID) {
		t.Fatal("not typing after Typing(true)")
	}
	st.Close()
	if svc.IsTyping(ctx, sc.ID) {
		t.Error("typing read from a closed store")
	}
}
