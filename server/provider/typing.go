package provider

import "sync"

// ReplyWatch lets an adapter show the bot's typing indicator from the
// moment the platform accepted a visitor message until the first reply:
// it tracks the sends in progress per conversation, so that a reply that
// arrives before the platform's answer to the send (a fast bot, a
// callback overtaking the answer) keeps the indicator off. The zero
// value is ready to use.
type ReplyWatch struct {
	mu      sync.Mutex
	flights map[string]*flight
}

// flight is the sends of one conversation in progress.
type flight struct {
	refs    int
	replied bool
}

// Begin registers a send of conversation conv; done ends it and reports
// whether a reply came meanwhile.
func (w *ReplyWatch) Begin(conv string) (done func() (replied bool)) {
	w.mu.Lock()
	if w.flights == nil {
		w.flights = map[string]*flight{}
	}
	f := w.flights[conv]
	if f == nil {
		f = &flight{}
		w.flights[conv] = f
	}
	f.refs++
	w.mu.Unlock()
	return func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		if f.refs--; f.refs == 0 {
			delete(w.flights, conv)
		}
		return f.replied
	}
}

// Replied tells the sends of conv in progress that a reply arrived.
func (w *ReplyWatch) Replied(conv string) {
	w.mu.Lock()
	if f := w.flights[conv]; f != nil {
		f.replied = true
	}
	w.mu.Unlock()
}
