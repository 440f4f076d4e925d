// Package chataibottest is an emulator of ChatAIBot's "API as a channel",
// in the style of net/http/httptest: tests start one with NewServer and
// point the adapter's base_url at its URL; `porthole sim` serves its
// Handler on a local port for manual tries.
//
// It follows ../shared/PROVIDERS.md strictly: bearer check (401), the
// documented request shapes (unknown fields are fine, a missing or wrong
// required one is a 400 naming it), answers shaped exactly like the
// documented samples, and rate-limit headers. Its scripted bot answers
// every visitor message asynchronously by callback, in the assumed reply
// shape the README documents ("Assumed reply webhook"), written here as
// literal JSON and never from the adapter's types, so that an adapter
// that drifts from that contract fails its tests. Callbacks are
// authenticated with the callback secret and retried up to 3 times.
// Faults can be injected with the Controls every emulator shares (see
// providertest), and NotOKNext: 429 and 5xx answers with headers,
// slowness, "ok": false under a 200, and dropped, duplicated, reordered
// and delayed callbacks.
package chataibottest

import (
	"bytes"
	"cmp"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/porthole-chat/porthole/server/provider/providertest"
)

// Defaults of Options.
const (
	DefaultToken     = "chataibottest-account-token"
	DefaultBotKey    = "chataibottest-bot-key"
	DefaultAccountID = "acct0001"
	DefaultMediaBase = "https://media.chataibottest.example"
)

// MaxRetries is how many times a failed callback is tried again. ChatAIBot
// does not document its callbacks; this is assumed to be as Chatlayer.
const MaxRetries = 3

// Options configures a Server. The zero value works.
type Options struct {
	// Token is the account token the API accepts. Default DefaultToken.
	Token string
	// BotKey is the only bot key the API knows. Default DefaultBotKey.
	BotKey string
	// AccountID ends each contact's visitor_key. Default DefaultAccountID.
	AccountID string
	// ReplyDelay is how long the bot "thinks" before a reply batch goes
	// out. Default none.
	ReplyDelay time.Duration
	// RetryDelay is the pause before the first callback retry; retry n
	// waits n times as long. Default 20ms.
	RetryDelay time.Duration
	// CallbackHeader, when set, carries the raw callback secret instead
	// of Authorization: Bearer (the adapter's webhook_auth: header).
	CallbackHeader string
	// RepliesInResponse puts the bot's replies in the answer to the start
	// or send call (as "messages") instead of posting them by callback.
	RepliesInResponse bool
	// RateLimit is how many API calls each RateWindow allows; more get a
	// 429. Zero means 1000; negative means no limit, and no x-ratelimit-*
	// headers.
	RateLimit int
	// RateWindow is the rate-limit window. Default one minute.
	RateWindow time.Duration
	// ReorderWait is how long a callback held back by ReorderCallbacks
	// waits for the next one before it goes anyway. Default one second.
	ReorderWait time.Duration
	// MediaBase prefixes the URLs of the bot's media and card images.
	// Default DefaultMediaBase.
	MediaBase string
	// Client posts the callbacks. Default: a client with a 5s timeout.
	Client *http.Client
	// Parallel is how many conversations may have a callback in flight
	// (and the bot "thinking", ReplyDelay) at once; one conversation's
	// callbacks always go one at a time, in order. Default 1: one
	// callback at a time overall, the order the fault injections
	// (ReorderCallbacks) are defined on. A platform serves many
	// conversations at once; load tests set this.
	Parallel int
}

// Request is one API call the emulator received, as it came.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	Status int // what the emulator answered
}

// Stats counts what happened, for assertions.
type Stats struct {
	Requests            int // API calls received
	Unauthorized        int // answered 401
	Invalid             int // answered 400, 404 or 415: malformed or unknown
	RateLimited         int // answered 429 by the rate limit
	Faults              int // answered by an injected fault
	Started             int // conversations started
	Messages            int // visitor messages accepted, first messages included
	Replies             int // reply batches the bot produced
	CallbackAttempts    int // POSTs to the callback URL
	CallbacksDelivered  int // batches acknowledged with a 2xx, duplicates included
	CallbacksFailed     int // batches given up after 1 try and 3 retries
	CallbacksDropped    int // batches lost by DropCallbacks or for want of a URL
	CallbacksDuplicated int // batches sent twice by DuplicateCallbacks
}

// Conversation is the emulator's view of an upstream conversation.
type Conversation struct {
	ID        string
	Visitor   string         // from.user_external_id
	Variables map[string]any // the start call's variables, as sent
	Messages  []string       // the visitor's messages, in order
	Counter   int            // visitor messages the bot has answered
}

