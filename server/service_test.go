package server

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

// stateStore fails SetState(Delivered) while failing is set, as a full
// disk would after the platform took the message.
type stateStore struct {
	store.Store
	mu      sync.Mutex
	failing bool
	refused int
}

func (s *stateStore) SetState(ctx context.Context, conv string, seq uint64, st store.State, reason string) (store.Message, error) {
	s.mu.Lock()
	fail := s.failing && st == store.Delivered
	if fail {
		s.refused++
	}
	s.mu.Unlock()
	if fail {
		return store.Message{}, errors.New("no space left on device")
	}
	return s.Store.SetState(ctx, conv, seq, st, reason)
}

func (s *stateStore) refusals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// TestDeliveryRecordRetriedNotTheCall: when the store cannot record that
// the platform took a message, only the record is tried again; the
// visitor's retry of the same id meanwhile sends nothing upstream, and the
// message ends delivered with one call.
func TestDeliveryRecordRetriedNotTheCall(t *testing.T) {
	st := &stateStore{Store: store.NewMemory(), failing: true}
	h := newHarness(t, func(_ *Config, o *Options) { o.Store = st })
	c := h.connect("acme")
	w := c.hello("", 0)
	c.send(&widget.Send{ID: "d1", Text: "hello"})
	c.ack("d1")
	deadline := time.Now().Add(5 * time.Second)
	for st.refusals() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the delivery record was not retried")
		}
		time.Sleep(time.Millisecond)
	}
	c.send(&widget.Send{ID: "d1", Text: "hello"}) // the visitor retries
	c.ack("d1")
	st.mu.Lock()
	st.failing = false
	st.mu.Unlock()
	if s := c.status("d1"); s.State != widget.StateDelivered {
		t.Fatalf("status = %+v", s)
	}
	if n := h.fp.callsFor("d1"); n != 1 {
		t.Fatalf("the platform got the message %d times, want once", n)
	}
	ms, _ := st.Read(context.Background(), w.Conversation, 0, 10)
	if len(ms) != 2 || ms[0].State != store.Delivered || ms[1].From != store.FromBot {
		t.Fatalf("stored = %+v, want the message delivered and the bot's echo", ms)
	}
}
