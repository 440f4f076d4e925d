// Package store keeps Porthole's durable state: conversations, their
// transcripts, the outbox of user messages not yet handed to the bot
// platform, and the small per-conversation attributes that providers need
// (upstream conversation ids, session data, scripted-bot state).
//
// The store is the truth; the bus only tells sockets that something changed.
// Every implementation (memory for tests, bbolt as the embedded default,
// Redis later) must pass the same conformance suite in storetest.go.
package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// ErrNotFound reports that a conversation, message or link does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrClosed reports a call on a store that has been closed.
var ErrClosed = errors.New("store: closed")

// From says who wrote a message.
type From string

// The authors of transcript messages.
const (
	FromUser From = "user"
	FromBot  From = "bot"
)

// State is the upstream delivery state of a user message. Bot
// messages have no state (the empty string).
type State string

// The delivery states of a user message.
const (
	// Pending: stored and acknowledged, not yet accepted by the bot
	// platform. Pending messages are listed by Outbox so that a restarted
	// server hands them upstream again.
	Pending State = "pending"
	// Delivered: the bot platform accepted the message.
	Delivered State = "delivered"
	// Failed: the platform refused it or stayed unreachable through every
	// retry. The message stays in the transcript; a retry sets it Pending.
	Failed State = "failed"
)

// Conversation is one visitor's conversation with one bot.
type Conversation struct {
	ID  string // 32 lowercase hex characters, random
	Bot string
	// Visitor is the key that finds the conversation (Find): a visitor
	// id, or the key of a signed-in user, whose conversation follows the
	// user from device to device. Empty when Rebind has unbound it: no
	// key finds it, and it lives on only until it is pruned.
	Visitor string
	Created time.Time
	Updated time.Time // time of the last append; retention counts from it
	Last    uint64    // seq of the newest message, 0 when empty
}

// Message is one transcript entry.
type Message struct {
	Conversation string
	// Seq is assigned by Append: 1 for the first message of a
	// conversation, then one more for each message, with no holes.
	Seq uint64
	// ID is the server's id of the message; Append fills it when empty.
	ID string
	// ClientID makes Append idempotent: a second Append with the same
	// non-empty ClientID in the same conversation returns the first
	// message unchanged. For user messages it is the widget's message id;
	// for bot replies it is the provider's deduplication key.
	ClientID string
	From     From
	// At is when the message was stored; Append fills it when zero.
	At time.Time
	// Body is the canonical JSON of the neutral widget.Body.
	Body []byte
	// Payload is the opaque postback payload of a button or quick-reply
	// click, kept server side so the click can be handed upstream again
	// after a restart. Empty for typed text.
	Payload string
	State   State
	// Reason is the failure reason code when State is Failed, or when it
	// is Pending after a failure the visitor was shown while retries go
	// on in the background (the message stays on the outbox). Every store
	// keeps it as SetState gave it.
	Reason string
}

// Loaded is what Load read.
type Loaded struct {
	Conversation Conversation
	// Message is the message at the seq asked for; HasMessage is false
	// when there is none (seq 0, or beyond the transcript).
	Message    Message
	HasMessage bool
	// Attrs holds the attributes asked for that have a value.
	Attrs map[string]string
}

// Cursor is a position in List's order: conversations by Updated, newest
// first, and by ID (descending) among those updated in the same
// millisecond. The zero Cursor is before the newest.
type Cursor struct {
	Updated time.Time
	ID      string
}

// after reports whether c comes after the cursor in List's order.
func (cur Cursor) after(c Conversation) bool {
	if cur.Updated.IsZero() {
		return true
	}
	u := c.Updated.Truncate(precision)
	at := cur.Updated.Truncate(precision)
	return u.Before(at) || u.Equal(at) && c.ID < cur.ID
}

// listOrder orders conversations for List.
func listOrder(a, b Conversation) int {
	if c := b.Updated.Compare(a.Updated); c != 0 {
		return c
	}
	return strings.Compare(b.ID, a.ID)
}

