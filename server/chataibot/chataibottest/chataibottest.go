// Package chataibottest is an emulator of ChatAIBot's "API as a channel",
// in the style of net/http/httptest: tests start one with NewServer and
// point the adapter's base_url at its URL; `porthole sim` serves its
// Handler on a local port for manual tries.
//
// It follows ../shared/PROVIDERS.md strictly: bearer check (401), the
// documented request shapes (unknown fields are fine, a missing or wrong
// required one is a 400 naming it), answers shaped exactly like the
// documented samples, and rate-limit headers. Its scripted bot answers
// every visitor message asynchronously by callback, in the reply shape
// the adapter assumes (chataibot.Callback), authenticated with the
// callback secret and retried up to 3 times. Faults can be injected: 429
// and 5xx answers with headers, slowness, "ok": false under a 200, and
// dropped, duplicated, reordered and delayed callbacks.
package chataibottest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/porthole-chat/porthole/server/chataibot"
)

// Defaults of Options.
const (
	DefaultToken     = "chataibottest-account-token"
	DefaultBotKey    = "chataibottest-bot-key"
	DefaultAccountID = "acct0001"
	DefaultMediaBase = "https://media.chataibottest.example"
)

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
	// RetryDelay is the pause before callback retry n, times n. Default
	// 20ms.
	RetryDelay time.Duration
	// CallbackHeader, when set, carries the raw callback secret instead
	// of Authorization: Bearer (the adapter's webhook_auth: header).
	CallbackHeader string
	// RepliesInResponse puts the bot's replies in the answer to the start
	// or send call (as "messages") instead of posting them by callback.
	RepliesInResponse bool
	// RateLimit is how many API calls each RateWindow allows; more get a
	// 429. Zero means 1000; negative means no limit (headers still sent).
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

