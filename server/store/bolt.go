package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltOptions tunes OpenBolt; the zero value is the production setting.
type BoltOptions struct {
	// Timeout is how long OpenBolt waits for another process to release
	// the file. Zero means one second.
	Timeout time.Duration
}

// Bolt is the embedded Store: one bbolt file, safe for concurrent use by one
// process. Every write is on disk when it returns: writes go through one
// committer goroutine (see committer) that runs all the writes queued
// while the previous transaction committed in one transaction, so that
// concurrent writers share an fsync and a lone writer waits for nothing
// but its own.
type Bolt struct {
	db     *bolt.DB
	path   string
	closed atomic.Bool

	mu       sync.Mutex
	wake     sync.Cond // signalled when queue grows or stopping is set
	queue    []*write  // writes waiting for the next transaction
	spare    []*write  // the previous batch's slice, reused for the queue
	stopping bool      // set by Close: no more writes are queued
	stopped  chan struct{}
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens the store at path, creating the file and its directory
// when missing. It fails after opts.Timeout when another process holds the
// file, so that two servers never share one transcript.
func OpenBolt(path string, opts BoltOptions) (*Bolt, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("store: open %s: file is locked, is another porthole running? (%w)", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketConv, bucketVisitor, bucketMsg, bucketClient, bucketOutbox, bucketAttr, bucketLink, bucketLinkBy, bucketClaim} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Bolt{db: db, path: path, stopped: make(chan struct{})}
	s.wake.L = &s.mu
	go s.committer()
	return s, nil
}

// Conversation implements Store.
func (s *Bolt) Conversation(_ context.Context, bot, visitor string) (Conversation, bool, error) {
	key := pair(nil, bot, visitor)
	var c Conversation
	found := false
	err := s.view(func(tx *bolt.Tx) (err error) {
		if id := tx.Bucket(bucketVisitor).Get(key); id != nil {
			c, err = getConv(tx, id)
			found = true
		}
		return err
	})
	if err != nil || found {
		return c, false, err
	}
	t := now()
	fresh := Conversation{ID: newConversationID(), Bot: bot, Visitor: visitor, Created: t, Updated: t}
	var created bool
	err = s.batch(func(tx *bolt.Tx) (err error) {
		if id := tx.Bucket(bucketVisitor).Get(key); id != nil { // created since the View
			c, err = getConv(tx, id)
			created = false
			return err
		}
		c, created = fresh, true
		id, _ := parseID(fresh.ID)
		if err := tx.Bucket(bucketVisitor).Put(key, id); err != nil {
			return err
		}
		return putConv(tx, id, fresh)
	})
	return c, created, err
}

// Find implements Store.
func (s *Bolt) Find(_ context.Context, bot, visitor string) (Conversation, error) {
	c := Conversation{}
	err := s.view(func(tx *bolt.Tx) (err error) {
		id := tx.Bucket(bucketVisitor).Get(pair(nil, bot, visitor))
		if id == nil {
			return ErrNotFound
		}
		c, err = getConv(tx, id)
		return err
	})
	return c, err
}

// Rebind implements Store.
func (s *Bolt) Rebind(_ context.Context, conversation, key string) (Conversation, bool, error) {
	id, ok := parseID(conversation)
	if !ok {
		return Conversation{}, false, errNoConversation(conversation)
	}
	var c Conversation
	var moved bool
	err := s.batch(func(tx *bolt.Tx) (err error) {
		if c, err = getConv(tx, id); err != nil {
			return err
		}
		moved = true
		if key == c.Visitor {
			return nil
		}
		visitors := tx.Bucket(bucketVisitor)
		if other := visitors.Get(pair(nil, c.Bot, key)); other != nil && key != "" {
			c, err = getConv(tx, other)
			moved = false
			return err
		}
		if err := unbind(tx, id, c); err != nil {
			return err
		}
		if key != "" {
			if err := visitors.Put(pair(nil, c.Bot, key), id); err != nil {
				return err
			}
		}
		c.Visitor = key
		return putConv(tx, id, c)
	})
	return c, moved, err
}

// unbind deletes the key that finds conversation c (id), if it still
// finds c.
func unbind(tx *bolt.Tx, id []byte, c Conversation) error {
	k := pair(nil, c.Bot, c.Visitor)
	if bytes.Equal(tx.Bucket(bucketVisitor).Get(k), id) {
		return tx.Bucket(bucketVisitor).Delete(k)
	}
	return nil
}

// Get implements Store.
func (s *Bolt) Get(_ context.Context, id string) (Conversation, error) {
	raw, ok := parseID(id)
	if !ok {
		return Conversation{}, errNoConversation(id)
	}
	var c Conversation
	err := s.view(func(tx *bolt.Tx) (err error) {
		c, err = getConv(tx, raw)
		return err
	})
	return c, err
}

// Append implements Store.
func (s *Bolt) Append(_ context.Context, m Message) (Message, bool, error) {
	id, ok := parseID(m.Conversation)
	if !ok {
		return Message{}, false, errNoConversation(m.Conversation)
	}
	if m.ID == "" {
		m.ID = newMessageID() // outside the batch: its function may run twice
	}
	t := now()
	var out Message
	var dup bool
	err := s.batch(func(tx *bolt.Tx) error {
		out, dup = m, false
		c, err := getConv(tx, id)
		if err != nil {
			return err
		}
		if m.ClientID != "" {
			if v := tx.Bucket(bucketClient).Get(under(id, m.ClientID)); v != nil {
				out, err = getMessage(tx, id, m.Conversation, binary.BigEndian.Uint64(v))
				dup = true
				return err
			}
		}
		out.At = stampAt(m.At, t, c.Updated)
		out.Seq = c.Last + 1
		c.Last = out.Seq
		if out.At.After(c.Updated) {
			c.Updated = out.At
		}
		if err := putMessage(tx, id, out); err != nil {
			return err
		}
		if m.ClientID != "" {
			if err := tx.Bucket(bucketClient).Put(under(id, m.ClientID), be(nil, out.Seq)); err != nil {
				return err
			}
		}
		return putConv(tx, id, c)
	})
	if err != nil {
		return Message{}, false, err
	}
	return out, dup, nil
}

// Read implements Store.
func (s *Bolt) Read(_ context.Context, conversation string, after uint64, limit int) ([]Message, error) {
	id, ok := parseID(conversation)
	if !ok {
		return nil, errNoConversation(conversation)
	}
	var out []Message
	err := s.view(func(tx *bolt.Tx) error {
		c, err := getConv(tx, id)
		if err != nil || limit <= 0 || after >= c.Last {
			return err
		}
		out = make([]Message, 0, min(uint64(limit), c.Last-after))
		cur := tx.Bucket(bucketMsg).Cursor()
		for k, v := cur.Seek(be(id, after+1)); bytes.HasPrefix(k, id) && len(out) < limit; k, v = cur.Next() {
			m, err := decodeMessage(conversation, binary.BigEndian.Uint64(k[16:]), v)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// SetState implements Store.
func (s *Bolt) SetState(_ context.Context, conversation string, seq uint64, state State, reason string) (Message, error) {
	if err := checkState(conversation, seq, state); err != nil {
		return Message{}, err
	}
	id, ok := parseID(conversation)
	if !ok {
		return Message{}, errNoConversation(conversation)
	}
	var out Message
	err := s.batch(func(tx *bolt.Tx) (err error) {
		if out, err = getMessage(tx, id, conversation, seq); err != nil {
			return err
		}
		out.State, out.Reason = state, reason
		return putMessage(tx, id, out)
	})
	return out, err
}

// Outbox implements Store.
func (s *Bolt) Outbox(_ context.Context, limit int) ([]Message, error) {
	var out []Message
	err := s.view(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketOutbox).Cursor()
		for k, _ := cur.First(); k != nil && len(out) < limit; k, _ = cur.Next() {
			id := k[8:24]
			m, err := getMessage(tx, id, hex.EncodeToString(id), binary.BigEndian.Uint64(k[24:]))
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// Pending implements Store. It walks the outbox, which is ordered by
// time, not by conversation: a Bolt file has one process, whose
// dispatcher has every pending message in memory and never needs this,
// so a scan is good enough.
func (s *Bolt) Pending(_ context.Context, conversation string, limit int) ([]uint64, error) {
	id, ok := parseID(conversation)
	if !ok {
		return nil, errNoConversation(conversation)
	}
	var out []uint64
	err := s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketConv).Get(id) == nil {
			return errNoConversation(conversation)
		}
		cur := tx.Bucket(bucketOutbox).Cursor()
		for k, _ := cur.First(); k != nil; k, _ = cur.Next() {
			if bytes.Equal(k[8:24], id) {
				out = append(out, binary.BigEndian.Uint64(k[24:]))
			}
		}
		return nil
	})
	slices.Sort(out)
	return out[:min(len(out), max(limit, 0))], err
}

// Prune implements Store. It reads every conversation record and runs in
// one transaction: it is meant for a periodic sweep, not for every request.
func (s *Bolt) Prune(_ context.Context, before time.Time) (int, error) {
	var n int
	err := s.update(func(tx *bolt.Tx) error {
		var old []Conversation
		err := tx.Bucket(bucketConv).ForEach(func(k, v []byte) error {
			c, err := decodeConv(k, v)
			if err == nil && c.Updated.Before(before) {
				old = append(old, c)
			}
			return err
		})
		if err != nil {
			return err
		}
		doomed := make(map[string]bool, len(old))
		for _, c := range old {
			id, _ := parseID(c.ID)
			doomed[string(id)] = true
			if err := deleteConv(tx, id, c); err != nil {
				return err
			}
		}
		var pending [][]byte
		cur := tx.Bucket(bucketOutbox).Cursor()
		for k, _ := cur.First(); k != nil; k, _ = cur.Next() {
			if doomed[string(k[8:24])] {
				pending = append(pending, bytes.Clone(k))
			}
		}
		for _, k := range pending {
			if err := tx.Bucket(bucketOutbox).Delete(k); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	})
	return n, err
}

// List implements Store. It reads every conversation record: an
// administrator's listing, not a request path.
func (s *Bolt) List(_ context.Context, bot string, after Cursor, limit int) ([]Conversation, error) {
	var out []Conversation
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketConv).ForEach(func(k, v []byte) error {
			c, err := decodeConv(k, v)
			if err == nil && c.Bot == bot && after.after(c) {
				out = append(out, c)
			}
			return err
		})
	})
	slices.SortFunc(out, listOrder)
	return out[:min(len(out), max(limit, 0))], err
}

// Attrs implements Store.
func (s *Bolt) Attrs(_ context.Context, conversation string) (map[string]string, error) {
	id, ok := parseID(conversation)
	if !ok {
		return nil, errNoConversation(conversation)
	}
	out := map[string]string{}
	err := s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketConv).Get(id) == nil {
			return errNoConversation(conversation)
		}
		cur := tx.Bucket(bucketAttr).Cursor()
		for k, v := cur.Seek(id); bytes.HasPrefix(k, id); k, v = cur.Next() {
			out[string(k[len(id):])] = string(v)
		}
		return nil
	})
	return out, err
}

