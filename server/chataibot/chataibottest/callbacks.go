package chataibottest

// The callbacks: each visitor message's reply batch, queued and posted
// to the proxy's webhook with the faults the test injected.

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/porthole-chat/porthole/server/provider/providertest"
)

// hear records a visitor message and has the bot answer it: in the
// returned messages with RepliesInResponse, else by callback (nil
// returned). s.mu must be held.
func (s *Server) hear(c *conversation, text, msgID string) []obj {
	c.Messages = append(c.Messages, text)
	s.stats.Messages++
	s.stats.Replies++
	msgs := s.answer(c, text)
	if s.opts.RepliesInResponse {
		return msgs
	}
	// The assumed reply webhook body (README, "Assumed reply webhook"):
	// message_id is unique per batch, and in_reply_to names the visitor
	// message it answers.
	b, _ := json.Marshal(obj{"conversation_id": c.ID, "message_id": newID(), "in_reply_to": msgID, "messages": msgs})
	s.queue = append(s.queue, job{conv: c.ID, body: b})
	s.kit.AddPending(1)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// dispatch posts reply batches one at a time, in order, applying the
// callback faults.
func (s *Server) dispatch() {
	var held *job
	for {
		wait := time.Duration(-1)
		if held != nil {
			wait = s.opts.ReorderWait
		}
		j, ok := s.take(wait)
		if !ok {
			return
		}
		if j == nil { // the held batch waited long enough
			s.post(*held)
			held = nil
			continue
		}
		if held == nil && s.kit.TakeReorder() {
			held = j
			continue
		}
		s.post(*j)
		if held != nil {
			s.post(*held)
			held = nil
		}
	}
}

// dispatchParallel posts reply batches of up to Options.Parallel
// conversations at once, each conversation's in order. Reordering faults
// do not apply here.
func (s *Server) dispatchParallel() {
	sem := make(chan struct{}, s.opts.Parallel)
	var mu sync.Mutex
	tail := map[string]chan struct{}{} // conversation -> done of its last batch
	for {
		j, ok := s.take(-1)
		if !ok {
			return
		}
		done := make(chan struct{})
		mu.Lock()
		prev := tail[j.conv]
		tail[j.conv] = done
		mu.Unlock()
		select {
		case sem <- struct{}{}:
		case <-s.kit.Context().Done():
			return
		}
		s.kit.Go(func() {
			defer func() { <-sem }()
			if prev != nil {
				select {
				case <-prev:
				case <-s.kit.Context().Done():
					return
				}
			}
			s.post(*j)
			close(done)
			mu.Lock()
			if tail[j.conv] == done {
				delete(tail, j.conv)
			}
			mu.Unlock()
		})
	}
}

// take returns the next queued batch, nil when wait (if not negative)
// passed first, and false once the server is closed.
func (s *Server) take(wait time.Duration) (*job, bool) {
	var timeout <-chan time.Time
	if wait >= 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			j := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return &j, true
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-timeout:
			return nil, true
		case <-s.kit.Context().Done():
			return nil, false
		}
	}
}

// post delivers one batch: dropped, or posted with MaxRetries retries,
// and posted again when a duplicate is due and the first was taken.
func (s *Server) post(j job) {
	defer s.kit.AddPending(-1)
	cb := providertest.Callback{Conversation: j.conv, Body: j.body}
	if dropped := s.kit.TakeDrop(); dropped || s.kit.Target() == "" {
		if !dropped {
			cb.Err = "no callback URL set"
		}
		s.kit.Drop(cb)
		return
	}
	dup := s.kit.TakeDuplicate()
	if !s.kit.Sleep(s.opts.ReplyDelay + s.kit.CallbackDelay()) {
		return
	}
	if s.kit.Post(cb) && dup {
		cb.Duplicate = true
		s.kit.Post(cb)
	}
}
