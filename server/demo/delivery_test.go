package demo

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/widget"
)

// TestRedelivery hands the same messages twice, as the service does after
// a crash: the replies must carry the same keys and the same content, even
// though the first delivery already moved the conversation on.
func TestRedelivery(t *testing.T) {
	b, sink := newBot(t, Default())
	ask := msg(provider.Postback, "Tell you my name", "demo:ask-name")
	name := msg(provider.Text, "Grace", "")
	say(t, b, sink, ask, 1)
	say(t, b, sink, name, 1)

	sink.mu.Lock()
	first := append([]delivery(nil), sink.attempts...)
	sink.mu.Unlock()

	for range 2 {
		if err := b.Send(context.Background(), name); err != nil {
			t.Fatal(err)
		}
		settle(t, b)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	again := sink.attempts[len(first):]
	if len(again) != 2 {
		t.Fatalf("redelivery attempts = %d, want 2", len(again))
	}
	for _, d := range again {
		if !reflect.DeepEqual(d, first[1]) {
			t.Errorf("redelivered %q %q, first time %q %q", d.key, d.body.Text, first[1].key, first[1].body.Text)
		}
	}
	if len(sink.stored) != 2 {
		t.Errorf("stored %d replies, want 2: %v", len(sink.stored), texts(sink.stored))
	}
}

// TestOrder sends two messages without waiting: all replies to the first
// come before any reply to the second, with a typing pause before each.
func TestOrder(t *testing.T) {
	b, sink := newBot(t, Default())
	other := "ffffffffffffffffffffffffffffffff"
	ms := []provider.Message{
		msg(provider.Postback, "Media", "demo:tour-media"), // 5 replies
		msg(provider.Text, "bye", ""),                      // 1 reply
	}
	var wg sync.WaitGroup
	wg.Go(func() { // another conversation at the same time
		for i := range 3 {
			m := msg(provider.Text, "hello", "")
			m.Conversation, m.ClientID = other, "o"+strconv.Itoa(i)
			if err := b.Send(context.Background(), m); err != nil {
				t.Error(err)
			}
		}
	})
	for _, m := range ms {
		if err := b.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	got := sink.replies(t, convID, 6)
	sink.replies(t, other, 3)
	var keys []string
	for _, d := range got {
		keys = append(keys, d.key)
	}
	want := []string{"demo/" + ms[0].ClientID + "/0", "demo/" + ms[0].ClientID + "/1", "demo/" + ms[0].ClientID + "/2",
		"demo/" + ms[0].ClientID + "/3", "demo/" + ms[0].ClientID + "/4", "demo/" + ms[1].ClientID + "/0"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}
	settle(t, b)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	var prev string
	var events []string
	for _, e := range sink.events {
		if !strings.HasPrefix(e, convID) {
			continue
		}
		e = strings.TrimPrefix(e, convID+" ")
		if strings.HasPrefix(e, "deliver") && prev != "on" {
			t.Errorf("%s without a typing pause before it", e)
		}
		prev = e
		events = append(events, e)
	}
	if prev != "off" {
		t.Errorf("typing not hidden at the end: %q", events)
	}
}

func TestRejects(t *testing.T) {
	b, _ := newBot(t, Default())
	err := b.Send(context.Background(), provider.Message{Conversation: convID, Kind: "sticker"})
	if reason, temporary, _ := provider.Classify(err); reason != provider.ReasonRejected || temporary {
		t.Errorf("unknown kind: %v (%s, temporary %v)", err, reason, temporary)
	}
}

func TestCloseWaits(t *testing.T) {
	sink := newSink()
	sink.gate, sink.entered = make(chan struct{}), make(chan struct{})
	b := New(Default(), sink, Options{TypingDelay: time.Millisecond})
	if err := b.Send(context.Background(), provider.Message{Conversation: convID, Kind: provider.Start}); err != nil {
		t.Fatal(err)
	}
	<-sink.entered // the first reply is being delivered

	closed := make(chan struct{})
	go func() {
		b.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a reply was being delivered")
	case <-time.After(50 * time.Millisecond):
	}
	close(sink.gate)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}

	sink.mu.Lock()
	n, last := len(sink.attempts), sink.events[len(sink.events)-1]
	sink.mu.Unlock()
	if n != 1 {
		t.Errorf("%d replies delivered, want 1: the second was still waiting to be typed", n)
	}
	if last != convID+" off" {
		t.Errorf("last event %q, want typing off", last)
	}
	err := b.Send(context.Background(), msg(provider.Text, "hello", ""))
	if _, temporary, _ := provider.Classify(err); err == nil || !temporary {
		t.Errorf("Send after Close = %v, want a temporary error", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// flakySink fails the first Deliver, as a store might during a hiccup.
type flakySink struct {
	*fakeSink
	failed atomic.Bool
}

func (f *flakySink) Deliver(ctx context.Context, convID, key string, bodies ...widget.Body) error {
	if !f.failed.Swap(true) {
		return errors.New("disk hiccup")
	}
	return f.fakeSink.Deliver(ctx, convID, key, bodies...)
}

func TestDeliverRetries(t *testing.T) {
	sink := &flakySink{fakeSink: newSink()}
	b := New(Default(), sink, Options{TypingDelay: time.Millisecond})
	defer b.Close()
	if err := b.Send(context.Background(), provider.Message{Conversation: convID, Kind: provider.Start}); err != nil {
		t.Fatal(err)
	}
	got := sink.replies(t, convID, 2)
	if got[0].key != "demo/start/0" {
		t.Errorf("first key = %q", got[0].key)
	}
}