// Store is the durable state behind the conversation service.
// All methods are safe for concurrent use.
type Store interface {
	// Conversation returns the conversation of visitor with bot, creating
	// it (with a fresh random ID) on first use. created reports whether it
	// was made by this call.
	Conversation(ctx context.Context, bot, visitor string) (c Conversation, created bool, err error)

	// Find returns the conversation of visitor with bot without creating
	// it, or ErrNotFound: for pages that only show what exists.
	Find(ctx context.Context, bot, visitor string) (Conversation, error)

	// Rebind makes key (a visitor or user key of the same bot) the one
	// that finds conversation id, in place of the key that found it: a
	// visitor's conversation becomes a signed-in user's, or, with an empty
	// key, nobody's (a logout, a revoked visitor token). When key finds
	// another conversation already, nothing changes: Rebind returns that
	// one with moved false. It returns ErrNotFound for an unknown id.
	Rebind(ctx context.Context, id, key string) (c Conversation, moved bool, err error)

	// Get returns the conversation with the given id, or ErrNotFound.
	Get(ctx context.Context, id string) (Conversation, error)

	// Append stores m as the next message of conversation m.Conversation
	// and returns it with Seq, ID and At filled in. When m.ClientID is not
	// empty and a message with that ClientID already exists in the
	// conversation, Append stores nothing and returns the existing message
	// with dup set. A message appended in State Pending is also put on the
	// outbox. Append returns ErrNotFound for an unknown conversation.
	Append(ctx context.Context, m Message) (stored Message, dup bool, err error)

	// Read returns up to limit messages of the conversation with
	// Seq > after, in Seq order.
	Read(ctx context.Context, conversation string, after uint64, limit int) ([]Message, error)

	// SetState changes the delivery state of a stored message and returns
	// the message as it is now. Pending puts it on the outbox, Delivered
	// and Failed take it off.
	SetState(ctx context.Context, conversation string, seq uint64, state State, reason string) (Message, error)

	// Outbox returns up to limit Pending messages of all conversations,
	// oldest first: what a starting server must hand upstream again.
	Outbox(ctx context.Context, limit int) ([]Message, error)

	// Pending returns the seqs of the conversation's Pending messages,
	// lowest first, up to limit: what the dispatcher holding its claim
	// hands upstream, whichever process stored them. It returns
	// ErrNotFound for an unknown conversation.
	Pending(ctx context.Context, conversation string, limit int) ([]uint64, error)

	// Claim takes the dispatch of the conversation's outbox for owner until
	// the given time, so that several server processes can share dispatch
	// and still hand each conversation's messages upstream in order: one
	// owner at a time. It reports true when no other owner holds a claim
	// that is still valid (until after the store's current time), and
	// renews owner's own claim, extended or shortened to until. A claim
	// that runs out frees the conversation, so that the work of a process
	// that died is taken over. owner must not be empty. Claim returns
	// ErrNotFound for an unknown conversation.
	Claim(ctx context.Context, conversation, owner string, until time.Time) (bool, error)

	// Unclaim gives the conversation's claim back if owner holds it, so
	// that a graceful shutdown does not leave its conversations waiting
	// for their lease to run out. It is a no-op otherwise, also for an
	// unknown conversation.
	Unclaim(ctx context.Context, conversation, owner string) error

	// Unclaimed returns up to limit ids of conversations that have Pending
	// messages and no valid claim at now (none, or one that ran out), the
	// one with the oldest pending message first: what a dispatcher polls
	// to find work, a dead process's included. The list is a hint, not a
	// reservation: another owner may claim a conversation first, and
	// Claim decides.
	Unclaimed(ctx context.Context, now time.Time, limit int) ([]string, error)

	// SetAttr stores a small per-conversation value (an upstream id, the
	// session data, the scripted bot's state). An empty value deletes it.
	SetAttr(ctx context.Context, conversation, key, value string) error

	// Load reads in one go (one transaction, one round trip) what an
	// upstream call needs: the conversation, the message at seq (when
	// seq is not 0 and it exists) and the attributes named by keys. It
	// returns ErrNotFound for an unknown conversation.
	Load(ctx context.Context, conversation string, seq uint64, keys ...string) (Loaded, error)

	// Attr returns a value stored by SetAttr, or "" when there is none.
	Attr(ctx context.Context, conversation, key string) (string, error)

	// CompareAndSetAttr sets key to value only if its current value equals
	// old ("" means absent; an empty value deletes it), and reports
	// whether it did: a read-modify-write of an attribute that stays right
	// when several processes share the store (a per-conversation counter,
	// a start id taken once). It returns ErrNotFound for an unknown
	// conversation.
	CompareAndSetAttr(ctx context.Context, conversation, key, old, value string) (bool, error)

	// Link maps an upstream reference (a platform's conversation or user
	// id) of a bot to one of our conversations, so that a callback that
	// only names the upstream id finds its conversation.
	Link(ctx context.Context, bot, ref, conversation string) error

	// Resolve returns the conversation linked to ref, or ErrNotFound.
	Resolve(ctx context.Context, bot, ref string) (string, error)

	// Prune deletes every conversation last updated before the given time,
	// with its messages, attributes, links, outbox entries and claim, and
	// returns how many conversations it deleted.
	Prune(ctx context.Context, before time.Time) (int, error)

	// List returns up to limit conversations of bot, the most recently
	// updated first, starting after the cursor in that order (the zero
	// Cursor starts at the newest): for an administrator's listing, not
	// for a request path, since it may read every conversation.
	List(ctx context.Context, bot string, after Cursor, limit int) ([]Conversation, error)

	// Attrs returns every attribute of the conversation, for an export of
	// everything held about a visitor. It returns ErrNotFound for an
	// unknown conversation.
	Attrs(ctx context.Context, conversation string) (map[string]string, error)

	// Erase deletes one conversation now, with its messages, attributes,
	// links, outbox entries and claim, and unbinds the key that found it:
	// what a visitor's request to be forgotten asks for. It returns
	// ErrNotFound for an unknown conversation.
	Erase(ctx context.Context, id string) error

	// Close releases the store. Calls after Close return ErrClosed.
	Close() error
}
