package providertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/widget"
)

// ErrInjected is what a Sink's injected failures return. Its text is
// distinctive so that a test can check that a webhook's answer does not
// show the store's error to the platform.
var ErrInjected = errors.New("providertest: injected store failure (disk full)")

// Delivery is one bot message a provider handed to a Sink.
type Delivery struct {
	Conv string // our conversation id
	Key  string // the idempotency key the provider gave
	Body widget.Body
}

// Sink is a provider.Sink that records what a provider delivers, for the
// adapters' tests. It behaves like the conversation service on the points
// adapters rely on: Deliver stores each body once per conversation, key
// and position (a retried callback stores nothing twice; an empty key
// turns that off), an unknown conversation is provider.ErrUnknownConversation, and
// attributes are kept. Failures can be injected. A body that does not
// validate is refused with an error and fails the test.
type Sink struct {
	t     TB
	known map[string]bool // nil: every conversation exists

	mu          sync.Mutex
	attrs       map[string]string // conv + "\x00" + key
	seen        map[string]bool   // conv + "\x00" + key + "/" + index
	stored      []Delivery
	changed     chan struct{} // closed and replaced at each stored body
	typing      []string      // "conv:on" / "conv:off"
	calls       int
	failDeliver int
	failSetAttr int
	invalid     []string
}

// NewSink returns a Sink in which the conversations convs exist; with
// none named, every conversation does (for tests that do not care). It
// fails t at the end of the test if a provider delivered a body that does
// not validate.
func NewSink(t TB, convs ...string) *Sink {
	s := &Sink{t: t, attrs: map[string]string{}, seen: map[string]bool{}, changed: make(chan struct{})}
	if len(convs) > 0 {
		s.known = map[string]bool{}
		for _, c := range convs {
			s.known[c] = true
		}
	}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, msg := range s.invalid {
			t.Errorf("a provider delivered a body that does not validate: %s", msg)
		}
	})
	return s
}

// exists reports whether conv is a conversation of the sink. s.mu must
// be held.
func (s *Sink) exists(conv string) error {
	if s.known != nil && !s.known[conv] {
		return fmt.Errorf("conversation %s: %w", conv, provider.ErrUnknownConversation)
	}
	return nil
}

// Deliver stores bodies for conv, each once per key and position.
func (s *Sink) Deliver(_ context.Context, conv, key string, bodies ...widget.Body) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if err := s.exists(conv); err != nil {
		return err
	}
	if s.failDeliver > 0 {
		s.failDeliver--
		return ErrInjected
	}
	for i, b := range bodies {
		if err := b.Validate(); err != nil {
			s.invalid = append(s.invalid, fmt.Sprintf("%v: %+v", err, b))
			return fmt.Errorf("invalid body delivered: %w", err)
		}
		k := fmt.Sprintf("%s\x00%s/%d", conv, key, i)
		if key != "" && s.seen[k] {
			continue
		}
		s.seen[k] = true
		s.stored = append(s.stored, Delivery{conv, key, b})
		close(s.changed)
		s.changed = make(chan struct{})
	}
	return nil
}

// Typing records the indicator's changes, as Typings returns them.
func (s *Sink) Typing(conv string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := "off"
	if on {
		state = "on"
	}
	s.typing = append(s.typing, conv+":"+state)
}

// Attr returns an attribute of conv, "" when it was never set.
func (s *Sink) Attr(_ context.Context, conv, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.exists(conv); err != nil {
		return "", err
	}
	return s.attrs[conv+"\x00"+key], nil
}

// SetAttr sets an attribute of conv.
func (s *Sink) SetAttr(_ context.Context, conv, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.exists(conv); err != nil {
		return err
	}
	if s.failSetAttr > 0 {
		s.failSetAttr--
		return ErrInjected
	}
	s.attrs[conv+"\x00"+key] = value
	return nil
}

// CompareAndSetAttr sets an attribute of conv to value if it is old
// ("" for one never set), atomically, as the store does. An injected
// SetAttr failure applies to it too.
func (s *Sink) CompareAndSetAttr(_ context.Context, conv, key, old, value string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.exists(conv); err != nil {
		return false, err
	}
	if s.failSetAttr > 0 {
		s.failSetAttr--
		return false, ErrInjected
	}
	k := conv + "\x00" + key
	if s.attrs[k] != old {
		return false, nil
	}
	if value == "" {
		delete(s.attrs, k)
	} else {
		s.attrs[k] = value
	}
	return true, nil
}

// FailDeliver makes the next n Deliver calls for existing conversations
// fail with ErrInjected, storing nothing, as a store in trouble would.
func (s *Sink) FailDeliver(n int) {
	s.mu.Lock()
	s.failDeliver += n
	s.mu.Unlock()
}

// FailSetAttr makes the next n SetAttr or CompareAndSetAttr calls for
// existing conversations fail with ErrInjected, setting nothing.
func (s *Sink) FailSetAttr(n int) {
	s.mu.Lock()
	s.failSetAttr += n
	s.mu.Unlock()
}

// All returns every stored body, in the order stored.
func (s *Sink) All() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.stored...)
}

// Deliveries returns the bodies stored for conv, in the order stored.
func (s *Sink) Deliveries(conv string) []Delivery {
	var out []Delivery
	for _, d := range s.All() {
		if d.Conv == conv {
			out = append(out, d)
		}
	}
	return out
}

// Texts returns the summaries of the bodies stored for conv, for short
// assertions on what the bot said.
func (s *Sink) Texts(conv string) []string {
	var out []string
	for _, d := range s.Deliveries(conv) {
		out = append(out, d.Body.Summary())
	}
	return out
}

// Typings returns the typing indicator's changes, "conv:on" or
// "conv:off", in order.
func (s *Sink) Typings() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.typing...)
}

// Calls returns how many times Deliver was called, failures and
// duplicates included: how a test sees retries that stored nothing.
func (s *Sink) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Await waits until at least n bodies have been stored and returns them
// all, failing t if that takes longer than IdleTimeout: for replies that
// come without an emulator to wait for.
func (s *Sink) Await(t TB, n int) []Delivery {
	t.Helper()
	deadline := time.NewTimer(IdleTimeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, changed := len(s.stored), s.changed
		s.mu.Unlock()
		if got >= n {
			return s.All()
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("stored %d bodies, want %d", got, n)
			return nil
		}
	}
}
