package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/web"
	"github.com/porthole-chat/porthole/widget"
)

// RetryPolicy says how the service retries a temporary upstream failure.
type RetryPolicy struct {
	// Quick is the number of attempts after which the visitor is told
	// the message failed; retries go on in the background after that.
	Quick int
	// Base is the first backoff; each attempt doubles it, up to Max,
	// with jitter so that many visitors do not retry in step.
	Base, Max time.Duration
	// GiveUp stops background retries this long after the first attempt.
	GiveUp time.Duration
	// Greet bounds the retries of a conversation's start, the call that
	// makes the platform greet (Chatlayer's introMessage): it is given
	// up, and logged, this long after its first attempt, or as soon as
	// the next attempt would come later (a long Retry-After). A greeting
	// is no visitor's message: when the platform refuses it with 429 or
	// 5xx it is overloaded, and retrying every greeting for GiveUp would
	// spend what capacity it has left on them, not on visitors waiting
	// for an answer. At most GiveUp; 0 means GiveUp.
	Greet time.Duration
	// Timeout bounds one upstream call.
	Timeout time.Duration
}

// DefaultGreetRetry is how long a greeting is retried: a few attempts
// with the default backoff (0.5 s doubling), over at most 30 s, by when
// the visitor who opened the chat has seen the widget's own greeting and
// may be writing.
const DefaultGreetRetry = 30 * time.Second

// DefaultRetry is the production retry policy.
var DefaultRetry = RetryPolicy{Quick: 3, Base: 500 * time.Millisecond, Max: 30 * time.Second, GiveUp: 10 * time.Minute, Greet: DefaultGreetRetry, Timeout: 15 * time.Second}

// greetFor is how long the seq-0 item of a conversation is retried.
func (p RetryPolicy) greetFor() time.Duration {
	if p.Greet <= 0 {
		return p.GiveUp
	}
	return min(p.Greet, p.GiveUp)
}

// backoff returns the wait before attempt n+1 (n >= 1): exponential with
// jitter in [d/2, d], at least what the platform asked for.
func (p RetryPolicy) backoff(n int, asked time.Duration) time.Duration {
	d := p.Base << min(n-1, 20)
	if d > p.Max || d <= 0 {
		d = p.Max
	}
	d = d/2 + rand.N(d/2+1)
	return max(d, asked)
}

// Attribute keys the service keeps per conversation.
const (
	attrVisitor = "visitor" // provider.Visitor as JSON, from the last hello
	attrSession = "session" // session data object as JSON
	attrRead    = "read"    // highest seq the visitor has seen
	attrContact = "contact" // provider.Contact as JSON, from a verified login
)

// Service is the conversation service, the only place that orders
// things: persist first, then notify, then hand upstream with retries.
// The WebSocket handler, the fallback pages and the provider webhooks all
// go through it. It implements provider.Sink for the providers' replies.
type Service struct {
	store     store.Store
	bus       bus.Bus
	log       *slog.Logger
	retry     RetryPolicy
	providers map[string]provider.Provider // by bot id

	sem    chan struct{} // bounds concurrent upstream calls
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	queues map[string]*queue    // conversations with work for upstream
	typing map[string]time.Time // conversations whose bot is typing, since when
	reads  map[string]uint64    // read markers not yet written, by conversation
}

// readFlush is how often the read markers that moved are written. A
// widget sends one for nearly every message it shows, and a marker is a
// hint, not a message: gathered, they cost one write per conversation a
// few seconds instead of one commit per frame. A crash loses the last
// few seconds of them. A variable for the tests.
var readFlush = 2 * time.Second

// NewService returns a service over st and bus. Providers are added with
// SetProvider before Recover and before traffic.
func NewService(st store.Store, events bus.Bus, log *slog.Logger, retry RetryPolicy) *Service {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		store: st, bus: events, log: log, retry: retry,
		providers: map[string]provider.Provider{},
		sem:       make(chan struct{}, 256),
		ctx:       ctx, cancel: cancel,
		queues: map[string]*queue{},
		typing: map[string]time.Time{},
		reads:  map[string]uint64{},
	}
	s.wg.Add(1)
	go s.flushReads(readFlush)
	return s
}

