// Package chataibot is the provider for bots built on ChatAIBot
// (chataibot.io), through its "API as a channel": the visitor's first
// message starts an upstream conversation, later ones are posted to it,
// and the bot's replies come back by callback to ServeWebhook.
//
// What ChatAIBot documents is followed to the letter (see
// ../shared/PROVIDERS.md). What it does not document is assumed, and each
// assumption lives in one named place:
//
//   - the reply callback's shape, and bot messages in API answers:
//     reply.go (Callback, BotMessage, Normalize);
//   - a click on a button is sent as its title: visitorText;
//   - which visitor facts fill variables.system: systemVariables;
//   - a 404 on send means the upstream conversation is gone: Adapter.send;
//   - page context (Porthole.setContext and a single-page site's moves,
//     the session data keys page.url, page.title and page.<key>) reaches
//     the bot only in variables.conversation when the conversation
//     starts, as flat dotted keys: the API documents no way to change
//     variables later, so later moves are not seen (sessionObject).
package chataibot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
)

// AttrConversation is the Sink attribute holding ChatAIBot's id of our
// conversation. Its presence is what says "already started".
const AttrConversation = "chataibot.conversation"

// startWait bounds how long a callback for an unknown conversation waits
// for its route: the bot may answer the first message before the start
// call's answer has reached us and its link is stored, and with several
// processes the start call may be in flight on another one.
const startWait = 3 * time.Second

// resolvePoll is how often a callback waiting for its route asks the
// durable links again: a start in flight on another process stores its
// link right after its answer, so the wait usually ends within a poll.
// 50 ms is invisible next to the bot's own reply time, and a waiting
// callback costs at most startWait/resolvePoll (60) small store reads,
// only for the first replies of a conversation, which may overtake the
// start call's answer.
const resolvePoll = 50 * time.Millisecond

// Adapter talks to ChatAIBot for one bot. It implements provider.Provider
// and provider.Webhook.
type Adapter struct {
	cfg   Config
	bot   string
	sink  provider.Sink
	up    *provider.Upstream
	log   *slog.Logger
	links provider.Links // nil: callbacks are routed from memory only

	// startWait is how long a callback waits for its route (startWait;
	// shorter in tests).
	startWait time.Duration

	replies provider.ReplyWatch // the typing indicator: Sends in progress, and replies during them

	mu sync.Mutex
	// locks serialize Sends per conversation in this process, so two can
	// never both start it. Across processes sharing a store nothing here
	// is needed: the dispatcher sends a conversation's messages from one
	// process at a time, under its store lease, so one Send of a
	// conversation runs at a time in the whole deployment.
	locks map[string]*convLock
	// unsaved holds conversations started upstream whose id could not be
	// stored yet, so that the retry stores it instead of starting again.
	// It is in this process's memory only, like carried: should the
	// process die (or lose the conversation's lease) between the start
	// call and the save, the process that takes the conversation over
	// retries without knowing of the start, and starts a second upstream
	// conversation, repeating the first message once (with carried, it
	// sends the first message again to the saved one): the window Send
	// documents, the same as a restart.
	unsaved map[string]started
	// carried holds, by conversation, the key of a first message that
	// went with its start call although its Send failed, once a later
	// message stored the id: the first one's retry must not send it again.
	carried map[string]string
	// refs routes callbacks by ChatAIBot id: every conversation seen since
	// start without Links; only those not yet linked with one.
	refs     map[string]string
	starting int           // start calls in flight
	changed  chan struct{} // closed and replaced when refs or starting change
}

var (
	_ provider.Provider = (*Adapter)(nil)
	_ provider.Webhook  = (*Adapter)(nil)
)

type convLock struct {
	mu   sync.Mutex
	refs int
}

// started is a conversation started upstream but not yet recorded: its
// ChatAIBot id, and which visitor message started it.
type started struct {
	ref, msg string
}

