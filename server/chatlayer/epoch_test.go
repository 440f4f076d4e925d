package chatlayer

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/provider/providertest"
)

// newEpochAdapter returns an adapter for webhook tests with retry window
// window, with no upstream.
func newEpochAdapter(t *testing.T, sink provider.Sink, window time.Duration) *Adapter {
	t.Helper()
	a, err := New(Config{ChannelID: "c", Token: testToken, VerifyToken: testVerify, ReorderWait: 20 * time.Millisecond,
		RetryWindow: window, BaseURL: "http://127.0.0.1:1"}, "acme", sink, nil, (&providertest.LogBuffer{}).Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func cb(t *testing.T, conv, text string, n int) []byte {
	return callback(t, map[string]any{"senderId": conv, "verifyToken": testVerify, "message": textMsg(text), "messageCounter": n})
}

func mustPost(t *testing.T, a *Adapter, body []byte) {
	t.Helper()
	if code, answer := post(a, body); code != http.StatusOK {
		t.Fatalf("callback answered %d %q, want 200", code, answer)
	}
}

func storedState(t *testing.T, sink provider.Sink, conv string) string {
	t.Helper()
	v, err := sink.Attr(context.Background(), conv, AttrCounter)
	if err != nil {
		t.Fatal(err)
	}
	return epochLast(v)
}

// A copy of an old callback (a retry, or a late one) within the retry
// window is a duplicate, whatever its counter: it starts no epoch and
// stores nothing. Past the window, a counter at or below the stored one
// is a new Chatlayer session: a new epoch, whose callbacks are stored
// (even word for word the old ones) and deduplicated among themselves.
func TestWebhookCounterEpochs(t *testing.T) {
	const window = 150 * time.Millisecond
	sink := providertest.NewSink(t, convA)
	a := newEpochAdapter(t, sink, window)
	for n := 1; n <= 3; n++ {
		mustPost(t, a, cb(t, convA, "old "+string(rune('0'+n)), n))
	}
	mustPost(t, a, cb(t, convA, "old 1", 1)) // Chatlayer retries counter 1 after 3 was stored
	mustPost(t, a, cb(t, convA, "old 2", 2))
	if got := sink.Texts(convA); strings.Join(got, ",") != "old 1,old 2,old 3" {
		t.Fatalf("after retries within the window: %q", got)
	}
	if s := storedState(t, sink, convA); s != "0:3" {
		t.Fatalf("state %s after retries within the window, want 0:3", s)
	}

	time.Sleep(window + 50*time.Millisecond)
	// The new session's greeting repeats the old one word for word.
	mustPost(t, a, cb(t, convA, "old 1", 1))
	mustPost(t, a, cb(t, convA, "old 1", 1)) // its retry: the same epoch, stored once
	mustPost(t, a, cb(t, convA, "new 2", 2))
	if s := storedState(t, sink, convA); s != "1:2" {
		t.Fatalf("state %s after the new session's callbacks, want 1:2", s)
	}
	mustPost(t, a, cb(t, convA, "new 2", 2)) // within the window again: a copy
	if got := sink.Texts(convA); strings.Join(got, ",") != "old 1,old 2,old 3,old 1,new 2" {
		t.Fatalf("stored %q, want the new session's two messages once each after the old three", got)
	}
	ds := sink.Deliveries(convA)
	if k := ds[0].Key; k != "chatlayer/"+convA+"/1" {
		t.Errorf("epoch 0 key %q: must keep the format of the versions before epochs", k)
	}
	if k := ds[3].Key; k != "chatlayer/"+convA+"/e1/1" {
		t.Errorf("epoch 1 key %q, want chatlayer/<conv>/e1/1", k)
	}

	// A third session, its callbacks swapped: counter 2 waits in the new
	// epoch for counter 1, which does not start yet another epoch.
	time.Sleep(window + 50*time.Millisecond)
	var wg sync.WaitGroup
	wg.Go(func() { mustPost(t, a, cb(t, convA, "third 2", 2)) })
	held(t, a, convA, 2)
	mustPost(t, a, cb(t, convA, "third 1", 1))
	wg.Wait()
	got := sink.Texts(convA)
	if strings.Join(got[5:], ",") != "third 1,third 2" {
		t.Fatalf("third session stored %q, want third 1, third 2", got[5:])
	}
	if s := storedState(t, sink, convA); s != "2:2" {
		t.Fatalf("state %s, want 2:2", s)
	}
}

// A counter stored by a version before epochs ("7", no time) counts as
// long ago: a lower counter begins epoch 1 at once, and a higher one
// goes on in epoch 0 with the old dedup keys.
func TestWebhookCounterFromBeforeEpochs(t *testing.T) {
	sink := providertest.NewSink(t, convA, convB)
	for _, c := range []string{convA, convB} {
		if err := sink.SetAttr(context.Background(), c, AttrCounter, "7"); err != nil {
			t.Fatal(err)
		}
	}
	a := newEpochAdapter(t, sink, time.Hour)
	mustPost(t, a, cb(t, convA, "after the upgrade", 1))
	if s := storedState(t, sink, convA); s != "1:1" {
		t.Fatalf("state %s, want 1:1", s)
	}
	mustPost(t, a, cb(t, convB, "next", 8))
	if s := storedState(t, sink, convB); s != "0:8" {
		t.Fatalf("state %s, want 0:8", s)
	}
	if k := sink.Deliveries(convB)[0].Key; k != "chatlayer/"+convB+"/8" {
		t.Fatalf("key %q", k)
	}
}

// Two processes share the store; the new session's first two callbacks
// land one on each at the same moment. Exactly one epoch begins, and both
// messages are stored once, in order.
func TestWebhookEpochAcrossProcesses(t *testing.T) {
	const window = 100 * time.Millisecond
	for round := range 20 {
		sink := providertest.NewSink(t, convA)
		a, b := newEpochAdapter(t, sink, window), newEpochAdapter(t, sink, window)
		for n := 1; n <= 4; n++ {
			mustPost(t, a, cb(t, convA, "old", n))
		}
		time.Sleep(window + 30*time.Millisecond)
		var wg sync.WaitGroup
		wg.Go(func() { mustPost(t, a, cb(t, convA, "new 1", 1)) })
		wg.Go(func() { mustPost(t, b, cb(t, convA, "new 2", 2)) })
		wg.Wait()
		got := sink.Texts(convA)
		if strings.Join(got[4:], ",") != "new 1,new 2" {
			t.Fatalf("round %d: new session stored %q", round, got[4:])
		}
		if s := storedState(t, sink, convA); s != "1:2" {
			t.Fatalf("round %d: state %s, want 1:2", round, s)
		}
	}
}

// The whole loop against the emulator: a visitor talks to the bot, goes
// away past the emulated session expiry and comes back. Chatlayer starts
// the counter again (the new session's first replies repeat the old ones
// word for word) and duplicates some callbacks; the visitor gets every
// new reply once, in order, exactly as a visitor new to the bot does.
func TestFullLoopSessionExpiry(t *testing.T) {
	const expiry = 400 * time.Millisecond
	r := newRig(t, ModeV1, func(c *Config, o *chatlayertest.Options) {
		c.ReorderWait = 50 * time.Millisecond
		c.RetryWindow = 150 * time.Millisecond
		o.SessionExpiry = expiry
	})
	script := []provider.Message{
		{Kind: provider.Text, Text: "hi"},
		{Kind: provider.Text, Text: "text"},
		{Kind: provider.Text, Text: "media"},
	}
	r.send(provider.Message{Kind: provider.Start})
	r.send(provider.Message{Kind: provider.Text, Text: "all"})
	r.idle()
	before := len(r.sink.Deliveries(convA))
	if before == 0 || r.emu.Produced(convA) <= uint64(len(script)+4) {
		t.Fatalf("first session: %d stored, counter %d; want more than the second session will produce", before, r.emu.Produced(convA))
	}

	time.Sleep(expiry + 100*time.Millisecond)
	r.emu.DuplicateCallbacks(3)
	for _, m := range script {
		r.send(m)
		r.idle()
	}
	if n := r.emu.Sessions(convA); n != 2 {
		t.Fatalf("the emulator had %d sessions, want 2: the expiry did not happen", n)
	}
	after := r.sink.Deliveries(convA)[before:]

	// The same messages from a visitor new to the bot.
	for _, m := range script {
		m.Conversation = convB
		r.send(m)
		r.idle()
	}
	fresh := r.sink.Deliveries(convB)
	if len(after) != len(fresh) || len(after) == 0 {
		t.Fatalf("after the expiry %d replies stored, a new visitor got %d", len(after), len(fresh))
	}
	for i := range after {
		if a, f := after[i].Body.Summary(), fresh[i].Body.Summary(); a != f {
			t.Fatalf("reply %d after the expiry %q, a new visitor got %q", i, a, f)
		}
	}
	if s := storedState(t, r.sink, convA); s != "1:"+strconv.FormatUint(r.emu.Produced(convA), 10) {
		t.Fatalf("state %s, want epoch 1 at %d", s, r.emu.Produced(convA))
	}
}
