package server

import (
	"context"
	"errors"
	"time"

	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/web"
	"github.com/porthole-chat/porthole/widget"
)

// This file is the reading half of the service's door: what the
// transports (the socket, the chat pages) show of a conversation, in
// widget terms, so that none of them reads the store.

// Conv is a conversation as the transports see it.
type Conv struct {
	ID      string
	Bot     string
	Created time.Time
	Last    uint64 // seq of the newest message, 0 when empty
}

func convOf(c store.Conversation) Conv {
	return Conv{ID: c.ID, Bot: c.Bot, Created: c.Created, Last: c.Last}
}

// Entry is a stored message as the transports show it: its body decoded
// (one that does not decode shows as a placeholder) and its delivery
// state in widget terms.
type Entry struct {
	Seq uint64
	ID  string
	// ClientID is the visitor's own id of a visitor message; "" for the
	// bot's.
	ClientID string
	Mine     bool // written by the visitor
	At       time.Time
	Body     widget.Body
	// State of a visitor message: widget.StateSent (stored, not yet with
	// the platform), widget.StateDelivered or widget.StateFailed (with
	// Reason); "" for the bot's.
	State  string
	Reason string
	// payload is a click's postback payload, kept for a retry.
	payload string
	// bad says the stored body did not decode: Body is a placeholder.
	bad bool
}

// undecodable stands in for a stored body that does not decode.
var undecodable = widget.Text("[this message could not be shown]")

// retrying reports whether m failed visibly and is still retried in the
// background: Pending, with the reason of its failure. The visitor sees
// it failed and may retry; the store keeps it on the outbox.
func retrying(m store.Message) bool {
	return m.From == store.FromUser && m.State == store.Pending && m.Reason != ""
}

func entryOf(m store.Message) Entry {
	e := Entry{Seq: m.Seq, ID: m.ID, At: m.At, Mine: m.From == store.FromUser, payload: m.Payload}
	if b, err := widget.DecodeBody(m.Body); err == nil {
		e.Body = b
	} else {
		e.Body, e.bad = undecodable, true
	}
	if e.Mine {
		e.ClientID = m.ClientID
		switch m.State {
		case store.Delivered:
			e.State = widget.StateDelivered
		case store.Failed:
			e.State, e.Reason = widget.StateFailed, m.Reason
		case store.Pending:
			e.State = widget.StateSent
			if retrying(m) {
				e.State, e.Reason = widget.StateFailed, m.Reason
			}
		default:
			e.State = widget.StateSent
		}
	}
	return e
}

// Find returns the conversation of bot that key finds, recording
// nothing; found is false when there is none.
func (s *Service) Find(ctx context.Context, bot, key string) (c Conv, found bool, err error) {
	sc, err := s.store.Find(ctx, bot, key)
	if errors.Is(err, store.ErrNotFound) {
		return Conv{}, false, nil
	}
	return convOf(sc), err == nil, err
}

// Get returns the conversation with the given id, as stored now.
func (s *Service) Get(ctx context.Context, conv string) (Conv, error) {
	sc, err := s.store.Get(ctx, conv)
	return convOf(sc), err
}

// Transcript returns up to limit entries of conv after seq after, in
// order.
func (s *Service) Transcript(ctx context.Context, conv string, after uint64, limit int) ([]Entry, error) {
	ms, err := s.store.Read(ctx, conv, after, limit)
	if err != nil {
		return nil, err
	}
	es := make([]Entry, len(ms))
	for i, m := range ms {
		es[i] = entryOf(m)
	}
	return es, nil
}

// entryAt returns the entry at seq, if conv has one.
func (s *Service) entryAt(ctx context.Context, conv string, seq uint64) (Entry, bool) {
	if seq == 0 {
		return Entry{}, false
	}
	es, err := s.Transcript(ctx, conv, seq-1, 1)
	if err != nil || len(es) == 0 || es[0].Seq != seq {
		return Entry{}, false
	}
	return es[0], true
}

// RetryOf returns, for posting again, the visitor's failed message at
// seq; false when there is none (it is no longer failed, say).
func (s *Service) RetryOf(ctx context.Context, conv string, seq uint64) (Inbound, bool) {
	e, ok := s.entryAt(ctx, conv, seq)
	if !ok || !e.Mine || e.State != widget.StateFailed || e.bad {
		return Inbound{}, false
	}
	return Inbound{ClientID: e.ClientID, Text: e.Body.Text, Payload: e.payload}, true
}

// ClickOf returns the title and payload of the button or quick reply
// that ref names on a bot message of conv; false when the bot offered
// no such thing.
func (s *Service) ClickOf(ctx context.Context, conv string, ref web.Ref) (title, payload string, ok bool) {
	e, ok := s.entryAt(ctx, conv, ref.Seq)
	if !ok || e.Mine || e.bad {
		return "", "", false
	}
	return ref.Postback(e.Body)
}

// These bound how long a chat page keeps refreshing while it waits for
// the bot (AwaitingReply).
const (
	// replyWait is how long after the visitor's message a page keeps
	// waiting for the bot.
	replyWait = time.Minute
	// replyQuiet is how long after a bot message the page still waits
	// for the rest of the bot's turn.
	replyQuiet = 3 * time.Second
	// greetWait is how long a new conversation waits for its greeting.
	greetWait = 20 * time.Second
)

// AwaitingReply says whether the bot is expected to write soon in c,
// whose newest entries es are: the dispatcher still has work for the
// platform (a visitor message or the greeting), the bot is typing, the
// visitor's latest message is recent and unanswered or answered only
// moments ago (a turn often has several messages), or a new
// conversation is waiting for its greeting.
func (s *Service) AwaitingReply(ctx context.Context, c Conv, es []Entry) bool {
	now := time.Now()
	if s.queued(c.ID) || s.IsTyping(ctx, c.ID) {
		return true
	}
	if len(es) == 0 {
		return now.Sub(c.Created) < greetWait
	}
	var lastUser, lastBot *Entry
	for i := range es {
		if e := &es[i]; e.Mine {
			if e.State == widget.StateSent {
				return true // not yet with the platform
			}
			lastUser = e
		} else {
			lastBot = e
		}
	}
	if lastUser == nil {
		return lastBot != nil && now.Sub(lastBot.At) < replyQuiet && now.Sub(c.Created) < greetWait
	}
	if now.Sub(lastUser.At) > replyWait || lastUser.State == widget.StateFailed {
		return false
	}
	return lastBot == nil || lastBot.Seq < lastUser.Seq || now.Sub(lastBot.At) < replyQuiet
}

// queued says whether the dispatcher has work for conv's platform.
func (s *Service) queued(conv string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[conv]
	return q != nil && len(q.items) > 0
}
