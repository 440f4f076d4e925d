package store

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is a Store that keeps everything in maps behind one mutex. It
// exists for tests and demos: it is lost on exit, and Outbox, Unclaimed and
// Prune scan every conversation.
type Memory struct {
	mu       sync.Mutex
	closed   bool
	convs    map[string]*memConv
	visitors map[[2]string]string // (bot, visitor) -> conversation id
	links    map[[2]string]string // (bot, ref) -> conversation id
}

type memConv struct {
	Conversation
	msgs    []Message         // msgs[i].Seq == i+1
	clients map[string]uint64 // ClientID -> Seq
	attrs   map[string]string
	owner   string    // the claim's owner, "" when there is none
	until   time.Time // the claim's end
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory {
	return &Memory{
		convs:    make(map[string]*memConv),
		visitors: make(map[[2]string]string),
		links:    make(map[[2]string]string),
	}
}

// lock takes the mutex unless the store is closed; on success the caller
// must unlock.
func (s *Memory) lock() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// conv returns the conversation with the given id; the mutex must be held.
func (s *Memory) conv(id string) (*memConv, error) {
	c, ok := s.convs[id]
	if !ok {
		return nil, errNoConversation(id)
	}
	return c, nil
}

// clone copies m so that callers never share a Body with the store.
func clone(m Message) Message {
	m.Body = bytes.Clone(m.Body)
	return m
}

// Conversation implements Store.
func (s *Memory) Conversation(_ context.Context, bot, visitor string) (Conversation, bool, error) {
	if err := s.lock(); err != nil {
		return Conversation{}, false, err
	}
	defer s.mu.Unlock()
	if id, ok := s.visitors[[2]string{bot, visitor}]; ok {
		return s.convs[id].Conversation, false, nil
	}
	t := now()
	c := &memConv{
		Conversation: Conversation{ID: newConversationID(), Bot: bot, Visitor: visitor, Created: t, Updated: t},
		clients:      make(map[string]uint64),
		attrs:        make(map[string]string),
	}
	s.convs[c.ID] = c
	s.visitors[[2]string{bot, visitor}] = c.ID
	return c.Conversation, true, nil
}

// Find implements Store.
func (s *Memory) Find(_ context.Context, bot, visitor string) (Conversation, error) {
	if err := s.lock(); err != nil {
		return Conversation{}, err
	}
	defer s.mu.Unlock()
	if id, ok := s.visitors[[2]string{bot, visitor}]; ok {
		return s.convs[id].Conversation, nil
	}
	return Conversation{}, ErrNotFound
}

// Rebind implements Store.
func (s *Memory) Rebind(_ context.Context, id, key string) (Conversation, bool, error) {
	if err := s.lock(); err != nil {
		return Conversation{}, false, err
	}
	defer s.mu.Unlock()
	c, err := s.conv(id)
	if err != nil {
		return Conversation{}, false, err
	}
	if key == c.Visitor {
		return c.Conversation, true, nil
	}
	if other, ok := s.visitors[[2]string{c.Bot, key}]; ok && key != "" {
		return s.convs[other].Conversation, false, nil
	}
	s.unbind(c.Conversation)
	if key != "" {
		s.visitors[[2]string{c.Bot, key}] = id
	}
	c.Visitor = key
	return c.Conversation, true, nil
}

// unbind deletes the key that finds c, if it still finds c; the mutex
// must be held.
func (s *Memory) unbind(c Conversation) {
	k := [2]string{c.Bot, c.Visitor}
	if s.visitors[k] == c.ID {
		delete(s.visitors, k)
	}
}

// Get implements Store.
func (s *Memory) Get(_ context.Context, id string) (Conversation, error) {
	if err := s.lock(); err != nil {
		return Conversation{}, err
	}
	defer s.mu.Unlock()
	c, err := s.conv(id)
	if err != nil {
		return Conversation{}, err
	}
	return c.Conversation, nil
}

// Append implements Store.
func (s *Memory) Append(_ context.Context, m Message) (Message, bool, error) {
	if err := s.lock(); err != nil {
		return Message{}, false, err
	}
	defer s.mu.Unlock()
	c, err := s.conv(m.Conversation)
	if err != nil {
		return Message{}, false, err
	}
	if m.ClientID != "" {
		if seq, ok := c.clients[m.ClientID]; ok {
			return clone(c.msgs[seq-1]), true, nil
		}
	}
	if m.ID == "" {
		m.ID = newMessageID()
	}
	m.At = stampAt(m.At, now(), c.Updated)
	m.Seq = c.Last + 1
	c.msgs = append(c.msgs, clone(m))
	if m.ClientID != "" {
		c.clients[m.ClientID] = m.Seq
	}
	c.Last = m.Seq
	if m.At.After(c.Updated) {
		c.Updated = m.At
	}
	return clone(m), false, nil
}

// Read implements Store.
func (s *Memory) Read(_ context.Context, conversation string, after uint64, limit int) ([]Message, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	c, err := s.conv(conversation)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || after >= c.Last {
		return nil, nil
	}
	msgs := c.msgs[after:]
	msgs = msgs[:min(len(msgs), limit)]
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		out[i] = clone(m)
	}
	return out, nil
}

