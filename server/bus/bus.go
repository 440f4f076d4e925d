// Package bus tells the sockets of a conversation that something changed,
// on this node and, through an implementation that carries events
// between processes, on every other node.
//
// The store is the truth; an Event carries only enough to know what to
// fetch or show. A lost event costs latency, never a message: a socket
// also checks the store's Last on each heartbeat (server/socket), so it
// catches up by itself.
//
// Every Bus passes the conformance suite in bustest, as every store
// passes storetest.
package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// ErrClosed reports a Publish on a closed bus.
var ErrClosed = errors.New("bus: closed")

// Typing states of an Event.
const (
	TypingNone uint8 = iota // the event is not about typing
	TypingOn                // the bot is typing
	TypingOff               // the bot stopped typing
)

// Event is one change of a conversation. It has no pointers, so that it
// is a value that encodes as is (Encode) for a bus between processes.
type Event struct {
	Conversation string `json:"c"`
	// Seq, when not 0: the transcript advanced to this seq; fetch what
	// is newer than what you sent.
	Seq uint64 `json:"s,omitempty"`
	// Typing, when not TypingNone: show or hide the typing indicator.
	Typing uint8 `json:"t,omitempty"`
	// Status, when its ClientID is set: a visitor message changed
	// delivery state.
	Status Status `json:"st,omitzero"`
}

// Status is a delivery state change of a visitor message.
type Status struct {
	ClientID string `json:"id"`
	State    string `json:"state"` // widget.StateDelivered or widget.StateFailed
	Reason   string `json:"reason,omitempty"`
}

// Encode returns ev as JSON, for a bus between processes.
func (ev Event) Encode() []byte {
	b, _ := json.Marshal(ev) // strings and numbers only: never fails
	return b
}

// Decode reads an event that Encode wrote.
func Decode(b []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return Event{}, fmt.Errorf("bus: bad event %q: %w", b, err)
	}
	if ev.Conversation == "" {
		return Event{}, fmt.Errorf("bus: event %q names no conversation", b)
	}
	return ev, nil
}

// Bus fans events out to the subscribers of a conversation, wherever the
// event was published.
type Bus interface {
	// Publish hands ev to every subscriber of ev.Conversation, on this
	// node and the others. An error means the event may not have gone
	// out; what it was about is in the store anyway.
	Publish(ctx context.Context, ev Event) error
	// Subscribe calls fn for each event of conversation until cancel is
	// called (cancel may be called more than once). fn runs on the bus's
	// own goroutine: it must not block. A node subscribes to the others
	// once per conversation, however many of its sockets watch it.
	Subscribe(conversation string, fn func(Event)) (cancel func())
	// Close stops the bus: Publish returns ErrClosed from then on.
	Close() error
}

// Fanout is the local half of every Bus: this node's subscribers, by
// conversation. A bus between processes feeds what it receives into
// Deliver, and learns from first and last when this node starts and stops
// watching a conversation, to subscribe to the others for it only then.
type Fanout struct {
	mu          sync.RWMutex
	subs        map[string]map[*subscription]struct{}
	first, last func(conversation string)
}

type subscription struct{ fn func(Event) }

// NewFanout returns an empty Fanout. first runs when a conversation gets
// its first subscriber and last when it loses its last one; either may
// be nil. They run under the Fanout's lock, so that a subscribe and an
// unsubscribe of one conversation reach them in order: they must not
// block or call back into the Fanout.
func NewFanout(first, last func(conversation string)) *Fanout {
	return &Fanout{subs: map[string]map[*subscription]struct{}{}, first: first, last: last}
}

// Subscribe registers fn for the conversation's events.
func (f *Fanout) Subscribe(conversation string, fn func(Event)) (cancel func()) {
	s := &subscription{fn: fn}
	f.mu.Lock()
	set := f.subs[conversation]
	if set == nil {
		set = map[*subscription]struct{}{}
		f.subs[conversation] = set
		if f.first != nil {
			f.first(conversation)
		}
	}
	set[s] = struct{}{}
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			delete(f.subs[conversation], s)
			if len(f.subs[conversation]) == 0 {
				delete(f.subs, conversation)
				if f.last != nil {
					f.last(conversation)
				}
			}
		})
	}
}

// Deliver calls every local subscriber of ev's conversation.
func (f *Fanout) Deliver(ev Event) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for s := range f.subs[ev.Conversation] {
		s.fn(ev)
	}
}

// Watched reports how many conversations have local subscribers.
func (f *Fanout) Watched() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.subs)
}

// Local is the Bus of a single process: Publish delivers at once, on the
// publisher's goroutine.
type Local struct {
	*Fanout
	mu     sync.RWMutex
	closed bool
}

var _ Bus = (*Local)(nil)

// NewLocal returns an in-process bus.
func NewLocal() *Local { return &Local{Fanout: NewFanout(nil, nil)} }

// Publish implements Bus.
func (b *Local) Publish(_ context.Context, ev Event) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	b.Deliver(ev)
	return nil
}

// Close implements Bus.
func (b *Local) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}
