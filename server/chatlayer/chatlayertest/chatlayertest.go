// Package chatlayertest emulates Chatlayer's Webhook channel, in the style
// of net/http/httptest, for tests and for `porthole sim`: the V1 and the
// legacy message endpoints, both history endpoints and the legacy
// asynchronous webview endpoint, strict about the contract of PROVIDERS.md
// (bearer check, required fields, the 32-character legacy sender rule,
// rate-limit headers), and a scripted bot that answers every accepted
// message asynchronously, one callback per bot message, with the verify
// token and up to 3 retries. Faults can be injected on both sides, with
// the Controls every emulator shares (see providertest): error answers,
// slowness, and dropped, duplicated, reordered or delayed callbacks.
package chatlayertest

import (
	"cmp"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/porthole-chat/porthole/server/provider/providertest"
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
	// BotID is the bot id of the legacy message URL, the history URLs and
	// webview bodies.
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
	// RetryDelay is the wait before the first callback retry; it doubles
	// for each next one. Zero means 50ms.
	RetryDelay time.Duration
	// ReorderGap spaces the callbacks of a reordered batch, so they reach
	// the proxy in reverse order. Zero means 20ms.
	ReorderGap time.Duration
	// SessionExpiry, when set, ends a user's session after that long
	// without an accepted message (Chatlayer's default is 30 days): the
	// next message starts a new session, whose messageCounter starts
	// again at 1 (Callback.Epoch numbers the sessions, from 0). Zero:
	// sessions never expire.
	SessionExpiry time.Duration
	// RateLimit is the number of requests accepted per one-minute window,
	// reported in x-ratelimit-* headers; more answer 429. Zero means 600.
	RateLimit int
	// OnAccept, when set, is called with each accepted message (intro,
	// text or postback) and webview call before the emulator answers:
	// a test can stop the proxy there, between Chatlayer's acceptance
	// and the proxy's record of it.
	OnAccept func(Request)
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

// Server is a running emulator. Its Controls inject faults and read
// the callbacks: on Chatlayer, FailNext applies to every API request
// before any other check; a callback is one bot message
// (Callback.Conversation is the user id, Callback.Epoch its session
// and Callback.Seq its messageCounter), so DropCallbacks, DuplicateCallbacks and
// DelayCallbacks count bot messages; ReorderCallbacks sends the replies
// to each of the next n user messages last first, ReorderGap apart (the
// messageCounter still numbers them in order).
type Server struct {
	providertest.Emulator

	opts Options
	kit  *providertest.Kit
	rate providertest.RateWindow
	log  *slog.Logger

	mu       sync.Mutex
	requests []Request
	accepted map[string]int
	counters map[string]uint64
	sessions map[string]*session
	queues   map[string]*queue
	history  map[string][]historyRow // each user's current session, oldest first
	dropAt   map[uint64]int          // DropNumbered: counters to drop, with how many more times
}

// DropNumbered drops the callbacks of the next n bot messages numbered
// counter, in any conversation: a loss in the middle of a conversation,
// wherever its burst is when the fault is set.
func (s *Server) DropNumbered(counter uint64, n int) {
	s.mu.Lock()
	s.dropAt[counter] += n
	s.mu.Unlock()
}

// session is a user's current Chatlayer session.
type session struct {
	n            uint64                     // sessions before this one
	last         time.Time                  // its last accepted message
	data         map[string]json.RawMessage // its session data
	dialogstates []string                   // dialog states webview calls triggered
}

// New returns an emulator that is not listening: serve Handler on a
// port of your choice (as `porthole sim` does) and Close it after.
func New(opts Options) *Server {
	opts.Token = cmp.Or(opts.Token, DefaultToken)
	opts.VerifyToken = cmp.Or(opts.VerifyToken, DefaultVerifyToken)
	opts.CallbackVerifyToken = cmp.Or(opts.CallbackVerifyToken, opts.VerifyToken)
	opts.ChannelID = cmp.Or(opts.ChannelID, DefaultChannelID)
	opts.BotID = cmp.Or(opts.BotID, DefaultBotID)
	opts.RouteField = cmp.Or(opts.RouteField, "senderId")
	opts.RetryDelay = providertest.PositiveOr(opts.RetryDelay, 50*time.Millisecond)
	opts.ReorderGap = providertest.PositiveOr(opts.ReorderGap, 20*time.Millisecond)
	opts.RateLimit = providertest.PositiveOr(opts.RateLimit, 600)
	opts.MediaBase = strings.TrimRight(opts.MediaBase, "/")
	s := &Server{
		opts: opts, log: opts.Log,
		rate:     providertest.RateWindow{Limit: opts.RateLimit, Window: time.Minute},
		accepted: map[string]int{}, counters: map[string]uint64{}, sessions: map[string]*session{}, queues: map[string]*queue{},
		history: map[string][]historyRow{}, dropAt: map[uint64]int{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.kit = providertest.NewKit(providertest.KitOptions{
		Client:  opts.Client,
		Retries: MaxRetries,
		// Chatlayer does not document its timing: doubling is assumed.
		RetryPause: func(retry int) time.Duration { return opts.RetryDelay << (retry - 1) },
	})
	s.kit.SetTarget(opts.Callback, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/channels/webhook/{channelId}/messages", s.api("v1", s.v1))
	mux.HandleFunc("POST /api/webhookMessage/{botId}", s.api("legacy", s.legacy))
	mux.HandleFunc("GET /api/bots/{botId}/history/{senderId}", s.api("legacy", s.legacyHistory))
	mux.HandleFunc("GET /v1/bots/{botId}/conversations/{sessionId}/messages", s.api("v1", s.v1History))
	mux.HandleFunc("POST /api/webview", s.api("legacy", s.webview))
	mux.HandleFunc("GET /assets/{name}", serveAsset)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, "no such endpoint")
	})
	s.Emulator = providertest.NewEmulator(s.kit, mux)
	return s
}

// NewServer starts an emulator on a loopback port, like
// httptest.NewServer. Close it when done.
func NewServer(opts Options) *Server {
	s := New(opts)
	s.Listen()
	return s
}

// SetCallback sets the proxy's webhook URL the bot replies to.
func (s *Server) SetCallback(url string) { s.kit.SetTarget(url, nil) }

// Requests returns every API request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Accepted returns how many messages were accepted for a user id
// (a V1 user.id or conversationId, or a legacy sender.id).
func (s *Server) Accepted(userID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted[userID]
}

// Produced returns how many bot messages were produced for a user id in
// its current session, which is also its last messageCounter.
func (s *Server) Produced(userID string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counters[userID]
}

// Sessions returns how many sessions a user id has had: 0 before its
// first message, then 1, and one more each time Options.SessionExpiry
// ended one.
func (s *Server) Sessions(userID string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if se := s.sessions[userID]; se != nil {
		return se.n + 1
	}
	return 0
}

// SessionExpiry returns Options.SessionExpiry.
func (s *Server) SessionExpiry() time.Duration { return s.opts.SessionExpiry }
