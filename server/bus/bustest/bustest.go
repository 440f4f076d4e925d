// Package bustest is the conformance suite of bus.Bus: every
// implementation, in process or between processes, must pass Run.
package bustest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/bus"
)

// Open returns two nodes of one bus: two Bus values that share their
// medium, as two server processes on one Redis would (for the in-process
// bus, the same value twice). Open registers their Close with
// t.Cleanup; the Close test closes them earlier.
type Open func(t *testing.T) (a, b bus.Bus)

// Run runs the suite against the bus that open makes.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, bus.Bus, bus.Bus)
	}{
		{"ReachesEveryNode", testReachesEveryNode},
		{"OnlyTheConversation", testOnlyTheConversation},
		{"Cancel", testCancel},
		{"OrderPerPublisher", testOrderPerPublisher},
		{"Fields", testFields},
		{"Concurrent", testConcurrent},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := open(t)
			tt.fn(t, a, b)
		})
	}
}

// collector gathers the events a subscriber gets.
type collector struct {
	mu  sync.Mutex
	evs []bus.Event
}

func (c *collector) add(ev bus.Event) {
	c.mu.Lock()
	c.evs = append(c.evs, ev)
	c.mu.Unlock()
}

func (c *collector) got() []bus.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bus.Event(nil), c.evs...)
}

// waitFor waits until c holds n events (or fails after a while).
func (c *collector) waitFor(t *testing.T, what string, n int) []bus.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if evs := c.got(); len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %d event(s) %+v, want %d", what, len(c.got()), c.got(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settle gives a bus between processes time to deliver what it would,
// before a test checks that something did not arrive. It publishes a
// marker on a conversation of its own from a and waits for it on b: the
// medium has carried everything published before it.
func settle(t *testing.T, a, b bus.Bus) {
	t.Helper()
	var mark collector
	cancel := b.Subscribe("settle-mark", mark.add)
	defer cancel()
	publish(t, a, bus.Event{Conversation: "settle-mark", Seq: 1})
	mark.waitFor(t, "the settle marker", 1)
}

func publish(t *testing.T, b bus.Bus, ev bus.Event) {
	t.Helper()
	if err := b.Publish(t.Context(), ev); err != nil {
		t.Fatalf("Publish(%+v): %v", ev, err)
	}
}

func testReachesEveryNode(t *testing.T, a, b bus.Bus) {
	var onA, onB, onB2 collector
	defer a.Subscribe("c1", onA.add)()
	defer b.Subscribe("c1", onB.add)()
	defer b.Subscribe("c1", onB2.add)()
	publish(t, a, bus.Event{Conversation: "c1", Seq: 7})
	for name, c := range map[string]*collector{"the publisher's node": &onA, "the other node": &onB, "a second subscriber there": &onB2} {
		evs := c.waitFor(t, name, 1)
		if evs[0].Seq != 7 {
			t.Fatalf("%s got %+v", name, evs)
		}
	}
	settle(t, a, b)
	if n := len(onB.got()); n != 1 {
		t.Fatalf("one publish reached a subscriber %d times", n)
	}
}

func testOnlyTheConversation(t *testing.T, a, b bus.Bus) {
	var c1, c2 collector
	defer b.Subscribe("c1", c1.add)()
	defer b.Subscribe("c2", c2.add)()
	publish(t, a, bus.Event{Conversation: "c2", Seq: 1})
	publish(t, a, bus.Event{Conversation: "nobody", Seq: 1}) // no subscriber: no error
	c2.waitFor(t, "c2's subscriber", 1)
	settle(t, a, b)
	if evs := c1.got(); len(evs) != 0 {
		t.Fatalf("c1's subscriber got c2's events: %+v", evs)
	}
}

func testCancel(t *testing.T, a, b bus.Bus) {
	var kept, gone collector
	defer b.Subscribe("c1", kept.add)()
	cancel := b.Subscribe("c1", gone.add)
	publish(t, a, bus.Event{Conversation: "c1", Seq: 1})
	gone.waitFor(t, "before cancel", 1)
	cancel()
	cancel() // twice is fine
	publish(t, a, bus.Event{Conversation: "c1", Seq: 2})
	kept.waitFor(t, "the subscriber that stayed", 2)
	settle(t, a, b)
	if evs := gone.got(); len(evs) != 1 {
		t.Fatalf("a cancelled subscriber got %+v", evs)
	}
	// The last subscriber of a conversation gone, a new one still hears.
	var again collector
	cancelAll := b.Subscribe("c3", func(bus.Event) {})
	cancelAll()
	defer b.Subscribe("c3", again.add)()
	publish(t, a, bus.Event{Conversation: "c3", Seq: 1})
	again.waitFor(t, "a subscriber after the last one left", 1)
}

func testOrderPerPublisher(t *testing.T, a, b bus.Bus) {
	var c collector
	defer b.Subscribe("c1", c.add)()
	const n = 200
	for i := 1; i <= n; i++ {
		publish(t, a, bus.Event{Conversation: "c1", Seq: uint64(i)})
	}
	evs := c.waitFor(t, "every event", n)
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: one publisher's events out of order", i, ev.Seq)
		}
	}
}

func testFields(t *testing.T, a, b bus.Bus) {
	var c collector
	defer b.Subscribe("c1", c.add)()
	want := []bus.Event{
		{Conversation: "c1", Seq: 3},
		{Conversation: "c1", Typing: bus.TypingOn},
		{Conversation: "c1", Typing: bus.TypingOff},
		{Conversation: "c1", Status: bus.Status{ClientID: "m1", State: "failed", Reason: "unavailable"}},
	}
	for _, ev := range want {
		publish(t, a, ev)
	}
	got := c.waitFor(t, "every kind of event", len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d = %+v, want %+v", i, got[i], want[i])
		}
		if back, err := bus.Decode(want[i].Encode()); err != nil || back != want[i] {
			t.Fatalf("Encode/Decode of %+v = %+v, %v", want[i], back, err)
		}
	}
	if _, err := bus.Decode([]byte(`{"s":1}`)); err == nil {
		t.Fatal("Decode took an event without a conversation")
	}
}

func testConcurrent(t *testing.T, a, b bus.Bus) {
	const convs, per = 8, 50
	var total atomic.Int64
	var wg sync.WaitGroup
	cancels := make([]func(), convs)
	for i := range convs {
		cancels[i] = b.Subscribe(fmt.Sprint("k", i), func(bus.Event) { total.Add(1) })
	}
	for i := range convs {
		wg.Add(2)
		go func() { // publishers
			defer wg.Done()
			for j := range per {
				if err := a.Publish(t.Context(), bus.Event{Conversation: fmt.Sprint("k", i), Seq: uint64(j + 1)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() { // subscribers coming and going meanwhile
			defer wg.Done()
			for range per {
				b.Subscribe(fmt.Sprint("k", i), func(bus.Event) {})()
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for total.Load() < convs*per && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if got := total.Load(); got != convs*per {
		t.Fatalf("the steady subscribers got %d events, want %d", got, convs*per)
	}
	for _, c := range cancels {
		c()
	}
}

func testClose(t *testing.T, a, b bus.Bus) {
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := a.Publish(t.Context(), bus.Event{Conversation: "c1", Seq: 1}); err == nil {
		t.Fatal("Publish after Close did not fail")
	}
	b.Close()
}
