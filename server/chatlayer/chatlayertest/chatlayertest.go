// Package chatlayertest emulates Chatlayer's Webhook channel, in the style
// of net/http/httptest, for tests and for `porthole sim`: the V1 and the
// legacy message endpoints, strict about the contract of PROVIDERS.md
// (bearer check, required fields, the 32-character legacy sender rule,
// rate-limit headers), and a scripted bot that answers every accepted
// message asynchronously, one callback per bot message, with the verify
// token and up to 3 retries. Faults can be injected on both sides: error
// answers, slowness, and dropped, duplicated, reordered or delayed
// callbacks.
package chatlayertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Credentials an emulator uses when Options leaves them empty.
const (
	DefaultToken       = "emu-token-id:emu-token-secret"
	DefaultVerifyToken = "emu-verify-token"
	DefaultChannelID   = "emu-channel"
	DefaultBotID       = "emu-bot"
)

// MaxRetries is how many times a failed callback is tried again, as
// Chatlayer does.
const MaxRetries = 3

// Options configures an emulator. The zero value works with the Default
// credentials.
type Options struct {
	// Token is the V1 bearer token (<tokenId>:<tokenSecret>).
	Token string
	// VerifyToken is the channel's verify token: required in legacy
	// request bodies, and sent in every callback.
	VerifyToken string
	// CallbackVerifyToken, when set, is sent in callbacks instead of
	// VerifyToken, to see a proxy refuse them.
	CallbackVerifyToken string
	// ChannelID is the V1 Webhook channel id in the URL.
	ChannelID string
	// BotID is the bot id of the legacy URL.
	BotID string
	// Callback is the proxy's webhook URL; SetCallback changes it.
	Callback string
	// RouteField is where callbacks name the conversation: "senderId"
	// (default), "recipient" (recipient.id) or "sender" (sender.id).
	RouteField string
	// MediaBase, when set, is where the bot's media live instead of the
	// emulator's own /assets: its image, video, audio and file are
	// MediaBase + "/harbour.svg", "/waves.webm", "/bell.wav" and
	// "/porthole-demo.pdf", which `porthole sim` points at the proxy's
	// /static/demo so that the video plays.
	MediaBase string
	// ReplyDelay is how long the bot "thinks" before its replies to a
	// message. Zero: at once.
	ReplyDelay time.Duration
	// RetryBackoff is the wait before the first callback retry; it
	// doubles for each next one. Zero means 50ms.
	RetryBackoff time.Duration
	// ReorderGap spaces the callbacks of a reversed batch, so they reach
	// the proxy in reverse order. Zero means 20ms.
	ReorderGap time.Duration
	// RateLimit is the number of requests accepted per one-minute window,
	// reported in x-ratelimit-* headers; more answer 429. Zero means 600.
	RateLimit int
	// Client posts the callbacks. Nil: a client with a 5s timeout.
	Client *http.Client
	// Log receives the emulator's own events. Nil: discarded. Secrets
	// are never logged.
	Log *slog.Logger
}

// Request is one request the emulator received on an API endpoint.
type Request struct {
	Mode   string // "v1" or "legacy"
	Method string
	Path   string
	Status int    // what the emulator answered
	Error  string // why it refused, for a 4xx
	UserID string // user.id, conversationId or sender.id, when accepted
	Kind   string // "text", "postback" or "intro", when accepted
	Body   json.RawMessage
	At     time.Time
}

// Callback is one attempt to deliver a bot message to the proxy.
type Callback struct {
	UserID  string
	Counter uint64
	Attempt int    // 1 for the first try
	Status  int    // the proxy's answer; 0 when the POST failed
	Err     string // why the POST failed
	Dropped bool   // a DropCallbacks fault: never sent
	Message json.RawMessage
	At      time.Time
}

// Server is a running emulator.
type Server struct {
	// URL is the base URL to configure as the adapter's base_url. Set by
	// NewServer; with New, the caller sets it if it wants it.
	URL string

	opts    Options
	hs      *httptest.Server
	handler http.Handler
	client  *http.Client
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	callback  string
	fail      int
	failCode  int
	failHdr   http.Header
	slow      time.Duration
	drop      int
	dup       int
	reverse   int
	cbDelay   time.Duration
	requests  []Request
	accepted  map[string]int
	counters  map[string]uint64
	callbacks []Callback
	queues    map[string]*queue
	pending   int
	window    time.Time
	used      int
	closed    bool
}

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
	counter uint64
	message json.RawMessage
	drop    bool
	dup     bool
}