// New returns the adapter of bot. It fails when cfg does not validate.
// up is the shared upstream client (nil: a default one); log nil means
// slog.Default(). links makes callback routing durable (ChatAIBot's
// callbacks name only its own conversation id); nil routes callbacks
// from memory, which is lost on restart until the visitor's next
// message.
func New(cfg Config, bot string, sink provider.Sink, up *provider.Upstream, log *slog.Logger, links provider.Links) (*Adapter, error) {
	if errs := cfg.Validate("chataibot"); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if sink == nil {
		return nil, errors.New("chataibot: New needs a sink")
	}
	if up == nil {
		up = &provider.Upstream{}
	}
	if log == nil {
		log = slog.Default()
	}
	a := &Adapter{
		cfg: cfg.withDefaults(), bot: bot, sink: sink, up: up, log: log,
		locks: map[string]*convLock{}, unsaved: map[string]started{}, carried: map[string]string{}, refs: map[string]string{},
		changed: make(chan struct{}), links: links, startWait: startWait,
	}
	return a, nil
}

// Send hands a visitor message to ChatAIBot. The first message of a
// conversation starts it upstream (ChatAIBot has no intro, so
// provider.Start sends nothing: the bot speaks once the visitor has);
// later ones are posted to it. Replies follow by callback.
//
// If the start call succeeded but its id could not be stored, Send
// returns an error and remembers the id in memory: the service's retry
// of the same message then stores it and sends nothing (the start call
// carried the message). Should a later message come first (the first one
// was shown as failed), it stores the id and goes to that conversation,
// and the first one's retry still sends nothing. Only a restart in
// between loses the id, and then the retry starts a second upstream
// conversation; so does a crash of this process, when the service's
// retry runs on another one that took over the conversation. The same
// happens when the start call's answer is lost on the network: ChatAIBot
// offers no idempotency key.
//
// Once ChatAIBot accepted a visitor message, the typing indicator shows
// until the first reply (reply_typing), unless a reply came during the
// call already (one in the API's answer, or a callback overtaking it).
func (a *Adapter) Send(ctx context.Context, m provider.Message) error {
	done := a.replies.Begin(m.Conversation)
	err := a.hand(ctx, m)
	replied := done()
	if err == nil && m.Kind != provider.Start && *a.cfg.ReplyTyping && !replied {
		a.sink.Typing(m.Conversation, true)
	}
	return err
}

// hand is Send without the typing indicator.
func (a *Adapter) hand(ctx context.Context, m provider.Message) error {
	switch m.Kind {
	case provider.Start:
		return nil
	case provider.Text, provider.Postback:
	default:
		return rejected(fmt.Errorf("chataibot: unknown message kind %q", m.Kind))
	}
	if m.Conversation == "" {
		return rejected(errors.New("chataibot: message without a conversation"))
	}
	text := visitorText(m)
	if strings.TrimSpace(text) == "" {
		return rejected(errors.New("chataibot: empty message"))
	}
	defer a.lock(m.Conversation)()

	ref, err := a.sink.Attr(ctx, m.Conversation, AttrConversation)
	if err != nil {
		return err
	}
	a.mu.Lock()
	s, unsaved := a.unsaved[m.Conversation]
	a.mu.Unlock()
	// A write that failed may still have landed (a Redis reply that timed
	// out): the id is stored, yet the start call carried its message all
	// the same, and saving again is harmless.
	if ref == "" || (unsaved && ref == s.ref) {
		if !unsaved {
			return a.start(ctx, m, text)
		}
		if err := a.save(ctx, m.Conversation, s.ref); err != nil {
			return err
		}
		if s.msg == messageKey(m) {
			return nil // the start call carried this very message
		}
		a.mu.Lock()
		a.carried[m.Conversation] = s.msg
		a.mu.Unlock()
		ref = s.ref
	} else {
		a.mu.Lock()
		first, ok := a.carried[m.Conversation]
		if ok && first == messageKey(m) {
			delete(a.carried, m.Conversation)
		}
		a.mu.Unlock()
		if ok && first == messageKey(m) {
			return nil // the start call carried it, before a later message stored the id
		}
		if a.links == nil {
			a.index(ref, m.Conversation) // rebuilds the routing after a restart
		}
	}
	return a.send(ctx, m, ref, text)
}