// SetState implements Store.
func (s *Memory) SetState(_ context.Context, conversation string, seq uint64, state State, reason string) (Message, error) {
	if err := checkState(conversation, seq, state); err != nil {
		return Message{}, err
	}
	if err := s.lock(); err != nil {
		return Message{}, err
	}
	defer s.mu.Unlock()
	c, err := s.conv(conversation)
	if err != nil {
		return Message{}, err
	}
	if seq == 0 || seq > c.Last {
		return Message{}, errNoMessage(conversation, seq)
	}
	m := &c.msgs[seq-1]
	m.State, m.Reason = state, reason
	return clone(*m), nil
}

// Outbox implements Store. It scans every message, which is fine for tests.
func (s *Memory) Outbox(_ context.Context, limit int) ([]Message, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []Message
	for _, c := range s.convs {
		for _, m := range c.msgs {
			if m.State == Pending {
				out = append(out, m)
			}
		}
	}
	// The order of the Bolt outbox keys: time, conversation, seq.
	slices.SortFunc(out, func(a, b Message) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.Conversation, b.Conversation), cmp.Compare(a.Seq, b.Seq))
	})
	out = out[:min(len(out), max(limit, 0))]
	for i := range out {
		out[i] = clone(out[i])
	}
	return out, nil
}

// Pending implements Store.
func (s *Memory) Pending(_ context.Context, conversation string, limit int) ([]uint64, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	c, err := s.conv(conversation)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, m := range c.msgs {
		if m.State == Pending && len(out) < limit {
			out = append(out, m.Seq)
		}
	}
	return out, nil
}

// Claim implements Store.
func (s *Memory) Claim(_ context.Context, conversation, owner string, until time.Time) (bool, error) {
	if err := checkOwner(conversation, owner); err != nil {
		return false, err
	}
	if err := s.lock(); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	c, err := s.conv(conversation)
	if err != nil {
		return false, err
	}
	if c.owner != owner && c.until.After(time.Now()) {
		return false, nil
	}
	c.owner, c.until = owner, until.UTC().Truncate(precision)
	return true, nil
}

// Unclaim implements Store.
func (s *Memory) Unclaim(_ context.Context, conversation, owner string) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if c, ok := s.convs[conversation]; ok && c.owner == owner {
		c.owner, c.until = "", time.Time{}
	}
	return nil
}

// Unclaimed implements Store. It scans every message, which is fine for
// tests.
func (s *Memory) Unclaimed(_ context.Context, now time.Time, limit int) ([]string, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var heads []Message // the oldest pending message of each conversation
	for _, c := range s.convs {
		if c.owner != "" && c.until.After(now) {
			continue
		}
		var head *Message
		for i, m := range c.msgs {
			if m.State == Pending && (head == nil || m.At.Before(head.At)) {
				head = &c.msgs[i]
			}
		}
		if head != nil {
			heads = append(heads, *head)
		}
	}
	// The order of the Bolt outbox keys: time, conversation.
	slices.SortFunc(heads, func(a, b Message) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.Conversation, b.Conversation))
	})
	var out []string
	for _, m := range heads[:min(len(heads), max(limit, 0))] {
		out = append(out, m.Conversation)
	}
	return out, nil
}