// New returns an emulator that is not listening: serve Handler on a
// port of your choice (as `porthole sim` does) and Close it after.
func New(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.VerifyToken == "" {
		opts.VerifyToken = DefaultVerifyToken
	}
	if opts.CallbackVerifyToken == "" {
		opts.CallbackVerifyToken = opts.VerifyToken
	}
	if opts.ChannelID == "" {
		opts.ChannelID = DefaultChannelID
	}
	if opts.BotID == "" {
		opts.BotID = DefaultBotID
	}
	if opts.RouteField == "" {
		opts.RouteField = "senderId"
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = 50 * time.Millisecond
	}
	if opts.ReorderGap <= 0 {
		opts.ReorderGap = 20 * time.Millisecond
	}
	if opts.RateLimit <= 0 {
		opts.RateLimit = 600
	}
	opts.MediaBase = strings.TrimRight(opts.MediaBase, "/")
	s := &Server{
		opts: opts, client: opts.Client, log: opts.Log, callback: opts.Callback,
		accepted: map[string]int{}, counters: map[string]uint64{}, queues: map[string]*queue{},
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 5 * time.Second}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/channels/webhook/{channelId}/messages", s.api("v1", s.v1))
	mux.HandleFunc("POST /api/webhookMessage/{botId}", s.api("legacy", s.legacy))
	mux.HandleFunc("GET /assets/{name}", serveAsset)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, "no such endpoint")
	})
	s.handler = mux
	return s
}

// NewServer starts an emulator on a loopback port, like
// httptest.NewServer. Close it when done.
func NewServer(opts Options) *Server {
	s := New(opts)
	s.hs = httptest.NewServer(s.handler)
	s.URL = s.hs.URL
	return s
}

// Handler returns the emulator's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the listener (if NewServer started one) and the callbacks,
// and waits for them to end.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	if s.hs != nil {
		s.hs.Close()
	}
	s.wg.Wait()
}

// SetCallback sets the proxy's webhook URL the bot replies to.
func (s *Server) SetCallback(url string) {
	s.mu.Lock()
	s.callback = url
	s.mu.Unlock()
}

// FailNext makes the next n API requests answer status with headers
// (such as Retry-After or x-ratelimit-reset), before any other check.
func (s *Server) FailNext(n, status int, headers http.Header) {
	s.mu.Lock()
	s.fail, s.failCode, s.failHdr = n, status, headers.Clone()
	s.mu.Unlock()
}

// Slow delays every API answer by d (zero: no delay).
func (s *Server) Slow(d time.Duration) {
	s.mu.Lock()
	s.slow = d
	s.mu.Unlock()
}

// DropCallbacks makes the next n bot messages vanish: their counter is
// used, but they are never sent.
func (s *Server) DropCallbacks(n int) {
	s.mu.Lock()
	s.drop = n
	s.mu.Unlock()
}

// DuplicateCallbacks sends each of the next n bot messages twice.
func (s *Server) DuplicateCallbacks(n int) {
	s.mu.Lock()
	s.dup = n
	s.mu.Unlock()
}

// ReverseBatches sends the replies to each of the next n user messages
// in reverse order (the messageCounter still numbers them in order).
func (s *Server) ReverseBatches(n int) {
	s.mu.Lock()
	s.reverse = n
	s.mu.Unlock()
}

// DelayCallbacks waits d before each callback (zero: no delay).
func (s *Server) DelayCallbacks(d time.Duration) {
	s.mu.Lock()
	s.cbDelay = d
	s.mu.Unlock()
}

// Requests returns every API request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Callbacks returns every callback attempt so far.
func (s *Server) Callbacks() []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Callback(nil), s.callbacks...)
}

// Accepted returns how many messages were accepted for a user id
// (a V1 user.id or conversationId, or a legacy sender.id).
func (s *Server) Accepted(userID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted[userID]
}

// Produced returns how many bot messages were produced for a user id,
// which is also its last messageCounter.
func (s *Server) Produced(userID string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counters[userID]
}

