package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// precision is the resolution of stored times, so that every time read back
// equals the one returned by the call that stored it and round-trips
// through RFC 3339 with milliseconds.
const precision = time.Millisecond

// newConversationID returns 32 lowercase hex characters from crypto/rand:
// conversation ids are bearer secrets of the widget and must not be guessed.
func newConversationID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newMessageID returns "m" and 24 random hex characters.
func newMessageID() string {
	var b [12]byte
	rand.Read(b[:])
	return "m" + hex.EncodeToString(b[:])
}

// now is the creation time of conversations and the default At of messages.
func now() time.Time { return time.Now().UTC().Truncate(precision) }

// stampAt returns the At to store for a message given at, now and the
// conversation's last update. A zero at becomes now, but never earlier than
// last, so that a wall clock stepping back cannot order a conversation's
// Outbox entries other than by Seq.
func stampAt(at, now, last time.Time) time.Time {
	if at.IsZero() {
		at = now
		if at.Before(last) {
			at = last
		}
	}
	return at.UTC().Truncate(precision)
}

// checkState rejects states SetState cannot set.
func checkState(conversation string, seq uint64, s State) error {
	switch s {
	case Pending, Delivered, Failed:
		return nil
	}
	return fmt.Errorf("store: set state of message %d of conversation %s: invalid state %q", seq, conversation, s)
}

func errNoConversation(id string) error {
	return fmt.Errorf("conversation %s: %w", id, ErrNotFound)
}

func errNoMessage(id string, seq uint64) error {
	return fmt.Errorf("message %d of conversation %s: %w", seq, id, ErrNotFound)
}

// checkOwner rejects the empty owner: two dispatchers that both left their
// name empty would take each other's claim for their own.
func checkOwner(conversation, owner string) error {
	if owner == "" {
		return fmt.Errorf("store: claim of conversation %s: empty owner; give each dispatcher a name of its own (host and process id, say)", conversation)
	}
	return nil
}
