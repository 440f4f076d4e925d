// Package provider is the seam between the conversation service and a bot
// platform (Chatlayer, ChatAIBot, or the built-in scripted demo bot).
//
// The service hands a provider one visitor message at a time, in order
// per conversation, and retries when the provider says the failure is
// temporary. Replies never come back as return values: a provider
// delivers them later through its Sink, exactly as a platform's webhook
// callback would, so that the demo bot exercises the same asynchronous
// path as the real platforms.
package provider

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/porthole-chat/porthole/widget"
)

// Kind says what a visitor message is.
type Kind string

// The kinds of visitor messages.
const (
	// Start opens a conversation so the bot can greet first (Chatlayer's
	// introMessage). It carries no text.
	Start Kind = "start"
	// Text is a message the visitor typed.
	Text Kind = "text"
	// Postback is a click on a button or quick reply.
	Postback Kind = "postback"
	// Session is a change of the visitor's session data on its own, with
	// no message: sent only to providers that ask for it (SessionPusher).
	// Message.Session holds all of the session data.
	Session Kind = "session"
)

// SessionPusher is implemented by providers that take the visitor's
// session data at once, when the page sets it, rather than only with
// the visitor's next message (Chatlayer's asynchronous endpoint, when
// the bot's settings turn it on). The service then hands them a Session
// message after each change, in order with the conversation's messages.
type SessionPusher interface {
	PushesSession() bool
}

// Visitor is what the widget told the server about the visitor and the
// page at hello; providers pass parts of it upstream (ChatAIBot's
// variables.system, Chatlayer's preferredLanguage).
type Visitor struct {
	ID       string // stable visitor id (not the token)
	Locale   string // BCP 47, from the browser
	TZ       string // IANA time zone
	PageURL  string
	Referrer string
}

// Message is one visitor message on its way to the bot platform.
type Message struct {
	Bot          string
	Conversation string // our conversation id: 32 lowercase hex characters
	Seq          uint64 // transcript seq; 0 for Start
	ClientID     string // the widget's message id; stable across retries
	Kind         Kind
	Text         string // typed text, or the title of the clicked button
	Payload      string // postback payload, exactly as the bot sent it
	Visitor      Visitor
	// Session is the visitor's session data as a JSON object (from
	// Porthole.setSessionData), or nil.
	Session []byte
	// Contact is the host site's signed-in user (Porthole.login), verified
	// by the server, or nil.
	Contact *Contact
	// Again says the platform may have this message already: an earlier
	// attempt got no clear answer, or a process stopped between handing
	// it over and recording that. Neither platform takes an idempotency
	// key, so an adapter that can look (Chatlayer's history) checks
	// before sending it again.
	Again bool
}

// Reconciler is implemented by providers that can recover bot replies
// whose callbacks never arrived (Chatlayer, from its history). The
// service calls Reconcile after a restart for the conversations that
// were active shortly before, in the background; the provider bounds
// the calls it makes to the platform.
type Reconciler interface {
	Reconcile(ctx context.Context, conversation string) error
}

// Contact is a user the host site vouched for with its identity secret.
type Contact struct {
	User  string `json:"user"` // the site's own id of the user
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// Provider hands visitor messages to one bot platform.
type Provider interface {
	// Send hands m to the platform and returns once the platform accepted
	// it. Replies arrive later through the Sink. An error that is not an
	// *Error is treated as temporary (retried).
	Send(ctx context.Context, m Message) error
}

// Sink is how a provider gives replies back: the conversation service
// stores them, then notifies the visitor's sockets.
type Sink interface {
	// Deliver stores bot messages for a conversation, in order, and
	// pushes them to the visitor. key makes it idempotent: a callback
	// retried with the same key stores nothing twice. An empty key turns
	// deduplication off.
	Deliver(ctx context.Context, conversation, key string, bodies ...widget.Body) error
	// Typing shows or hides the bot's typing indicator. It is kept with
	// the conversation only as "typing since", bounded in time, so that
	// every instance sees it.
	Typing(conversation string, on bool)
	// Attr and SetAttr keep small per-conversation provider state
	// (upstream ids, a scripted bot's position) durably.
	Attr(ctx context.Context, conversation, key string) (string, error)
	SetAttr(ctx context.Context, conversation, key, value string) error
	// CompareAndSetAttr sets key to value only if its current value is
	// old ("" means absent) and reports whether it did: the read-modify-
	// write of provider state that stays right when several processes
	// share the store and a callback may land on any of them (Chatlayer's
	// counter only ever moves forward).
	CompareAndSetAttr(ctx context.Context, conversation, key, old, value string) (bool, error)
}

// ErrOtherBot is what a Sink scoped to one bot returns from Deliver,
// Attr and SetAttr for a conversation of another bot: a callback
// authenticated with one bot's secret must not write into another bot's
// conversations, so a webhook refuses it (403) instead of storing it or
// asking the platform to retry.
var ErrOtherBot = errors.New("the conversation belongs to another bot")

// ErrUnknownConversation is what a Sink and Links return (wrapped) for
// a conversation that does not exist, or a platform id never linked, so
// that an adapter can tell it from a store that is down without knowing
// the store.
var ErrUnknownConversation = errors.New("unknown conversation")

// ErrTimeout is what an upstream call that got no answer in time wraps
// (Upstream.Do), so that the metrics can tell a timeout from another
// network error; it is still ReasonUnavailable and temporary.
var ErrTimeout = errors.New("timeout")

// Failure reason codes, shown to the visitor in a failed status frame.
const (
	ReasonUnavailable = "upstream_unavailable" // network error, 5xx, timeout after all retries
	ReasonRateLimited = "upstream_rate_limited"
	ReasonRejected    = "upstream_rejected" // a 4xx other than 429: retrying cannot help
	ReasonAuth        = "upstream_auth"     // 401/403: the configured token is wrong
)

// Error is a failed upstream call, classified for the retry loop.
type Error struct {
	Reason    string        // one of the Reason constants
	Temporary bool          // worth retrying
	After     time.Duration // the platform asked to wait this long (Retry-After)
	Status    int           // HTTP status, 0 for a network error
	Err       error         // the cause; never contains a token
}

func (e *Error) Error() string {
	s := "upstream " + e.Reason
	if e.Status != 0 {
		s += " (HTTP " + strconv.Itoa(e.Status) + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Classify returns the reason code of err, whether retrying may help, and
// how long the platform asked to wait.
func Classify(err error) (reason string, temporary bool, after time.Duration) {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason, e.Temporary, e.After
	}
	return ReasonUnavailable, true, 0
}