// SetProvider makes p answer bot.
func (s *Service) SetProvider(bot string, p provider.Provider) { s.providers[bot] = p }

// Open looks up the conversation with bot that key finds (a visitor id,
// or a signed-in user's UserKey) for a hello or a login. It creates
// nothing and queues nothing for the bot, so that a page view costs the
// bot platform nothing: found is false while there is no conversation
// (Start makes it). For one that exists it records what the hello says
// about the visitor v (locale, time zone, page) when that changed, for
// the provider's next call.
func (s *Service) Open(ctx context.Context, bot, key string, v provider.Visitor) (c store.Conversation, found bool, err error) {
	c, err = s.store.Find(ctx, bot, key)
	if errors.Is(err, store.ErrNotFound) {
		return store.Conversation{}, false, nil
	}
	if err != nil {
		return c, false, err
	}
	info, _ := json.Marshal(v)
	if old, err := s.store.Attr(ctx, c.ID, attrVisitor); err != nil {
		return c, false, err
	} else if old != string(info) {
		if err := s.store.SetAttr(ctx, c.ID, attrVisitor, string(info)); err != nil {
			return c, false, err
		}
	}
	return c, true, nil
}

// Get returns the conversation with the given id, as stored now.
func (s *Service) Get(ctx context.Context, conv string) (store.Conversation, error) {
	return s.store.Get(ctx, conv)
}

// Start returns the conversation with bot that key finds, creating it
// when there is none; created says whether this call made it. The store's
// Conversation is get-or-create, so two tabs that start at once share
// one conversation, and only the one that created it queues the bot's
// greeting (the seq-0 item): a visitor is greeted once.
//
// setup, when not nil, runs on the conversation before the greeting is
// queued: the socket applies the session data and login it held, so
// that the platform's first call already carries them. Its outcome is
// setup's own business; the conversation exists either way.
//
// v is recorded for a new conversation only: an existing one keeps what
// its last hello said, which knows more about the visitor than a form
// post of the chat pages.
func (s *Service) Start(ctx context.Context, bot, key string, v provider.Visitor, setup func(store.Conversation)) (c store.Conversation, created bool, err error) {
	c, created, err = s.store.Conversation(ctx, bot, key)
	if err != nil {
		return c, false, err
	}
	if created {
		info, _ := json.Marshal(v)
		if err := s.store.SetAttr(ctx, c.ID, attrVisitor, string(info)); err != nil {
			// It exists now and must get its greeting all the same; the
			// provider then knows the visitor by id alone.
			s.log.Warn("cannot record the visitor of a new conversation", "bot", bot, "conversation", c.ID, "error", err)
		}
	}
	if setup != nil {
		setup(c)
	}
	if created {
		s.enqueue(c.ID, 0, false)
	}
	return c, created, nil
}

// Inbound is a visitor message entering the service.
type Inbound struct {
	ClientID string
	Text     string // typed text, or the clicked button's title
	Payload  string // postback payload; empty for typed text
}

// Post stores a visitor message, notifies the visitor's sockets and queues
// it for the bot. The returned message is durable: its Seq goes in the
// ack. A repeated ClientID returns the stored message and sends nothing
// upstream again, except that a failed message is retried.
func (s *Service) Post(ctx context.Context, conv string, in Inbound) (store.Message, error) {
	body := widget.Text(in.Text).AppendJSON(nil)
	m, dup, err := s.store.Append(ctx, store.Message{
		Conversation: conv, ClientID: in.ClientID, From: store.FromUser,
		Body: body, Payload: in.Payload, State: store.Pending,
	})
	if err != nil {
		return m, err
	}
	if !dup {
		s.publish(ctx, bus.Event{Conversation: conv, Seq: m.Seq})
		s.enqueue(conv, m.Seq, false)
		return m, nil
	}
	switch m.State {
	case store.Failed: // the visitor pressed retry
		if m, err = s.store.SetState(ctx, conv, m.Seq, store.Pending, ""); err != nil {
			return m, err
		}
		s.enqueue(conv, m.Seq, true)
	case store.Pending:
		s.enqueue(conv, m.Seq, false) // no-op when already queued
	}
	return m, nil
}