// WaitIdle waits until no callback is queued or in flight, or ctx ends.
func (s *Server) WaitIdle(ctx context.Context) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		idle := s.pending == 0
		s.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// reply is what an endpoint handler answers.
type reply struct {
	status int
	ctype  string
	body   []byte
	err    string // the refusal reason, recorded with the request
}

func jsonReply(status int, v any) reply {
	b, _ := json.Marshal(v)
	return reply{status: status, ctype: "application/json", body: b}
}

// refuse is an error answer shaped like Chatlayer's API errors.
func refuse(status int, msg string) reply {
	r := jsonReply(status, map[string]any{"statusCode": status, "error": http.StatusText(status), "message": msg})
	r.err = msg
	return r
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	r := refuse(status, msg)
	w.Header().Set("Content-Type", r.ctype)
	w.WriteHeader(status)
	w.Write(r.body)
}

// api wraps an endpoint with what every answer gets: slowness, the rate
// limit and its headers, injected failures, and the record of the request.
func (s *Server) api(mode string, h func(r *http.Request, body []byte, rec *Request) reply) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := Request{Mode: mode, Method: r.Method, Path: r.URL.Path, At: time.Now()}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		rec.Body = json.RawMessage(body)

		s.mu.Lock()
		slow := s.slow
		now := time.Now()
		if now.Sub(s.window) >= time.Minute {
			s.window, s.used = now, 0
		}
		s.used++
		limited := s.used > s.opts.RateLimit
		remaining := max(s.opts.RateLimit-s.used, 0)
		reset := s.window.Add(time.Minute)
		var injected *reply
		var injectedHdr http.Header
		if s.fail > 0 {
			s.fail--
			rp := refuse(s.failCode, "injected fault")
			injected, injectedHdr = &rp, s.failHdr
		}
		s.mu.Unlock()

		if slow > 0 {
			t := time.NewTimer(slow)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			case <-s.ctx.Done():
				t.Stop()
			}
		}
		hdr := w.Header()
		hdr.Set("X-Ratelimit-Limit", strconv.Itoa(s.opts.RateLimit))
		hdr.Set("X-Ratelimit-Remaining", strconv.Itoa(remaining))
		hdr.Set("X-Ratelimit-Reset", strconv.FormatInt(reset.UnixMilli(), 10)) // milliseconds, as the docs show

		var rp reply
		switch {
		case injected != nil:
			rp = *injected
			for k, vs := range injectedHdr {
				hdr[http.CanonicalHeaderKey(k)] = vs
			}
		case limited:
			rp = refuse(http.StatusTooManyRequests, "rate limit exceeded")
		case err != nil:
			rp = refuse(http.StatusRequestEntityTooLarge, "body too large")
		default:
			rp = h(r, body, &rec)
		}
		rec.Status, rec.Error = rp.status, rp.err
		s.mu.Lock()
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
		if rp.err != "" {
			s.log.Info("chatlayer emulator refused a request", "mode", mode, "status", rp.status, "reason", rp.err)
		}
		hdr.Set("Content-Type", rp.ctype)
		w.WriteHeader(rp.status)
		w.Write(rp.body)
	}
}

// sameSecret compares a presented secret with the configured one in
// constant time, as the real service should.
func sameSecret(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return got != "" && subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// jsonBody checks the content type and decodes a JSON object, keeping
// each field raw so that presence and types can be checked one by one.
func jsonBody(r *http.Request, body []byte) (map[string]json.RawMessage, *reply) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		rp := refuse(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return nil, &rp
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		rp := refuse(http.StatusBadRequest, "the body must be a JSON object")
		return nil, &rp
	}
	return m, nil
}