// CallbackAttempt is one POST of a reply batch to the callback URL.
type CallbackAttempt struct {
	Attempt int // 1 for the first try, up to 4
	Header  http.Header
	Body    []byte
	Status  int    // 0 when the request failed
	Err     string // the network error, if any
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

// Server is a running emulator.
type Server struct {
	// URL is the base URL of the API, http://127.0.0.1:port, without a
	// trailing slash; empty for a Server from New until the caller sets
	// it.
	URL string

	opts    Options
	srv     *httptest.Server
	handler http.Handler
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	wake    chan struct{}

	mu         sync.Mutex
	convs      map[string]*conversation
	requests   []Request
	attempts   []CallbackAttempt
	stats      Stats
	faults     []fault
	slow       time.Duration
	cbURL      string
	cbSecret   string
	cbDrop     int
	cbDup      int
	cbReorder  int
	cbDelay    time.Duration
	windowEnds time.Time
	used       int
	queue      []job
	pending    int // batches queued or being posted
}

type conversation struct {
	Conversation
	plan string
}

// fault is one injected answer: a status with headers, or an ok:false
// body under a 200.
type fault struct {
	status int
	header http.Header
	notOK  string
}

// job is one reply batch waiting for the callback dispatcher.
type job struct {
	conv string
	body []byte
}

// NewServer starts an emulator on a loopback port. Close it when done.
func NewServer(opts Options) *Server {
	s := New(opts)
	s.srv = httptest.NewServer(s.handler)
	s.URL = s.srv.URL
	return s
}

// New returns an emulator that is not listening: serve Handler yourself
// (as `porthole sim` does) and set URL if the bot's media should point
// at it. Close it when done, to stop the callback dispatcher.
func New(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.BotKey == "" {
		opts.BotKey = DefaultBotKey
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = 20 * time.Millisecond
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 1000
	}
	if opts.RateWindow <= 0 {
		opts.RateWindow = time.Minute
	}
	if opts.ReorderWait <= 0 {
		opts.ReorderWait = time.Second
	}
	if opts.MediaBase == "" {
		opts.MediaBase = DefaultMediaBase
	}
	opts.MediaBase = strings.TrimRight(opts.MediaBase, "/")
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 5 * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{opts: opts, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1), convs: map[string]*conversation{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/conversations", s.start)
	mux.HandleFunc("POST /api/v1/conversation/{id}/messages", s.send)
	s.handler = s.api(mux)
	s.wg.Add(1)
	if opts.Parallel > 1 {
		go s.dispatchParallel()
	} else {
		go s.dispatch()
	}
	return s
}

// Handler returns the emulated API.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the server (if NewServer started it) and the callback
// dispatcher; callbacks not yet posted are abandoned.
func (s *Server) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
	s.cancel()
	s.wg.Wait()
}

// SetCallback sets where the bot posts its replies and the secret that
// authenticates them (Authorization: Bearer <secret>, or the raw secret
// in Options.CallbackHeader). An empty url drops replies.
func (s *Server) SetCallback(url, secret string) {
	s.mu.Lock()
	s.cbURL, s.cbSecret = url, secret
	s.mu.Unlock()
}

// FailNext makes the next n API calls (authenticated ones) answer status
// with header and {"ok":false,...}, doing nothing: a 429 with
// Retry-After or x-ratelimit-reset, a 500 or 503.
func (s *Server) FailNext(n, status int, header http.Header) {
	s.mu.Lock()
	for range n {
		s.faults = append(s.faults, fault{status: status, header: header.Clone()})
	}
	s.mu.Unlock()
}

// NotOKNext makes the next n API calls answer 200 with
// {"ok":false,"error":msg}, doing nothing.
func (s *Server) NotOKNext(n int, msg string) {
	s.mu.Lock()
	for range n {
		s.faults = append(s.faults, fault{status: http.StatusOK, notOK: msg})
	}
	s.mu.Unlock()
}

// Slow delays every API answer by d, until Slow(0).
func (s *Server) Slow(d time.Duration) {
	s.mu.Lock()
	s.slow = d
	s.mu.Unlock()
}

// DropCallbacks loses the next n reply batches: they are never posted.
func (s *Server) DropCallbacks(n int) { s.addFault(&s.cbDrop, n) }

// DuplicateCallbacks posts each of the next n reply batches twice, the
// second time after the first was acknowledged.
func (s *Server) DuplicateCallbacks(n int) { s.addFault(&s.cbDup, n) }

// ReorderCallbacks holds each of the next n reply batches back until the
// following one has been posted (or ReorderWait has passed).
func (s *Server) ReorderCallbacks(n int) { s.addFault(&s.cbReorder, n) }

// DelayCallbacks adds d before each reply batch, until DelayCallbacks(0).
func (s *Server) DelayCallbacks(d time.Duration) {
	s.mu.Lock()
	s.cbDelay = d
	s.mu.Unlock()
}

func (s *Server) addFault(counter *int, n int) {
	s.mu.Lock()
	*counter += n
	s.mu.Unlock()
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

// Callbacks returns every callback attempt so far, in order.
func (s *Server) Callbacks() []CallbackAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CallbackAttempt, len(s.attempts))
	for i, a := range s.attempts {
		a.Header, a.Body = a.Header.Clone(), bytes.Clone(a.Body)
		out[i] = a
	}
	return out
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
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

// Wait returns once every reply batch produced so far has been posted,
// given up or dropped, or when ctx ends.
func (s *Server) Wait(ctx context.Context) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		idle := s.pending == 0
		s.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// api wraps the routes with what every call goes through: recording,
// slowness, the bearer check, the rate limit, injected faults and the
// content type.
func (s *Server) api(routes http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		s.mu.Lock()
		s.stats.Requests++
		slow := s.slow
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Status: rec.status})
			s.mu.Unlock()
		}()
		if slow > 0 {
			t := time.NewTimer(slow)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				rec.status = 0 // the caller gave up
				return
			}
		}
		if r.Header.Get("Authorization") != "Bearer "+s.opts.Token {
			s.count(&s.stats.Unauthorized)
			fail(rec, http.StatusUnauthorized, "Unauthorized: invalid or missing token")
			return
		}
		s.mu.Lock()
		now := time.Now()
		if !now.Before(s.windowEnds) {
			s.windowEnds, s.used = now.Add(s.opts.RateWindow), 0
		}
		s.used++
		limited := s.opts.RateLimit > 0 && s.used > s.opts.RateLimit
		h := rec.Header()
		if s.opts.RateLimit > 0 {
			h.Set("X-Ratelimit-Limit", strconv.Itoa(s.opts.RateLimit))
			h.Set("X-Ratelimit-Remaining", strconv.Itoa(max(s.opts.RateLimit-s.used, 0)))
			h.Set("X-Ratelimit-Reset", strconv.FormatInt(s.windowEnds.Unix(), 10))
		}
		var f *fault
		if limited {
			s.stats.RateLimited++
			h.Set("Retry-After", strconv.Itoa(int(math.Ceil(s.windowEnds.Sub(now).Seconds()))))
		} else if len(s.faults) > 0 {
			f = &s.faults[0]
			s.faults = s.faults[1:]
			s.stats.Faults++
		}
		s.mu.Unlock()
		switch {
		case limited:
			fail(rec, http.StatusTooManyRequests, "Too many requests")
			return
		case f != nil && f.notOK != "":
			fail(rec, http.StatusOK, f.notOK)
			return
		case f != nil:
			for k, vs := range f.header {
				h[k] = vs
			}
			fail(rec, f.status, http.StatusText(f.status))
			return
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			s.count(&s.stats.Invalid)
			fail(rec, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
			return
		}
		routes.ServeHTTP(rec, r)
	})
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) count(n *int) {
	s.mu.Lock()
	*n++
	s.mu.Unlock()
}