// offerScan bounds how many of a conversation's newest messages Offered
// reads for the bot message that offered a click: enough for any button
// a visitor can still see, and a bound on what a click can make the
// store read.
const offerScan = 2000

// ErrNotOffered reports a postback that no bot message of the
// conversation offered.
var ErrNotOffered = &widget.Error{Code: widget.CodeBadRequest, Field: "postback", Message: "matches no button or quick reply the bot sent in this conversation (title and payload must be the bot's); nothing was sent"}

// Offered reports whether a bot message of conv offers the click in (its
// title and payload, web.Offers), as the chat page requires of its
// clicks: a postback is the bot's own payload sent back, never one a
// page wrote (a Chatlayer payload names the dialog state to jump to and
// the session data to set). A click already stored under the same
// client id (the widget retrying from its outbox) is offered too. It
// reads at most the offerScan newest messages, newest first.
func (s *Service) Offered(ctx context.Context, conv string, in Inbound) (bool, error) {
	c, err := s.store.Get(ctx, conv)
	if err != nil {
		return false, err
	}
	const page = 100
	for end := c.Last; end > 0 && c.Last-end < offerScan; {
		after := end - min(end, page)
		ms, err := s.store.Read(ctx, conv, after, int(end-after))
		if err != nil {
			return false, err
		}
		for i := len(ms) - 1; i >= 0; i-- {
			m := ms[i]
			switch {
			case m.From == store.FromBot:
				if b, err := widget.DecodeBody(m.Body); err == nil && web.Offers(b, in.Text, in.Payload) {
					return true, nil
				}
			case m.From == store.FromUser && in.ClientID != "" && m.ClientID == in.ClientID:
				return m.Payload == in.Payload, nil
			}
		}
		end = after
	}
	return false, nil
}

// SetSession merges data (a JSON object) into the conversation's session
// data, which providers send upstream with the next message. Identity
// keys (provider.ReservedKeys) are left out, since only a verified login
// may set them: the rest is applied and the error names what was left
// out, so that a developer who tries learns why.
func (s *Service) SetSession(ctx context.Context, conv string, data []byte) error {
	var add map[string]json.RawMessage
	if err := json.Unmarshal(data, &add); err != nil {
		return &widget.Error{Code: widget.CodeBadRequest, Field: "data", Message: "must be a JSON object"}
	}
	stripped := provider.StripReserved(add)
	if err := s.mergeSession(ctx, conv, add); err != nil {
		return err
	}
	if len(stripped) > 0 {
		return reservedError(stripped)
	}
	return nil
}

// reservedError reports session data keys left out because they name an
// identity, which only Porthole.login may set.
func reservedError(keys []string) *widget.Error {
	return &widget.Error{Code: widget.CodeBadRequest, Field: "data", Message: fmt.Sprintf(
		"keys %s name an identity, which only a verified Porthole.login sets; they were left out and the rest was applied",
		strings.Join(keys, ", "))}
}