// Erase implements Store.
func (s *Bolt) Erase(_ context.Context, conversation string) error {
	id, ok := parseID(conversation)
	if !ok {
		return errNoConversation(conversation)
	}
	return s.update(func(tx *bolt.Tx) error {
		c, err := getConv(tx, id)
		if err != nil {
			return err
		}
		if err := deleteConv(tx, id, c); err != nil {
			return err
		}
		var pending [][]byte
		cur := tx.Bucket(bucketOutbox).Cursor()
		for k, _ := cur.First(); k != nil; k, _ = cur.Next() {
			if bytes.Equal(k[8:24], id) {
				pending = append(pending, bytes.Clone(k))
			}
		}
		for _, k := range pending {
			if err := tx.Bucket(bucketOutbox).Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteConv deletes conversation c (id) with everything keyed by its id
// except its outbox entries, which Prune finds in one pass for all.
func deleteConv(tx *bolt.Tx, id []byte, c Conversation) error {
	var links [][]byte
	cur := tx.Bucket(bucketLinkBy).Cursor()
	for k, _ := cur.Seek(id); bytes.HasPrefix(k, id); k, _ = cur.Next() {
		links = append(links, bytes.Clone(k[16:]))
	}
	for _, k := range links {
		if err := tx.Bucket(bucketLink).Delete(k); err != nil {
			return err
		}
	}
	for _, b := range [][]byte{bucketMsg, bucketClient, bucketAttr, bucketLinkBy, bucketClaim} {
		if err := deletePrefix(tx.Bucket(b), id); err != nil {
			return err
		}
	}
	if err := unbind(tx, id, c); err != nil {
		return err
	}
	return tx.Bucket(bucketConv).Delete(id)
}

// Close implements Store. Writes already queued are committed first (their
// callers get the outcome); writes after Close get ErrClosed.
func (s *Bolt) Close() error {
	if s.closed.Swap(true) {
		return ErrClosed
	}
	s.mu.Lock()
	s.stopping = true
	s.wake.Signal()
	s.mu.Unlock()
	<-s.stopped
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

func (s *Bolt) view(fn func(*bolt.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.wrap(s.db.View(fn))
}

// wrap names the file in bbolt's errors and turns a use after Close into
// ErrClosed; the store's own errors already name their conversation.
func (s *Bolt) wrap(err error) error {
	switch {
	case err == nil, errors.Is(err, ErrNotFound):
		return err
	case errors.Is(err, bolt.ErrDatabaseNotOpen):
		return ErrClosed
	}
	return fmt.Errorf("store: %s: %w", s.path, err)
}

// deletePrefix deletes the keys of b that start with prefix. It seeks again
// after each delete because a bbolt cursor may skip a key after Delete.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	cur := b.Cursor()
	for k, _ := cur.Seek(prefix); bytes.HasPrefix(k, prefix); k, _ = cur.Seek(prefix) {
		if err := cur.Delete(); err != nil {
			return err
		}
	}
	return nil
}