// start opens the upstream conversation with m, its first message.
func (a *Adapter) start(ctx context.Context, m provider.Message, text string) error {
	if m.Visitor.ID == "" {
		return rejected(errors.New("chataibot: message without a visitor id"))
	}
	req := startRequest{
		Channel: "API", Message: newText(text), BotKey: a.cfg.BotKey,
		From: startFrom{UserExternalID: m.Visitor.ID, Type: "VISITOR"},
	}
	vars := variables{System: systemVariables(m.Visitor), Contact: contactVariables(m.Contact), Conversation: sessionObject(m.Session)}
	if m.Session != nil && vars.Conversation == nil {
		a.log.Warn("chataibot: session data is not a JSON object; not sent", "bot", a.bot, "conversation", m.Conversation)
	}
	if len(vars.System) > 0 || len(vars.Contact) > 0 || vars.Conversation != nil {
		req.Variables = &vars
	}

	a.mu.Lock()
	a.starting++
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.starting--
		a.notifyLocked()
		a.mu.Unlock()
	}()

	const what = "POST /api/v1/conversations"
	resp, err := a.up.Do(ctx, provider.Request{Method: http.MethodPost, URL: a.cfg.BaseURL + "/api/v1/conversations", Header: a.auth(), JSON: req})
	if err != nil {
		return err
	}
	ans, err := a.parse(what, resp, true)
	if err != nil {
		return err
	}
	ref := ans.Conversation.ID
	if ref == "" {
		return &provider.Error{Reason: provider.ReasonRejected, Status: resp.Status, Err: errors.New(what + ": the answer has no conversation.id")}
	}
	a.mu.Lock()
	a.unsaved[m.Conversation] = started{ref: ref, msg: messageKey(m)}
	a.refs[ref] = m.Conversation
	a.notifyLocked()
	a.mu.Unlock()
	a.log.Debug("chataibot: conversation started", "bot", a.bot, "conversation", m.Conversation, "ref", ref)
	a.deliverAnswer(ctx, m.Conversation, ref, "start", ans)
	if err := a.save(ctx, m.Conversation, ref); err != nil {
		a.log.Warn("chataibot: conversation started but its id could not be stored; the retry stores it", "bot", a.bot, "conversation", m.Conversation, "err", err)
		return err
	}
	return nil
}

// send posts a later visitor message to the upstream conversation ref.
func (a *Adapter) send(ctx context.Context, m provider.Message, ref, text string) error {
	path := "/api/v1/conversation/" + url.PathEscape(ref) + "/messages"
	what := "POST " + path
	resp, err := a.up.Do(ctx, provider.Request{Method: http.MethodPost, URL: a.cfg.BaseURL + path, Header: a.auth(),
		JSON: sendRequest{Message: newText(text), User: sendUser{Type: "VISITOR"}}})
	if e := (*provider.Error)(nil); errors.As(err, &e) && e.Status == http.StatusNotFound {
		// ASSUMED: a 404 here means ChatAIBot no longer knows the
		// conversation (expired or deleted). Start a new one with this
		// message rather than failing every message from now on.
		a.log.Warn("chataibot: upstream conversation not found; starting a new one", "bot", a.bot, "conversation", m.Conversation, "ref", ref)
		if err := a.sink.SetAttr(ctx, m.Conversation, AttrConversation, ""); err != nil {
			return err
		}
		a.forget(ref)
		return a.start(ctx, m, text)
	}
	if err != nil {
		return err
	}
	ans, err := a.parse(what, resp, false)
	if err != nil {
		return err
	}
	id := ans.MessageID
	if id == "" {
		id = messageKey(m)
	}
	a.deliverAnswer(ctx, m.Conversation, ref, "reply/"+id, ans)
	return nil
}

// save records that conv is ref upstream: the link first, so that a
// stored id always has its route back.
func (a *Adapter) save(ctx context.Context, conv, ref string) error {
	if a.links != nil {
		if err := a.links.Link(ctx, ref, conv); err != nil {
			return err
		}
	}
	if err := a.sink.SetAttr(ctx, conv, AttrConversation, ref); err != nil {
		return err
	}
	a.mu.Lock()
	delete(a.unsaved, conv)
	if a.links != nil {
		delete(a.refs, ref)
	}
	a.mu.Unlock()
	return nil
}