// mergeSession merges add into the conversation's session data; a null
// removes its key.
func (s *Service) mergeSession(ctx context.Context, conv string, add map[string]json.RawMessage) error {
	merged := map[string]json.RawMessage{}
	if old, err := s.store.Attr(ctx, conv, attrSession); err != nil {
		return err
	} else if old != "" {
		_ = json.Unmarshal([]byte(old), &merged)
	}
	for k, v := range add {
		if string(v) == "null" {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	out, _ := json.Marshal(merged)
	if len(out) > widget.MaxSessionData {
		return &widget.Error{Code: widget.CodeTooLarge, Field: "data", Message: fmt.Sprintf("session data would grow past %d bytes; remove keys by setting them to null", widget.MaxSessionData)}
	}
	return s.store.SetAttr(ctx, conv, attrSession, string(out))
}

// ErrBadSignature reports a login whose signature does not match.
var ErrBadSignature = &widget.Error{Code: widget.CodeUnauthorized, Field: "signature", Message: "does not match the user; sign the user id with HMAC-SHA256 under the bot's identity_secret"}

// ErrLoginOff reports a login for a bot without an identity secret.
var ErrLoginOff = &widget.Error{Code: widget.CodeUnauthorized, Message: "login is not enabled for this bot; set its identity_secret"}

// VerifyLogin checks a Porthole.login's signature, the HMAC-SHA256 of
// the user id under secret (the bot's identity_secret), in constant
// time.
func VerifyLogin(secret string, f *widget.Login) error {
	if secret == "" {
		return ErrLoginOff
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(f.User))
	want := mac.Sum(nil)
	got, err := hex.DecodeString(f.Signature)
	if err != nil || !hmac.Equal(got, want) {
		return ErrBadSignature
	}
	return nil
}

// Login verifies a Porthole.login (VerifyLogin) and stores the contact
// for the providers, overriding whatever identity the conversation had.
func (s *Service) Login(ctx context.Context, conv, secret string, f *widget.Login) error {
	if err := VerifyLogin(secret, f); err != nil {
		return err
	}
	c, _ := json.Marshal(provider.Contact{User: f.User, Name: f.Name, Email: f.Email, Phone: f.Phone})
	return s.store.SetAttr(ctx, conv, attrContact, string(c))
}

// Rebind makes key the one that finds conversation conv (store.Rebind):
// a visitor's conversation becomes a signed-in user's, or, with key "",
// nobody's.
func (s *Service) Rebind(ctx context.Context, conv, key string) (c store.Conversation, moved bool, err error) {
	return s.store.Rebind(ctx, conv, key)
}

// MarkRead records that the visitor has seen messages up to seq. The
// marker is written with the others every readFlush, and at Close.
func (s *Service) MarkRead(_ context.Context, conv string, seq uint64) error {
	s.mu.Lock()
	if seq > s.reads[conv] {
		s.reads[conv] = seq
	}
	s.mu.Unlock()
	return nil
}

// flushReads writes the read markers that moved, every interval and once
// more when the service closes.
func (s *Service) flushReads(interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.writeReads()
		case <-s.ctx.Done():
			s.writeReads()
			return
		}
	}
}

// writeReads writes the pending read markers; one that cannot be written
// waits for the next round unless a newer one took its place.
func (s *Service) writeReads() {
	s.mu.Lock()
	pending := s.reads
	s.reads = map[string]uint64{}
	s.mu.Unlock()
	ctx := context.WithoutCancel(s.ctx)
	for conv, seq := range pending {
		err := s.store.SetAttr(ctx, conv, attrRead, fmt.Sprint(seq))
		if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrClosed) {
			continue
		}
		s.log.Warn("cannot record read marker; trying again", "conversation", conv, "error", err)
		s.mu.Lock()
		if seq > s.reads[conv] {
			s.reads[conv] = seq
		}
		s.mu.Unlock()
	}
}

// Deliver stores bot replies and notifies the visitor (provider.Sink).
// Each body gets the idempotency key key+"/"+index, so a retried callback
// stores nothing twice. A body that fails validation is replaced by its
// plain-text summary, or dropped with a warning when it has none.
func (s *Service) Deliver(ctx context.Context, conv, key string, bodies ...widget.Body) error {
	for i, b := range bodies {
		if err := b.Validate(); err != nil {
			s.log.Warn("bot message does not validate", "conversation", conv, "error", err)
			b = widget.Text(b.Summary())
			if b.Validate() != nil {
				continue
			}
		}
		m := store.Message{Conversation: conv, From: store.FromBot, Body: b.AppendJSON(nil)}
		if key != "" {
			m.ClientID = fmt.Sprintf("%s/%d", key, i)
		}
		stored, dup, err := s.store.Append(ctx, m)
		if err != nil {
			return err
		}
		if !dup {
			s.publish(ctx, bus.Event{Conversation: conv, Seq: stored.Seq})
		}
	}
	return nil
}