// fail answers {"ok":false,"error":msg}, ChatAIBot's error shape.
func fail(w http.ResponseWriter, status int, msg string) {
	write(w, status, map[string]any{"ok": false, "error": msg})
}

func write(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// object is a decoded JSON object with typed, path-named access, so that
// every 400 names the offending field.
type object map[string]any

func decode(w http.ResponseWriter, r *http.Request) (object, bool) {
	var v any
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		fail(w, http.StatusBadRequest, "Invalid JSON body")
		return nil, false
	}
	obj, ok := v.(map[string]any)
	if !ok {
		fail(w, http.StatusBadRequest, "The body must be a JSON object")
		return nil, false
	}
	return obj, true
}

// get returns the value at a dotted path and whether each step was an
// object.
func (o object) get(path string) (any, bool) {
	var v any = map[string]any(o)
	for key := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[key]; !ok {
			return nil, false
		}
	}
	return v, true
}

// str checks that path holds a non-empty string (equal to want, if want
// is set) and returns it, or the 400 message naming the field.
func (o object) str(path, want string) (string, string) {
	v, ok := o.get(path)
	if !ok || v == nil {
		return "", path + " is required"
	}
	s, ok := v.(string)
	if !ok {
		return "", path + " must be a string"
	}
	if strings.TrimSpace(s) == "" {
		return "", path + " must not be empty"
	}
	if want != "" && s != want {
		return "", path + ` must be "` + want + `"`
	}
	return s, ""
}

// optObject checks that path, when present, is an object.
func (o object) optObject(path string) (map[string]any, string) {
	v, ok := o.get(path)
	if !ok || v == nil {
		return nil, ""
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, path + " must be an object"
	}
	return m, ""
}

// start is POST /api/v1/conversations.
func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	req, ok := decode(w, r)
	if !ok {
		s.count(&s.stats.Invalid)
		return
	}
	invalid := func(msg string) {
		s.count(&s.stats.Invalid)
		fail(w, http.StatusBadRequest, msg)
	}
	var vals [5]string
	for i, c := range []struct{ path, want string }{
		{"channel", "API"},
		{"message.type", "text"},
		{"message.data.body", ""},
		{"bot_key", ""},
		{"from.user_external_id", ""},
	} {
		v, msg := req.str(c.path, c.want)
		if msg != "" {
			invalid(msg)
			return
		}
		vals[i] = v
	}
	if _, msg := req.str("from.type", "VISITOR"); msg != "" {
		invalid(msg)
		return
	}
	body, key, visitor := vals[2], vals[3], vals[4]
	if key != s.opts.BotKey {
		invalid("bot_key does not match a bot of this account")
		return
	}
	vars := map[string]any{}
	for _, part := range []string{"variables", "variables.system", "variables.contact", "variables.conversation"} {
		m, msg := req.optObject(part)
		if msg != "" {
			invalid(msg)
			return
		}
		if part == "variables" && m != nil {
			vars = m
		}
	}
	contact, _ := req.optObject("variables.contact")
	text := func(m map[string]any, k string) string { v, _ := m[k].(string); return v }
	for _, k := range []string{"name", "email", "phone"} {
		if v, ok := contact[k]; ok && v != nil {
			if _, ok := v.(string); !ok {
				invalid("variables.contact." + k + " must be a string")
				return
			}
		}
	}

	now := time.Now().UTC()
	c := &conversation{Conversation: Conversation{ID: newID(), Visitor: visitor, Variables: vars}}
	if conv, _ := req.optObject("variables.conversation"); conv != nil {
		if v, ok := conv["plan"]; ok && v != nil {
			c.plan = stringify(v)
		}
	}
	s.mu.Lock()
	s.convs[c.ID] = c
	s.stats.Started++
	msgs := s.hear(c, body, newID())
	s.mu.Unlock()

	resp := map[string]any{
		"ok": true,
		"conversation": map[string]any{
			"id":         c.ID,
			"created_at": now.Format("2006-01-02 15:04:05.000000"),
			"assignee":   map[string]any{"id": "bot_" + s.opts.AccountID, "to": "bot+" + s.opts.AccountID + "@chataibot.test"},
		},
		"contact": map[string]any{
			"name": text(contact, "name"), "email": text(contact, "email"), "phone": text(contact, "phone"),
			"visitor_key": visitor + "_" + s.opts.AccountID,
		},
	}
	if msgs != nil {
		resp["messages"] = msgs
	}
	write(w, http.StatusOK, resp)
}