// auth returns the headers that authenticate a call.
func (a *Adapter) auth() http.Header {
	return http.Header{"Authorization": {"Bearer " + a.cfg.Token.Reveal()}}
}

// deliverAnswer hands over bot messages found in an API answer. A failure
// is logged, not returned: the visitor's message was accepted, and
// failing would send it again.
func (a *Adapter) deliverAnswer(ctx context.Context, conv, ref, tag string, ans *apiAnswer) {
	var msgs []BotMessage
	for _, raw := range []json.RawMessage{ans.Messages, ans.Reply} {
		if len(raw) == 0 {
			continue
		}
		var list BotMessages
		if err := json.Unmarshal(raw, &list); err != nil {
			a.log.Warn("chataibot: unreadable bot messages in an API answer", "bot", a.bot, "conversation", conv, "err", err)
			continue
		}
		msgs = append(msgs, list...)
	}
	if len(msgs) == 0 {
		return
	}
	bodies, skipped := Normalize(msgs)
	if skipped > 0 {
		a.log.Warn("chataibot: bot messages skipped", "bot", a.bot, "conversation", conv, "skipped", skipped)
	}
	if len(bodies) == 0 {
		return
	}
	if err := a.sink.Deliver(context.WithoutCancel(ctx), conv, dedupKey(ref, tag), bodies...); err != nil {
		a.log.Error("chataibot: bot messages from an API answer lost", "bot", a.bot, "conversation", conv, "err", err)
		return
	}
	a.replies.Replied(conv)
}

// lock serializes Sends of one conversation; the returned func unlocks.
func (a *Adapter) lock(conv string) func() {
	a.mu.Lock()
	l := a.locks[conv]
	if l == nil {
		l = &convLock{}
		a.locks[conv] = l
	}
	l.refs++
	a.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		a.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(a.locks, conv)
		}
		a.mu.Unlock()
	}
}

// index routes callbacks for ref to conv from memory.
func (a *Adapter) index(ref, conv string) {
	a.mu.Lock()
	if a.refs[ref] != conv {
		a.refs[ref] = conv
		a.notifyLocked()
	}
	a.mu.Unlock()
}

// forget drops ref from the memory index.
func (a *Adapter) forget(ref string) {
	a.mu.Lock()
	delete(a.refs, ref)
	a.mu.Unlock()
}

// notifyLocked wakes callbacks waiting for a route; a.mu must be held.
func (a *Adapter) notifyLocked() {
	close(a.changed)
	a.changed = make(chan struct{})
}

// resolve finds our conversation for ChatAIBot's ref, or "" when there is
// none. The bot's first reply can overtake the start call's answer, so
// it waits up to startWait for the route to appear: with durable links,
// for any ref not known yet, asking them again every resolvePoll, since
// the start call may be in flight on another process that shares the
// store; without them, only while a start call is in flight here, the
// one place its route can appear. Callers authenticate the callback
// first: only the platform can make a handler wait.
func (a *Adapter) resolve(ctx context.Context, ref string) (string, error) {
	timer := time.NewTimer(a.startWait)
	defer timer.Stop()
	var poll <-chan time.Time
	if a.links != nil {
		t := time.NewTicker(resolvePoll)
		defer t.Stop()
		poll = t.C
	}
	for {
		a.mu.Lock()
		conv := a.refs[ref]
		waiting := a.starting > 0 || a.links != nil
		changed := a.changed
		a.mu.Unlock()
		if conv != "" {
			return conv, nil
		}
		if a.links != nil {
			conv, err := a.links.Resolve(ctx, ref)
			switch {
			case err == nil && conv != "":
				return conv, nil
			case err != nil && !errors.Is(err, provider.ErrUnknownConversation):
				return "", err
			}
		}
		if !waiting {
			return "", nil
		}
		select {
		case <-changed:
		case <-poll:
		case <-timer.C:
			return "", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}