// Typing shows or hides the bot's typing indicator (provider.Sink).
func (s *Service) Typing(conv string, on bool) {
	s.mu.Lock()
	if on {
		now := time.Now()
		if len(s.typing) >= 4096 { // forget indicators nobody turned off
			for c, since := range s.typing {
				if now.Sub(since) > typingFor {
					delete(s.typing, c)
				}
			}
		}
		s.typing[conv] = now
	} else {
		delete(s.typing, conv)
	}
	s.mu.Unlock()
	ev := bus.Event{Conversation: conv, Typing: bus.TypingOff}
	if on {
		ev.Typing = bus.TypingOn
	}
	s.publish(context.Background(), ev)
}

// typingFor bounds how long a typing indicator counts as a reply on its
// way, for a provider that never turns it off.
const typingFor = time.Minute

// IsTyping reports whether the bot is typing in conv: it turned the
// indicator on less than a minute ago and not off since. The fallback
// page keeps refreshing while it is.
func (s *Service) IsTyping(conv string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	since, ok := s.typing[conv]
	if ok && time.Since(since) > typingFor {
		delete(s.typing, conv)
		return false
	}
	return ok
}

// Attr returns provider state (provider.Sink).
func (s *Service) Attr(ctx context.Context, conv, key string) (string, error) {
	return s.store.Attr(ctx, conv, "p:"+key)
}

// SetAttr stores provider state (provider.Sink).
func (s *Service) SetAttr(ctx context.Context, conv, key, value string) error {
	return s.store.SetAttr(ctx, conv, "p:"+key, value)
}

// Recover queues every message that was acknowledged but not yet accepted
// upstream when the server last stopped.
func (s *Service) Recover(ctx context.Context) (int, error) {
	n := 0
	for {
		pending, err := s.store.Outbox(ctx, 1000)
		if err != nil {
			return n, err
		}
		fresh := 0
		for _, m := range pending {
			if s.enqueue(m.Conversation, m.Seq, false) {
				fresh++
			}
		}
		n += fresh
		if len(pending) < 1000 || fresh == 0 {
			return n, nil
		}
	}
}

// Close stops the upstream workers, waiting up to the context's deadline
// for calls in flight. What is still pending stays on the outbox.
func (s *Service) Close(ctx context.Context) error {
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// queue holds one conversation's messages waiting for the bot, by seq.
type queue struct {
	items []*item
	wake  chan struct{}
}

type item struct {
	seq       uint64 // 0 is the conversation start (greeting)
	attempts  int
	first     time.Time
	notBefore time.Time
	shown     bool // the visitor was told it failed; it no longer holds back later messages
	// taken: the platform accepted the message but recording that
	// failed (the store is full or down). Later attempts only record it;
	// sending it again would hand the bot the message twice.
	taken bool
	// gen counts the visitor's retries: an attempt that was in flight
	// when the visitor pressed retry must not record its stale outcome.
	gen int
}

// enqueue adds seq to the conversation's queue, starting its worker if
// needed. reset restarts the retry schedule of an item already queued.
// It reports whether the item is new.
func (s *Service) enqueue(conv string, seq uint64, reset bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, running := s.queues[conv]
	if !running {
		q = &queue{wake: make(chan struct{}, 1)}
		s.queues[conv] = q
	}
	now := time.Now()
	added := true
	pos := len(q.items)
	for i, it := range q.items {
		if it.seq == seq {
			if reset {
				it.attempts, it.first, it.notBefore, it.shown = 0, now, now, false
				it.gen++
			}
			added = false
			break
		}
		if it.seq > seq {
			pos = i
			break
		}
	}
	if added {
		q.items = append(q.items, nil)
		copy(q.items[pos+1:], q.items[pos:])
		q.items[pos] = &item{seq: seq, first: now, notBefore: now}
	}
	if !running {
		s.wg.Add(1)
		go s.work(conv, q)
	} else {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return added
}

// next picks the item to try now, or how long to wait. Items go in seq
// order; one that already failed visibly no longer holds back the rest.
func (q *queue) next(now time.Time) (*item, time.Duration) {
	wait := time.Duration(-1)
	for _, it := range q.items {
		if !it.notBefore.After(now) {
			return it, 0
		}
		if d := it.notBefore.Sub(now); wait < 0 || d < wait {
			wait = d
		}
		if !it.shown {
			break
		}
	}
	return nil, wait
}

func (q *queue) remove(target *item) {
	for i, it := range q.items {
		if it == target {
			q.items = append(q.items[:i], q.items[i+1:]...)
			return
		}
	}
}

// work hands one conversation's queue upstream until it is empty.
func (s *Service) work(conv string, q *queue) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if len(q.items) == 0 {
			delete(s.queues, conv)
			s.mu.Unlock()
			return
		}
		it, wait := q.next(time.Now())
		s.mu.Unlock()
		if it == nil {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-q.wake:
				t.Stop()
			case <-s.ctx.Done():
				t.Stop()
				s.abandon(conv)
				return
			}
			continue
		}
		done := s.attempt(conv, it)
		s.mu.Lock()
		if done {
			q.remove(it)
		}
		s.mu.Unlock()
		if s.ctx.Err() != nil {
			s.abandon(conv)
			return
		}
	}
}

