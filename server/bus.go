package server

import "sync"

// Event tells the sockets watching a conversation that something changed.
// The store is the truth: an event carries just enough to know what to
// fetch or show, so a lost event costs latency, never data.
type Event struct {
	Conversation string
	// Seq, when not 0: the transcript advanced to this seq; fetch what
	// is newer than what you sent.
	Seq uint64
	// Typing, when not nil: show or hide the typing indicator.
	Typing *bool
	// Status, when not nil: a user message changed delivery state.
	Status *StatusEvent
}

// StatusEvent is a delivery state change of a user message.
type StatusEvent struct {
	ClientID string
	State    string // widget.StateDelivered or widget.StateFailed
	Reason   string
}

// Bus fans events out to every subscriber of a conversation. The default
// is in-process; a Redis implementation carries them between instances.
type Bus interface {
	// Publish hands ev to the current subscribers of ev.Conversation.
	Publish(ev Event)
	// Subscribe calls fn for each event of conversation until cancel is
	// called. fn runs on the publisher's goroutine: it must not block.
	Subscribe(conversation string, fn func(Event)) (cancel func())
}

// LocalBus is the in-process Bus.
type LocalBus struct {
	mu   sync.RWMutex
	subs map[string]map[*subscription]struct{}
}

type subscription struct{ fn func(Event) }

// NewLocalBus returns an empty in-process bus.
func NewLocalBus() *LocalBus {
	return &LocalBus{subs: map[string]map[*subscription]struct{}{}}
}

// Publish calls every subscriber of the conversation.
func (b *LocalBus) Publish(ev Event) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs[ev.Conversation] {
		s.fn(ev)
	}
}

// Subscribe registers fn for the conversation's events.
func (b *LocalBus) Subscribe(conversation string, fn func(Event)) func() {
	s := &subscription{fn: fn}
	b.mu.Lock()
	set := b.subs[conversation]
	if set == nil {
		set = map[*subscription]struct{}{}
		b.subs[conversation] = set
	}
	set[s] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs[conversation], s)
			if len(b.subs[conversation]) == 0 {
				delete(b.subs, conversation)
			}
			b.mu.Unlock()
		})
	}
}
