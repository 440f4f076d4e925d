package chatlayertest

// The callbacks: each accepted message's replies, queued per user and
// posted one callback per bot message, in order, with the faults the test
// injected.

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/porthole-chat/porthole/server/provider/providertest"
)

// queue is one conversation's callbacks waiting to go, in order.
type queue struct {
	jobs    []job
	running bool
}

// job is the batch of bot messages answering one user message.
type job struct {
	delay   time.Duration
	reverse bool
	msgs    []outgoing
}

// outgoing is one bot message with its counter and faults.
type outgoing struct {
	user    string
	session uint64 // sessions of the user before this one
	counter uint64
	message json.RawMessage
	drop    bool
	dup     bool
}

// media returns where the bot's media files are, given the emulator's
// own base URL.
func (s *Server) media(base string) mediaSet {
	if s.opts.MediaBase != "" {
		b := s.opts.MediaBase
		return mediaSet{image: b + "/harbour.svg", video: b + "/waves.webm", audio: b + "/bell.wav", file: b + "/porthole-demo.pdf"}
	}
	b := base + "/assets"
	return mediaSet{image: b + "/rose.png", video: b + "/clip.mp4", audio: b + "/tone.wav", file: b + "/readme.txt"}
}

// accept counts an accepted message, records it and the bot's replies in
// the history, and queues the replies, taking the callback faults that
// apply to them. The session data the message carries is saved in the
// session first, so the bot answers with all it knows.
func (s *Server) accept(user string, in incoming, base string) {
	s.mu.Lock()
	s.accepted[user]++
	se := s.touch(user)
	for k, v := range in.session {
		se.data[k] = v
	}
	in.session = se.data
	now := time.Now()
	s.record(user, "user", in.kind == "intro", userMessage(in), now)
	msgs := script(in, s.media(base))
	s.mu.Unlock()
	s.queue(user, msgs)
}

// queue numbers bot messages for user's session, writes them into its
// history (as of when the bot sends them, after ReplyDelay) and queues
// their callbacks, taking the callback faults that apply to them.
func (s *Server) queue(user string, msgs []json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.touch(user)
	if s.kit.Closed() || len(msgs) == 0 {
		return
	}
	j := job{delay: s.opts.ReplyDelay, reverse: s.kit.TakeReorder()}
	at := time.Now().Add(j.delay)
	for _, m := range msgs {
		s.counters[user]++
		s.record(user, "bot", false, m, at)
		o := outgoing{user: user, session: se.n, counter: s.counters[user], message: m}
		if s.dropAt[o.counter] > 0 {
			s.dropAt[o.counter]--
			o.drop = true
		} else if s.kit.TakeDrop() {
			o.drop = true
		} else if s.kit.TakeDuplicate() {
			o.dup = true
		}
		j.msgs = append(j.msgs, o)
	}
	q := s.queues[user]
	if q == nil {
		q = &queue{}
		s.queues[user] = q
	}
	q.jobs = append(q.jobs, j)
	s.kit.AddPending(1)
	if !q.running {
		q.running = true
		s.kit.Go(func() { s.drain(user, q) })
	}
}

// touch records an accepted message of user in its session, first
// starting a new session when the last one expired
// (Options.SessionExpiry): Chatlayer then numbers the bot's messages
// from 1 again. s.mu is held.
func (s *Server) touch(user string) *session {
	now := time.Now()
	se := s.sessions[user]
	switch {
	case se == nil:
		se = &session{data: map[string]json.RawMessage{}}
		s.sessions[user] = se
	case s.opts.SessionExpiry > 0 && now.Sub(se.last) > s.opts.SessionExpiry:
		se.n++
		s.counters[user] = 0
		se.data, se.dialogstates = map[string]json.RawMessage{}, nil
		delete(s.history, user)
		s.log.Info("chatlayer emulator: session expired; a new one starts", "user", user, "session", se.n+1)
	}
	se.last = now
	return se
}

// drain sends a conversation's batches one after the other.
func (s *Server) drain(user string, q *queue) {
	for {
		s.mu.Lock()
		if len(q.jobs) == 0 || s.kit.Context().Err() != nil {
			s.kit.AddPending(-len(q.jobs))
			q.jobs, q.running = nil, false
			delete(s.queues, user)
			s.mu.Unlock()
			return
		}
		j := q.jobs[0]
		q.jobs = q.jobs[1:]
		s.mu.Unlock()

		if s.kit.Sleep(j.delay) {
			if j.reverse {
				// Start them last first, a gap apart, so they arrive in
				// reverse: a proxy that holds one for ordering must not
				// block the others.
				var wg sync.WaitGroup
				for i := len(j.msgs) - 1; i >= 0; i-- {
					wg.Add(1)
					go func(o outgoing) {
						defer wg.Done()
						s.deliver(o)
					}(j.msgs[i])
					if !s.kit.Sleep(s.opts.ReorderGap) {
						break
					}
				}
				wg.Wait()
			} else {
				for _, o := range j.msgs {
					s.deliver(o)
				}
			}
		}
		s.kit.AddPending(-1)
	}
}

// deliver sends one bot message, applying its faults.
func (s *Server) deliver(o outgoing) {
	cb := providertest.Callback{Conversation: o.user, Epoch: o.session, Seq: o.counter, Body: s.callbackBody(o)}
	if o.drop {
		s.kit.Drop(cb)
		return
	}
	if !s.kit.Sleep(s.kit.CallbackDelay()) {
		return
	}
	s.post(cb)
	if o.dup {
		cb.Duplicate = true
		s.post(cb)
	}
}

// callbackBody is the callback of one bot message, as Chatlayer posts it:
// the message, its counter, the verify token and the user, named by
// Options.RouteField.
func (s *Server) callbackBody(o outgoing) []byte {
	body := map[string]any{"message": o.message, "messageCounter": o.counter, "verifyToken": s.opts.CallbackVerifyToken}
	switch s.opts.RouteField {
	case "recipient":
		body["recipient"] = map[string]string{"id": o.user}
	case "sender":
		body["sender"] = map[string]string{"id": o.user}
	default:
		body["senderId"] = o.user
	}
	data, _ := json.Marshal(body)
	return data
}

// post sends one callback with Chatlayer's retries, and logs when it
// gives up.
func (s *Server) post(cb providertest.Callback) {
	if !s.kit.Post(cb) && s.kit.Context().Err() == nil {
		s.log.Warn("chatlayer emulator gave up a callback", "user", cb.Conversation, "counter", cb.Seq)
	}
}