// abandon drops a conversation's queue on shutdown; pending messages stay
// on the store's outbox for the next start.
func (s *Service) abandon(conv string) {
	s.mu.Lock()
	delete(s.queues, conv)
	s.mu.Unlock()
}

// attempt makes one upstream call for it and records the outcome. It
// reports whether the item is finished (delivered, failed for good, or
// gone).
func (s *Service) attempt(conv string, it *item) bool {
	ctx := s.ctx
	// The item is shared with enqueue (a retry resets it): read it, and
	// later record the outcome, under the lock only.
	s.mu.Lock()
	seq, attempts, first, shown, gen := it.seq, it.attempts, it.first, it.shown, it.gen
	s.mu.Unlock()
	if it.taken {
		return s.recordTaken(conv, it)
	}
	c, err := s.store.Get(ctx, conv)
	if err != nil {
		return errors.Is(err, store.ErrNotFound) || s.storeTrouble(conv, it, "dispatching", err)
	}
	p := s.providers[c.Bot]
	if p == nil {
		s.log.Error("no provider for bot", "bot", c.Bot, "conversation", conv)
		return true
	}
	pm := provider.Message{Bot: c.Bot, Conversation: conv, Seq: seq, Kind: provider.Start}
	if raw, err := s.store.Attr(ctx, conv, attrVisitor); err == nil && raw != "" {
		_ = json.Unmarshal([]byte(raw), &pm.Visitor)
	}
	if pm.Visitor.ID == "" {
		pm.Visitor.ID = c.Visitor
	}
	if raw, err := s.store.Attr(ctx, conv, attrSession); err == nil && raw != "" {
		pm.Session = []byte(raw)
	}
	if raw, err := s.store.Attr(ctx, conv, attrContact); err == nil && raw != "" {
		var c provider.Contact
		if json.Unmarshal([]byte(raw), &c) == nil {
			pm.Contact = &c
		}
	}
	var msg store.Message
	if seq > 0 {
		ms, err := s.store.Read(ctx, conv, seq-1, 1)
		if err != nil {
			return s.storeTrouble(conv, it, "dispatching", err)
		}
		if len(ms) == 0 || ms[0].Seq != seq || ms[0].State == store.Delivered {
			return true
		}
		msg = ms[0]
		body, err := widget.DecodeBody(msg.Body)
		if err != nil {
			s.log.Error("stored message does not decode", "conversation", conv, "seq", seq, "error", err)
			return true
		}
		pm.ClientID, pm.Text, pm.Kind = msg.ClientID, body.Text, provider.Text
		if msg.Payload != "" {
			pm.Kind, pm.Payload = provider.Postback, msg.Payload
		}
	}

	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	// A call in flight is not cut short by a shutdown: the platform may
	// already have the message, and only its answer tells us so. Close
	// waits for it, so the message is recorded as delivered and never
	// handed over again after the restart.
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.retry.Timeout)
	err = p.Send(callCtx, pm)
	cancel()
	<-s.sem
	attempts++

	if err == nil {
		s.log.Debug("handed upstream", "bot", c.Bot, "conversation", conv, "seq", seq, "kind", string(pm.Kind), "attempt", attempts)
		if seq > 0 {
			s.mu.Lock()
			it.taken = true
			s.mu.Unlock()
			return s.recordTaken(conv, it)
		}
		return true
	}
	if ctx.Err() != nil { // shutting down: leave it on the outbox
		return false
	}
	reason, temporary, after := provider.Classify(err)
	retry := temporary && time.Since(first) <= s.retry.GiveUp
	wait := s.retry.backoff(attempts, after)
	if seq == 0 && retry { // a greeting: briefly (RetryPolicy.Greet)
		retry = time.Since(first)+wait <= s.retry.greetFor()
	}
	markFailed := !shown && (!retry || attempts >= s.retry.Quick)
	s.log.Warn("upstream call failed", "bot", c.Bot, "conversation", conv, "seq", seq,
		"attempt", attempts, "reason", reason, "retry", retry, "error", err)
	if seq == 0 && !retry {
		s.log.Warn("conversation start given up: the bot does not greet first", "bot", c.Bot, "conversation", conv,
			"attempts", attempts, "reason", reason)
	}
	s.mu.Lock()
	if it.gen != gen { // the visitor retried meanwhile: that retry starts afresh
		s.mu.Unlock()
		return false
	}
	it.attempts = attempts
	it.shown = it.shown || markFailed
	if retry {
		it.notBefore = time.Now().Add(wait)
	}
	s.mu.Unlock()
	if markFailed && seq > 0 {
		if _, err := s.store.SetState(ctx, conv, seq, store.Failed, reason); err != nil {
			s.log.Error("cannot record failure", "conversation", conv, "seq", seq, "error", err)
		}
		s.publishStatus(conv, msg.ClientID, widget.StateFailed, reason)
	}
	return !retry
}