// SetAttr implements Store.
func (s *Memory) SetAttr(_ context.Context, conversation, key, value string) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	c, err := s.conv(conversation)
	if err != nil {
		return err
	}
	if value == "" {
		delete(c.attrs, key)
	} else {
		c.attrs[key] = value
	}
	return nil
}

// Load implements Store.
func (s *Memory) Load(_ context.Context, conversation string, seq uint64, keys ...string) (Loaded, error) {
	if err := s.lock(); err != nil {
		return Loaded{}, err
	}
	defer s.mu.Unlock()
	c, err := s.conv(conversation)
	if err != nil {
		return Loaded{}, err
	}
	l := Loaded{Conversation: c.Conversation, Attrs: map[string]string{}}
	if seq > 0 && seq <= c.Last {
		l.Message, l.HasMessage = clone(c.msgs[seq-1]), true
	}
	for _, k := range keys {
		if v, ok := c.attrs[k]; ok {
			l.Attrs[k] = v
		}
	}
	return l, nil
}

// Attr implements Store.
func (s *Memory) Attr(_ context.Context, conversation, key string) (string, error) {
	if err := s.lock(); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	c, err := s.conv(conversation)
	if err != nil {
		return "", err
	}
	return c.attrs[key], nil
}

// CompareAndSetAttr implements Store.
func (s *Memory) CompareAndSetAttr(_ context.Context, conversation, key, old, value string) (bool, error) {
	if err := s.lock(); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	c, err := s.conv(conversation)
	if err != nil {
		return false, err
	}
	if c.attrs[key] != old {
		return false, nil
	}
	if value == "" {
		delete(c.attrs, key)
	} else {
		c.attrs[key] = value
	}
	return true, nil
}

// Link implements Store.
func (s *Memory) Link(_ context.Context, bot, ref, conversation string) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, err := s.conv(conversation); err != nil {
		return err
	}
	s.links[[2]string{bot, ref}] = conversation
	return nil
}

// Resolve implements Store.
func (s *Memory) Resolve(_ context.Context, bot, ref string) (string, error) {
	if err := s.lock(); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	id, ok := s.links[[2]string{bot, ref}]
	if !ok {
		return "", fmt.Errorf("link %s/%s: %w", bot, ref, ErrNotFound)
	}
	return id, nil
}

// Prune implements Store.
func (s *Memory) Prune(_ context.Context, before time.Time) (int, error) {
	if err := s.lock(); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	n := 0
	for id, c := range s.convs {
		if c.Updated.Before(before) {
			delete(s.convs, id)
			s.unbind(c.Conversation)
			n++
		}
	}
	for k, id := range s.links {
		if _, ok := s.convs[id]; !ok {
			delete(s.links, k)
		}
	}
	return n, nil
}

// List implements Store. It scans every conversation.
func (s *Memory) List(_ context.Context, bot string, after Cursor, limit int) ([]Conversation, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []Conversation
	for _, c := range s.convs {
		if c.Bot == bot && after.after(c.Conversation) {
			out = append(out, c.Conversation)
		}
	}
	slices.SortFunc(out, listOrder)
	return out[:min(len(out), max(limit, 0))], nil
}

// Attrs implements Store.
func (s *Memory) Attrs(_ context.Context, conversation string) (map[string]string, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	c, err := s.conv(conversation)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(c.attrs))
	for k, v := range c.attrs {
		out[k] = v
	}
	return out, nil
}

// Erase implements Store.
func (s *Memory) Erase(_ context.Context, id string) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	c, err := s.conv(id)
	if err != nil {
		return err
	}
	delete(s.convs, id)
	s.unbind(c.Conversation)
	for k, to := range s.links {
		if to == id {
			delete(s.links, k)
		}
	}
	return nil
}

// Close implements Store.
func (s *Memory) Close() error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
