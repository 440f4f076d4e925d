package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/bus"
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
	w := c.open("", 0)
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

// attrCounter counts the writes of one attribute key.
type attrCounter struct {
	store.Store
	key string
	mu  sync.Mutex
	n   int
}

func (s *attrCounter) SetAttr(ctx context.Context, conv, key, value string) error {
	if key == s.key {
		s.mu.Lock()
		s.n++
		s.mu.Unlock()
	}
	return s.Store.SetAttr(ctx, conv, key, value)
}

// TestReadMarkersAreGathered: a widget sends a read marker for nearly
// every message it shows; the service writes each conversation's newest
// one once per round, and the last ones when it closes, not one write per
// frame.
func TestReadMarkersAreGathered(t *testing.T) {
	readFlush = time.Hour // only Close writes them here
	defer func() { readFlush = 2 * time.Second }()
	st := &attrCounter{Store: store.NewMemory(), key: attrRead}
	svc := NewService(st, bus.NewLocal(), slog.New(slog.DiscardHandler), testRetry)
	ctx := context.Background()
	var convs []string
	for _, v := range []string{"v1", "v2"} {
		c, _, err := st.Conversation(ctx, "acme", v)
		if err != nil {
			t.Fatal(err)
		}
		convs = append(convs, c.ID)
	}
	for seq := uint64(1); seq <= 50; seq++ {
		for _, c := range convs {
			svc.MarkRead(ctx, c, seq)
		}
	}
	svc.MarkRead(ctx, convs[0], 7) // an older marker does not go back
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st.n != 2 {
		t.Fatalf("%d read marker writes for 2 conversations, want 2", st.n)
	}
	for _, c := range convs {
		if got, _ := st.Attr(ctx, c, attrRead); got != "50" {
			t.Fatalf("read marker of %s = %q, want 50", c, got)
		}
	}
}