// recordTaken records that the platform accepted it and tells the
// visitor. When the store cannot record it, the item stays queued and
// only the recording is tried again, so the message stays with the
// platform once. It reports whether the item is finished.
func (s *Service) recordTaken(conv string, it *item) bool {
	m, err := s.store.SetState(context.WithoutCancel(s.ctx), conv, it.seq, store.Delivered, "")
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return true
		}
		return s.storeTrouble(conv, it, "recording a delivery", err)
	}
	s.publishStatus(conv, m.ClientID, widget.StateDelivered, "")
	return true
}

// storeTrouble logs a store error while doing what (dispatching, or
// recording a delivery) and schedules the item for a later try; it stays
// on the outbox meanwhile. It returns false: the item is not finished.
func (s *Service) storeTrouble(conv string, it *item, what string, err error) bool {
	if s.ctx.Err() == nil {
		s.log.Error("store error while "+what+"; trying again", "conversation", conv, "seq", it.seq, "error", err)
	}
	s.mu.Lock()
	it.notBefore = time.Now().Add(s.retry.backoff(max(it.attempts, 1), 0))
	s.mu.Unlock()
	return false
}

func (s *Service) publishStatus(conv, clientID, state, reason string) {
	if clientID == "" {
		return
	}
	s.publish(context.Background(), bus.Event{Conversation: conv, Status: bus.Status{ClientID: clientID, State: state, Reason: reason}})
}

// publish tells the conversation's sockets, wherever they are. A failure
// costs them latency only: what changed is stored, and each socket
// checks the store on its heartbeat.
func (s *Service) publish(ctx context.Context, ev bus.Event) {
	if err := s.bus.Publish(context.WithoutCancel(ctx), ev); err != nil {
		s.log.Warn("cannot publish an event; sockets catch up on their heartbeat", "conversation", ev.Conversation, "error", err)
	}
}