// str returns a JSON string's value and whether raw is a string.
func str(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// object decodes a JSON object, or returns nil.
func object(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// v1 is POST /v1/channels/webhook/{channelId}/messages.
func (s *Server) v1(r *http.Request, body []byte, rec *Request) reply {
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || !sameSecret(token, s.opts.Token) {
		return refuse(http.StatusUnauthorized, "missing or invalid bearer token")
	}
	if r.PathValue("channelId") != s.opts.ChannelID {
		return refuse(http.StatusNotFound, "no such channel")
	}
	m, bad := jsonBody(r, body)
	if bad != nil {
		return *bad
	}

	var user string
	if raw, ok := m["user"]; ok {
		u := object(raw)
		if u == nil {
			return refuse(http.StatusBadRequest, "user must be an object")
		}
		id, ok := str(u["id"])
		if !ok || id == "" {
			return refuse(http.StatusBadRequest, "user.id is required (a non-empty string)")
		}
		for _, f := range []string{"firstName", "lastName", "preferredLanguage"} {
			if v, present := u[f]; present {
				if _, ok := str(v); !ok {
					return refuse(http.StatusBadRequest, "user."+f+" must be a string")
				}
			}
		}
		user = id
	} else if raw, ok := m["conversationId"]; ok {
		id, ok := str(raw)
		if !ok || id == "" {
			return refuse(http.StatusBadRequest, "conversationId must be a non-empty string")
		}
		user = id
	} else {
		return refuse(http.StatusBadRequest, "user.id or conversationId is required")
	}

	msg := object(m["message"])
	if msg == nil {
		return refuse(http.StatusBadRequest, "message is required (an object)")
	}
	var kinds []string
	for _, k := range []string{"textMessage", "postbackMessage", "introMessage"} {
		if _, ok := msg[k]; ok {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 1 {
		return refuse(http.StatusBadRequest, "message must have exactly one of textMessage, postbackMessage, introMessage")
	}
	in := incoming{}
	switch kinds[0] {
	case "textMessage":
		tm := object(msg["textMessage"])
		text, ok := str(tm["text"])
		if !ok || strings.TrimSpace(text) == "" {
			return refuse(http.StatusBadRequest, "message.textMessage.text is required (a non-empty string)")
		}
		in.kind, in.text = "text", text
	case "postbackMessage":
		pm := object(msg["postbackMessage"])
		if pm == nil {
			return refuse(http.StatusBadRequest, "message.postbackMessage must be an object")
		}
		title, ok := str(pm["title"])
		if !ok || strings.TrimSpace(title) == "" {
			return refuse(http.StatusBadRequest, "message.postbackMessage.title is required (a non-empty string)")
		}
		for _, f := range []string{"nextDialogstateId", "payload"} {
			if v, present := pm[f]; present {
				if _, ok := str(v); !ok {
					return refuse(http.StatusBadRequest, "message.postbackMessage."+f+" must be a string")
				}
			}
		}
		if raw, present := pm["sessionDataToSet"]; present {
			var kvs []json.RawMessage
			if json.Unmarshal(raw, &kvs) != nil {
				return refuse(http.StatusBadRequest, "message.postbackMessage.sessionDataToSet must be an array")
			}
			for i, kv := range kvs {
				k, ok := str(object(kv)["key"])
				if !ok || k == "" {
					return refuse(http.StatusBadRequest, "message.postbackMessage.sessionDataToSet["+strconv.Itoa(i)+"].key is required (a non-empty string)")
				}
			}
		}
		in.kind, in.title = "postback", title
		in.next, _ = str(pm["nextDialogstateId"])
		in.payload, _ = str(pm["payload"])
	case "introMessage":
		if object(msg["introMessage"]) == nil {
			return refuse(http.StatusBadRequest, "message.introMessage must be an object ({})")
		}
		in.kind = "intro"
	}
	if raw, present := m["sessionData"]; present {
		sd := object(raw)
		if sd == nil {
			return refuse(http.StatusBadRequest, "sessionData must be an object")
		}
		in.session = sd
	}
	rec.UserID, rec.Kind = user, in.kind
	s.accept(user, in, baseURL(r))
	return jsonReply(http.StatusOK, map[string]any{})
}

// legacy is POST /api/webhookMessage/{botId}.
func (s *Server) legacy(r *http.Request, body []byte, rec *Request) reply {
	if r.PathValue("botId") != s.opts.BotID {
		return refuse(http.StatusNotFound, "no such bot")
	}
	m, bad := jsonBody(r, body)
	if bad != nil {
		return *bad
	}
	vt, _ := str(m["verifyToken"])
	if !sameSecret(vt, s.opts.VerifyToken) {
		return refuse(http.StatusUnauthorized, "missing or invalid verifyToken")
	}
	sender := object(m["sender"])
	id, ok := str(sender["id"])
	if !ok || id == "" {
		return refuse(http.StatusBadRequest, "sender.id is required (a string)")
	}
	if len(id) < 32 {
		return refuse(http.StatusBadRequest, "sender.id must have at least 32 characters")
	}
	text, ok := str(m["text"])
	if !ok || strings.TrimSpace(text) == "" {
		return refuse(http.StatusBadRequest, "text is required (a non-empty string)")
	}
	if v, present := m["locale"]; present {
		if _, ok := str(v); !ok {
			return refuse(http.StatusBadRequest, "locale must be a string")
		}
	}
	in := legacyIncoming(text)
	rec.UserID, rec.Kind = id, in.kind
	s.accept(id, in, baseURL(r))
	return reply{status: http.StatusOK, ctype: "text/plain; charset=utf-8", body: []byte("EVENT_RECEIVED")}
}

// baseURL is the emulator's own URL as the client reached it, for the
// media the bot links to.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
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

// accept counts an accepted message and queues the bot's replies.
func (s *Server) accept(user string, in incoming, base string) {
	msgs := script(in, s.media(base))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accepted[user]++
	if s.closed || len(msgs) == 0 {
		return
	}
	j := job{delay: s.opts.ReplyDelay}
	if s.reverse > 0 {
		s.reverse--
		j.reverse = true
	}
	for _, m := range msgs {
		s.counters[user]++
		o := outgoing{user: user, counter: s.counters[user], message: m}
		if s.drop > 0 {
			s.drop--
			o.drop = true
		} else if s.dup > 0 {
			s.dup--
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
	s.pending++
	if !q.running {
		q.running = true
		s.wg.Add(1)
		go s.drain(user, q)
	}
}

// drain sends a conversation's batches one after the other.
func (s *Server) drain(user string, q *queue) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if len(q.jobs) == 0 || s.ctx.Err() != nil {
			s.pending -= len(q.jobs)
			q.jobs, q.running = nil, false
			delete(s.queues, user)
			s.mu.Unlock()
			return
		}
		j := q.jobs[0]
		q.jobs = q.jobs[1:]
		s.mu.Unlock()

		if s.sleep(j.delay) {
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
					if !s.sleep(s.opts.ReorderGap) {
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
		s.mu.Lock()
		s.pending--
		s.mu.Unlock()
	}
}

// sleep waits d, or less if the emulator closes; it reports whether it
// is still open.
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

// deliver sends one bot message, applying its faults.
func (s *Server) deliver(o outgoing) {
	if o.drop {
		s.record(Callback{UserID: o.user, Counter: o.counter, Dropped: true, Message: o.message, At: time.Now()})
		return
	}
	s.mu.Lock()
	delay := s.cbDelay
	s.mu.Unlock()
	if !s.sleep(delay) {
		return
	}
	s.post(o)
	if o.dup {
		s.post(o)
	}
}

// post sends one callback, retrying MaxRetries times on a failure.
func (s *Server) post(o outgoing) {
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
	backoff := s.opts.RetryBackoff
	for attempt := 1; attempt <= 1+MaxRetries; attempt++ {
		if attempt > 1 {
			if !s.sleep(backoff) {
				return
			}
			backoff *= 2
		}
		s.mu.Lock()
		url := s.callback
		s.mu.Unlock()
		cb := Callback{UserID: o.user, Counter: o.counter, Attempt: attempt, Message: o.message, At: time.Now()}
		if url == "" {
			cb.Err = "no callback URL set"
			s.record(cb)
			continue
		}
		req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(data))
		if err != nil {
			cb.Err = "bad callback URL"
			s.record(cb)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.client.Do(req)
		if err != nil {
			cb.Err = "POST failed"
			s.record(cb)
			if s.ctx.Err() != nil {
				return
			}
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		cb.Status = resp.StatusCode
		s.record(cb)
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return
		}
	}
	s.log.Warn("chatlayer emulator gave up a callback", "user", o.user, "counter", o.counter)
}

func (s *Server) record(cb Callback) {
	s.mu.Lock()
	s.callbacks = append(s.callbacks, cb)
	s.mu.Unlock()
}
