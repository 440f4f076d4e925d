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
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/web"
	"github.com/porthole-chat/porthole/widget"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys the service keeps per conversation.
const (
	attrVisitor = "visitor" // provider.Visitor as JSON, from the last hello
	attrSession = "session" // session data object as JSON
	attrRead    = "read"    // highest seq the visitor has seen
	attrContact = "contact" // provider.Contact as JSON, from a verified login
	// attrStart is set once the conversation's start (the greeting) was
	// handed upstream ("sent") or given up ("given up"); unset on a
	// conversation created less than RetryPolicy.greetFor ago, the start
	// is still due, also after a restart (recoverStarts).
	attrStart = "start"
)

// attrRetry is the attribute that keeps, as Unix milliseconds, when the
// background retries of message seq began: a message that failed
// visibly and is still retried stays Pending with its failure reason
// (so it stays on the outbox, and a restart or another process goes on
// retrying it), and this time keeps RetryPolicy.GiveUp counting from its
// first attempt across restarts.
func attrRetry(seq uint64) string { return fmt.Sprintf("retry.%d", seq) }

// Service is the conversation service, the only place that orders
// things: persist first, then notify, then hand upstream with retries.
// The WebSocket handler, the fallback pages and the provider webhooks all
// go through it. It implements provider.Sink for the providers' replies.
type Service struct {
	store store.Store
	bus   bus.Bus
	log   *slog.Logger
	retry RetryPolicy
	// providers holds each bot's provider, by bot id. The dispatcher
	// and the webhooks read it on every call and a reload replaces it
	// (SetProviders): a map is never changed once stored.
	providers atomic.Pointer[map[string]provider.Provider]

	sem    chan struct{} // bounds concurrent upstream calls
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// shared is set when several processes share the store's outbox
	// (Share); nil when this process is alone on it.
	shared *SharedDispatch
	// metrics counts what goes through; nil counts nothing.
	metrics *Metrics

	pmu    sync.Mutex // orders SetProviders
	mu     sync.Mutex
	queues map[string]*queue // conversations with work for upstream
	reads  map[string]uint64 // read markers not yet written, by conversation
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
		sem: make(chan struct{}, 256),
		ctx: ctx, cancel: cancel,
		queues: map[string]*queue{},
		reads:  map[string]uint64{},
	}
	s.providers.Store(&map[string]provider.Provider{})
	s.wg.Add(1)
	go s.flushReads(readFlush)
	return s
}

// SetProvider makes p answer bot.
func (s *Service) SetProvider(bot string, p provider.Provider) {
	s.SetProviders(map[string]provider.Provider{bot: p}, nil)
}

// SetProviders makes each provider of set answer its bot and drops the
// providers of the bots in drop, at once. A call in flight keeps the
// provider it started with; the caller closes a replaced one when such
// calls are done (Server.Reload).
func (s *Service) SetProviders(set map[string]provider.Provider, drop []string) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	next := maps.Clone(*s.providers.Load())
	for _, bot := range drop {
		delete(next, bot)
	}
	maps.Copy(next, set)
	s.providers.Store(&next)
}

// provider returns the provider of bot, nil for none.
func (s *Service) provider(bot string) provider.Provider { return (*s.providers.Load())[bot] }

// Hook returns the handler of bot's platform callbacks, or nil when its
// provider takes none.
func (s *Service) Hook(bot string) http.Handler {
	if h, ok := s.provider(bot).(provider.Webhook); ok {
		return http.HandlerFunc(h.ServeWebhook)
	}
	return nil
}

// Opening says which conversation Open finds or makes.
type Opening struct {
	Bot string
	// Key finds the conversation: a visitor id, or a signed-in user's
	// UserKey.
	Key string
	// Visitor is what the hello or the form says about the visitor, for
	// the provider's calls. It is recorded for a new conversation, and
	// for one a lookup (not Create) finds when it changed: a hello knows
	// more about the visitor than a form post of the chat pages, so a
	// form's Create does not overwrite it.
	Visitor provider.Visitor
	// Create makes the conversation when there is none, and with it the
	// platform's greeting. Without it, Open creates nothing and queues
	// nothing for the bot, so that a page view costs the bot platform
	// nothing.
	Create bool
	// Setup, with Create, runs on the conversation, new or found, before
	// the greeting is queued: the socket applies the session data and
	// login it held, so that the platform's first call already carries
	// them. Its outcome is its own business: the conversation exists
	// either way.
	Setup func(Conv)
}

