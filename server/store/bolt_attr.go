package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// SetAttr implements Store.
func (s *Bolt) SetAttr(_ context.Context, conversation, key, value string) error {
	id, ok := parseID(conversation)
	if !ok {
		return errNoConversation(conversation)
	}
	return s.batch(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketConv).Get(id) == nil {
			return errNoConversation(conversation)
		}
		k := under(id, key)
		if value == "" {
			return tx.Bucket(bucketAttr).Delete(k)
		}
		return tx.Bucket(bucketAttr).Put(k, []byte(value))
	})
}

// Load implements Store.
func (s *Bolt) Load(_ context.Context, conversation string, seq uint64, keys ...string) (Loaded, error) {
	id, ok := parseID(conversation)
	if !ok {
		return Loaded{}, errNoConversation(conversation)
	}
	var l Loaded
	err := s.view(func(tx *bolt.Tx) (err error) {
		if l.Conversation, err = getConv(tx, id); err != nil {
			return err
		}
		if seq > 0 && seq <= l.Conversation.Last {
			if l.Message, err = getMessage(tx, id, conversation, seq); err != nil {
				return err
			}
			l.HasMessage = true
		}
		l.Attrs = map[string]string{}
		for _, k := range keys {
			if v := tx.Bucket(bucketAttr).Get(under(id, k)); v != nil {
				l.Attrs[k] = string(v)
			}
		}
		return nil
	})
	return l, err
}

// Attr implements Store.
func (s *Bolt) Attr(_ context.Context, conversation, key string) (string, error) {
	id, ok := parseID(conversation)
	if !ok {
		return "", errNoConversation(conversation)
	}
	var value string
	err := s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketConv).Get(id) == nil {
			return errNoConversation(conversation)
		}
		value = string(tx.Bucket(bucketAttr).Get(under(id, key)))
		return nil
	})
	return value, err
}

// CompareAndSetAttr implements Store.
func (s *Bolt) CompareAndSetAttr(_ context.Context, conversation, key, old, value string) (bool, error) {
	id, ok := parseID(conversation)
	if !ok {
		return false, errNoConversation(conversation)
	}
	var set bool
	err := s.batch(func(tx *bolt.Tx) error {
		set = false
		if tx.Bucket(bucketConv).Get(id) == nil {
			return errNoConversation(conversation)
		}
		attrs, k := tx.Bucket(bucketAttr), under(id, key)
		if string(attrs.Get(k)) != old {
			return nil
		}
		set = true
		if value == "" {
			return attrs.Delete(k)
		}
		return attrs.Put(k, []byte(value))
	})
	return set, err
}

// Link implements Store.
func (s *Bolt) Link(_ context.Context, bot, ref, conversation string) error {
	id, ok := parseID(conversation)
	if !ok {
		return errNoConversation(conversation)
	}
	key := pair(nil, bot, ref)
	return s.batch(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketConv).Get(id) == nil {
			return errNoConversation(conversation)
		}
		links, by := tx.Bucket(bucketLink), tx.Bucket(bucketLinkBy)
		if old := links.Get(key); old != nil && !bytes.Equal(old, id) {
			if err := by.Delete(under(old, key)); err != nil {
				return err
			}
		}
		if err := links.Put(key, id); err != nil {
			return err
		}
		return by.Put(under(id, key), nil)
	})
}

// Resolve implements Store.
func (s *Bolt) Resolve(_ context.Context, bot, ref string) (string, error) {
	var id string
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLink).Get(pair(nil, bot, ref))
		if v == nil {
			return fmt.Errorf("link %s/%s: %w", bot, ref, ErrNotFound)
		}
		id = hex.EncodeToString(v)
		return nil
	})
	return id, err
}
