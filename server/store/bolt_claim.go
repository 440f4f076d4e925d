package store

import (
	"context"
	"encoding/hex"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Claim implements Store. The claim is one record in the claim bucket,
// keyed by the conversation's id like its other records, so that Prune
// deletes it with them. The lease is checked against this process's clock
// in the committer's transaction, which orders racing claims.
func (s *Bolt) Claim(_ context.Context, conversation, owner string, until time.Time) (bool, error) {
	if err := checkOwner(conversation, owner); err != nil {
		return false, err
	}
	id, ok := parseID(conversation)
	if !ok {
		return false, errNoConversation(conversation)
	}
	until = until.UTC().Truncate(precision)
	var won bool
	err := s.batch(func(tx *bolt.Tx) error {
		won = false
		if tx.Bucket(bucketConv).Get(id) == nil {
			return errNoConversation(conversation)
		}
		held, ok, err := getClaim(tx, id)
		if err != nil {
			return err
		}
		if ok && held.owner != owner && held.until.After(time.Now()) {
			return nil
		}
		won = true
		return putClaim(tx, id, claim{owner: owner, until: until})
	})
	return won, err
}

// Unclaim implements Store.
func (s *Bolt) Unclaim(_ context.Context, conversation, owner string) error {
	id, ok := parseID(conversation)
	if !ok {
		return nil // names no conversation, so no claim either
	}
	return s.batch(func(tx *bolt.Tx) error {
		held, ok, err := getClaim(tx, id)
		if err != nil || !ok || held.owner != owner {
			return err
		}
		return tx.Bucket(bucketClaim).Delete(id)
	})
}

// Unclaimed implements Store. It walks the outbox, which is ordered by
// time already, and looks up the claim of each conversation the first time
// it meets one, until it has limit conversations: the cost is the outbox
// entries up to the limit-th unclaimed conversation, plus one claim lookup
// per distinct conversation among them. Pending messages of conversations
// that are claimed, or already listed, are stepped over one by one; when
// live dispatchers hold most of a long outbox (the platform is down), a
// poll reads all of it.
func (s *Bolt) Unclaimed(_ context.Context, now time.Time, limit int) ([]string, error) {
	var out []string
	err := s.view(func(tx *bolt.Tx) error {
		seen := make(map[string]bool)
		cur := tx.Bucket(bucketOutbox).Cursor()
		for k, _ := cur.First(); k != nil && len(out) < limit; k, _ = cur.Next() {
			id := k[8:24]
			if seen[string(id)] {
				continue
			}
			seen[string(id)] = true
			held, ok, err := getClaim(tx, id)
			if err != nil {
				return err
			}
			if !ok || !held.until.After(now) {
				out = append(out, hex.EncodeToString(id))
			}
		}
		return nil
	})
	return out, err
}