// send is POST /api/v1/conversation/{id}/messages.
func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	c := s.convs[id]
	s.mu.Unlock()
	if c == nil {
		s.count(&s.stats.Invalid)
		fail(w, http.StatusNotFound, "Conversation not found")
		return
	}
	req, ok := decode(w, r)
	if !ok {
		s.count(&s.stats.Invalid)
		return
	}
	var body string
	for _, check := range []struct{ path, want string }{{"message.type", "text"}, {"message.data.body", ""}, {"user.type", "VISITOR"}} {
		v, msg := req.str(check.path, check.want)
		if msg != "" {
			s.count(&s.stats.Invalid)
			fail(w, http.StatusBadRequest, msg)
			return
		}
		if check.path == "message.data.body" {
			body = v
		}
	}
	msgID := newID()
	s.mu.Lock()
	msgs := s.hear(c, body, msgID)
	s.mu.Unlock()
	resp := map[string]any{"ok": true, "message_id": msgID}
	if msgs != nil {
		resp["messages"] = msgs
	}
	write(w, http.StatusOK, resp)
}

// hear records a visitor message and has the bot answer it: in the
// returned messages with RepliesInResponse, else by callback (nil
// returned). s.mu must be held.
func (s *Server) hear(c *conversation, text, msgID string) []chataibot.BotMessage {
	c.Messages = append(c.Messages, text)
	s.stats.Messages++
	s.stats.Replies++
	msgs := s.answer(c, text)
	if s.opts.RepliesInResponse {
		return msgs
	}
	b, _ := json.Marshal(chataibot.Callback{ConversationID: c.ID, MessageID: newID(), InReplyTo: msgID, Messages: msgs})
	s.queue = append(s.queue, job{conv: c.ID, body: b})
	s.pending++
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// dispatch posts reply batches one at a time, in order, applying the
// callback faults.
func (s *Server) dispatch() {
	defer s.wg.Done()
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
		s.mu.Lock()
		hold := held == nil && s.cbReorder > 0
		if hold {
			s.cbReorder--
		}
		s.mu.Unlock()
		if hold {
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
	defer s.wg.Done()
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
		case <-s.ctx.Done():
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-sem }()
			if prev != nil {
				select {
				case <-prev:
				case <-s.ctx.Done():
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
		}()
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
		case <-s.ctx.Done():
			return nil, false
		}
	}
}

// post delivers one batch: dropped, or posted with up to 3 retries, and
// posted again when a duplicate is due.
func (s *Server) post(j job) {
	s.mu.Lock()
	drop := s.cbDrop > 0 || s.cbURL == ""
	if s.cbDrop > 0 {
		s.cbDrop--
	}
	dup := !drop && s.cbDup > 0
	if dup {
		s.cbDup--
	}
	delay, url, secret := s.cbDelay, s.cbURL, s.cbSecret
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.pending--
		s.mu.Unlock()
	}()
	if drop {
		s.count(&s.stats.CallbacksDropped)
		return
	}
	if !s.sleep(s.opts.ReplyDelay + delay) {
		return
	}
	if s.deliver(url, secret, j.body) && dup {
		s.count(&s.stats.CallbacksDuplicated)
		s.deliver(url, secret, j.body)
	}
}

// deliver posts body until a 2xx, at most 1 + 3 times.
func (s *Server) deliver(url, secret string, body []byte) bool {
	for attempt := 1; attempt <= 4; attempt++ {
		if attempt > 1 && !s.sleep(time.Duration(attempt-1)*s.opts.RetryDelay) {
			return false
		}
		req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			break
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "chataibottest")
		if s.opts.CallbackHeader != "" {
			req.Header.Set(s.opts.CallbackHeader, secret)
		} else {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		a := CallbackAttempt{Attempt: attempt, Header: req.Header.Clone(), Body: body}
		resp, err := s.opts.Client.Do(req)
		if err != nil {
			a.Err = err.Error()
		} else {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			a.Status = resp.StatusCode
		}
		s.mu.Lock()
		s.attempts = append(s.attempts, a)
		s.stats.CallbackAttempts++
		ok := a.Status >= 200 && a.Status < 300
		if ok {
			s.stats.CallbacksDelivered++
		}
		s.mu.Unlock()
		if ok {
			return true
		}
		if s.ctx.Err() != nil {
			return false
		}
	}
	s.count(&s.stats.CallbacksFailed)
	return false
}

// sleep waits d, or reports false when the server closes first.
func (s *Server) sleep(d time.Duration) bool {
	if d <= 0 {
		return s.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// newID returns a 32-character id of letters and digits, like the
// message_id in ChatAIBot's documentation.
func newID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 32)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// stringify renders a JSON value as the bot would say it.
func stringify(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}