// Server is a running emulator. Its Controls inject faults and read the
// callbacks: on ChatAIBot, FailNext applies to authenticated calls within
// the rate limit, answering {"ok":false,...}; a callback is one reply
// batch (Callback.Conversation is its conversation_id), so DropCallbacks,
// DuplicateCallbacks (the copy goes once the first was acknowledged) and
// DelayCallbacks count batches; ReorderCallbacks holds each of the next n
// batches back until the following one has been posted, or ReorderWait
// has passed (with Parallel 1 only).
type Server struct {
	providertest.Emulator

	opts Options
	kit  *providertest.Kit
	rate providertest.RateWindow
	wake chan struct{}

	mu       sync.Mutex
	convs    map[string]*conversation
	requests []Request
	stats    Stats
	queue    []job
}

type conversation struct {
	Conversation
	plan string
}

// job is one reply batch waiting for the callback dispatcher.
type job struct {
	conv string
	body []byte
}

// NewServer starts an emulator on a loopback port. Close it when done.
func NewServer(opts Options) *Server {
	s := New(opts)
	s.Listen()
	return s
}

// New returns an emulator that is not listening: serve Handler yourself
// (as `porthole sim` does) and set URL if the bot's media should point
// at it. Close it when done, to stop the callback dispatcher.
func New(opts Options) *Server {
	opts.Token = cmp.Or(opts.Token, DefaultToken)
	opts.BotKey = cmp.Or(opts.BotKey, DefaultBotKey)
	opts.AccountID = cmp.Or(opts.AccountID, DefaultAccountID)
	opts.RetryDelay = providertest.PositiveOr(opts.RetryDelay, 20*time.Millisecond)
	opts.RateLimit = cmp.Or(opts.RateLimit, 1000)
	opts.RateWindow = providertest.PositiveOr(opts.RateWindow, time.Minute)
	opts.ReorderWait = providertest.PositiveOr(opts.ReorderWait, time.Second)
	opts.MediaBase = strings.TrimRight(cmp.Or(opts.MediaBase, DefaultMediaBase), "/")
	s := &Server{
		opts: opts, wake: make(chan struct{}, 1), convs: map[string]*conversation{},
		rate: providertest.RateWindow{Limit: opts.RateLimit, Window: opts.RateWindow},
	}
	s.kit = providertest.NewKit(providertest.KitOptions{
		Client:     opts.Client,
		Retries:    MaxRetries,
		RetryPause: func(retry int) time.Duration { return time.Duration(retry) * opts.RetryDelay },
	})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/conversations", s.start)
	mux.HandleFunc("POST /api/v1/conversation/{id}/messages", s.send)
	s.Emulator = providertest.NewEmulator(s.kit, s.api(mux))
	if opts.Parallel > 1 {
		s.kit.Go(s.dispatchParallel)
	} else {
		s.kit.Go(s.dispatch)
	}
	return s
}

// SetCallback sets where the bot posts its replies and the secret that
// authenticates them (Authorization: Bearer <secret>, or the raw secret
// in Options.CallbackHeader). An empty url drops replies.
func (s *Server) SetCallback(url, secret string) {
	h := http.Header{"User-Agent": {"chataibottest"}}
	if s.opts.CallbackHeader != "" {
		h.Set(s.opts.CallbackHeader, secret)
	} else {
		h.Set("Authorization", "Bearer "+secret)
	}
	s.kit.SetTarget(url, h)
}

// NotOKNext makes the next n API calls answer 200 with
// {"ok":false,"error":msg}, doing nothing, after the faults already
// queued: ChatAIBot's way to fail under a 2xx.
func (s *Server) NotOKNext(n int, msg string) {
	s.kit.Inject(n, providertest.Fault{Status: http.StatusOK, Message: msg})
}

// Requests returns every API call received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Header, r.Body = r.Header.Clone(), bytes.Clone(r.Body)
		out[i] = r
	}
	return out
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := s.stats
	s.mu.Unlock()
	cb := s.kit.Stats()
	st.CallbackAttempts, st.CallbacksDelivered, st.CallbacksFailed = cb.Attempts, cb.Delivered, cb.Failed
	st.CallbacksDropped, st.CallbacksDuplicated = cb.Dropped, cb.Duplicated
	return st
}

// Conversation returns the conversation with ChatAIBot id id.
func (s *Server) Conversation(id string) (Conversation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.convs[id]
	if !ok {
		return Conversation{}, false
	}
	return c.snapshot(), true
}

// Conversations returns every conversation, in no particular order.
func (s *Server) Conversations() []Conversation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Conversation, 0, len(s.convs))
	for _, c := range s.convs {
		out = append(out, c.snapshot())
	}
	return out
}

func (c *conversation) snapshot() Conversation {
	out := c.Conversation
	out.Messages = append([]string(nil), c.Messages...)
	return out // Variables are never modified after start
}