// Open finds the conversation o names or, with o.Create, makes it;
// found is false when there is none (and o.Create was not set), created
// says whether this call made it. The store's Conversation is
// get-or-create, so two tabs that start at once share one conversation,
// and only the one that created it queues the bot's greeting (the seq-0
// item): a visitor is greeted once.
func (s *Service) Open(ctx context.Context, o Opening) (c Conv, found, created bool, err error) {
	var sc store.Conversation
	if o.Create {
		start := time.Now()
		sc, created, err = s.store.Conversation(ctx, o.Bot, o.Key)
		s.metrics.storeWrite(storeCreate, start)
	} else {
		sc, err = s.store.Find(ctx, o.Bot, o.Key)
		if errors.Is(err, store.ErrNotFound) {
			return Conv{}, false, false, nil
		}
	}
	if err != nil {
		return Conv{}, false, false, err
	}
	c = convOf(sc)
	if created || !o.Create {
		if err := s.recordVisitor(ctx, c.ID, o.Visitor, created); err != nil {
			if !created {
				return c, false, false, err
			}
			// It exists now and must get its greeting all the same; the
			// provider then knows the visitor by id alone.
			s.log.Warn("cannot record the visitor of a new conversation", "bot", o.Bot, "conversation", c.ID, "error", err)
		}
	}
	if o.Create && o.Setup != nil {
		o.Setup(c)
	}
	if created {
		s.metrics.conversationStarted(o.Bot)
		s.enqueue(c.ID, 0, false)
	}
	return c, true, created, nil
}

// recordVisitor stores what v says about the visitor of conv, for the
// provider's next call; unless fresh, only when it changed.
func (s *Service) recordVisitor(ctx context.Context, conv string, v provider.Visitor, fresh bool) error {
	info, _ := json.Marshal(v)
	if !fresh {
		if old, err := s.store.Attr(ctx, conv, attrVisitor); err != nil || old == string(info) {
			return err
		}
	}
	return s.store.SetAttr(ctx, conv, attrVisitor, string(info))
}

// Inbound is a visitor message entering the service.
type Inbound struct {
	// Bot is the conversation's bot, for the metrics.
	Bot      string
	ClientID string
	Text     string // typed text, or the clicked button's title
	Payload  string // postback payload; empty for typed text
}

// Post stores a visitor message, notifies the visitor's sockets and queues
// it for the bot. The returned entry is durable: its Seq goes in the
// ack. A repeated ClientID returns the stored message and sends nothing
// upstream again, except that a failed message is retried.
func (s *Service) Post(ctx context.Context, conv string, in Inbound) (Entry, error) {
	body := widget.Text(in.Text).AppendJSON(nil)
	start := time.Now()
	actx, span := traceAppend(ctx, conv)
	m, dup, err := s.store.Append(actx, store.Message{
		Conversation: conv, ClientID: in.ClientID, From: store.FromUser,
		Body: body, Payload: in.Payload, State: store.Pending,
	})
	s.metrics.storeWrite(storeAppend, start)
	endPost(ctx, span, m.Seq, dup, err)
	if err != nil {
		return Entry{}, err
	}
	if !dup {
		s.metrics.messageIn(in.Bot)
		s.publish(ctx, bus.Event{Conversation: conv, Seq: m.Seq})
		s.enqueue(conv, m.Seq, false, trace.SpanContextFromContext(ctx))
		return entryOf(m), nil
	}
	switch {
	case m.State == store.Failed, retrying(m): // the visitor pressed retry
		if m, err = s.store.SetState(ctx, conv, m.Seq, store.Pending, ""); err != nil {
			return Entry{}, err
		}
		s.enqueue(conv, m.Seq, true, trace.SpanContextFromContext(ctx))
	case m.State == store.Pending:
		s.enqueue(conv, m.Seq, false) // no-op when already queued
	}
	return entryOf(m), nil
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
// data, which providers send upstream with the next message, and at once
// to a provider that takes it (provider.SessionPusher). Identity
// keys (provider.ReservedKeys) are left out, since only a verified login
// may set them: the rest is applied and the error names what was left
// out, so that a developer who tries learns why. bot is the
// conversation's bot, which says whether its provider takes a push.
func (s *Service) SetSession(ctx context.Context, bot, conv string, data []byte) error {
	var add map[string]json.RawMessage
	if err := json.Unmarshal(data, &add); err != nil {
		return &widget.Error{Code: widget.CodeBadRequest, Field: "data", Message: "must be a JSON object"}
	}
	stripped := provider.StripReserved(add)
	if err := s.mergeSession(ctx, conv, add); err != nil {
		return err
	}
	if s.pushes(bot) {
		l, err := s.store.Load(ctx, conv, 0)
		if err != nil {
			return err
		}
		if err := s.queuePush(ctx, l.Conversation); err != nil {
			return err
		}
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
func (s *Service) Rebind(ctx context.Context, conv, key string) (c Conv, moved bool, err error) {
	sc, moved, err := s.store.Rebind(ctx, conv, key)
	return convOf(sc), moved, err
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
