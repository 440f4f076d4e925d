// Package chatlayer connects Porthole to a Chatlayer bot through
// Chatlayer's Webhook channel: visitor messages go up by HTTP (the V1
// API, or the legacy webhookMessage endpoint), and the bot's replies come
// back asynchronously, one callback per bot message, to ServeWebhook.
//
// The contract followed is PROVIDERS.md ("Chatlayer"); what it leaves
// open is decided in assume.go. Normalize turns both documented message
// shapes into the neutral widget model. The chatlayertest package
// emulates Chatlayer for tests and `porthole sim`.
package chatlayer

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

	"golang.org/x/time/rate"

	"github.com/porthole-chat/porthole/server/provider"
)

// Adapter is one bot's connection to Chatlayer. It implements
// provider.Provider (Send) and provider.Webhook (ServeWebhook).
type Adapter struct {
	cfg  Config
	bot  string
	sink provider.Sink
	up   *provider.Upstream
	log  *slog.Logger
	base string

	ctx    context.Context // cancelled by Close: releases held callbacks
	cancel context.CancelFunc

	replies provider.ReplyWatch // the typing indicator: Sends in progress, and replies during them

	mu    sync.Mutex
	lanes map[string]*lane // conversations with callbacks in progress

	histLimit *rate.Limiter        // the bot's history calls (history_per_minute)
	histPause time.Time            // no history call before then (Chatlayer asked to wait); guarded by mu
	recent    map[string]time.Time // conversations by their last accepted message, for reconcileAfterOutage; guarded by mu
	downSince time.Time            // the first failed Send of an outage; zero when the last one went through; guarded by mu
	wg        sync.WaitGroup       // background reconciliations
}

var (
	_ provider.Provider = (*Adapter)(nil)
	_ provider.Webhook  = (*Adapter)(nil)
)

// New returns the adapter of bot, configured by cfg (defaults applied
// here too), replying through sink and calling Chatlayer through up. It
// fails when cfg does not validate.
func New(cfg Config, bot string, sink provider.Sink, up *provider.Upstream, log *slog.Logger) (*Adapter, error) {
	cfg.ApplyDefaults()
	if errs := cfg.Validate("chatlayer"); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if sink == nil {
		return nil, errors.New("chatlayer: a sink is required")
	}
	if up == nil {
		up = &provider.Upstream{}
	}
	if log == nil {
		log = slog.Default()
	}
	if !cfg.HistoryOn() && (cfg.History == nil || *cfg.History) {
		log.Warn("chatlayer: replies whose callbacks are lost cannot be recovered: set bot_id (and token in mode legacy) to read them from Chatlayer's history",
			"provider", "chatlayer", "bot", bot)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Adapter{
		cfg: cfg, bot: bot, sink: sink, up: up,
		log:  log.With("provider", "chatlayer", "bot", bot),
		base: cfg.Endpoint(),
		ctx:  ctx, cancel: cancel,
		lanes:     map[string]*lane{},
		histLimit: newHistoryLimit(cfg.HistoryPerMinute), recent: map[string]time.Time{},
	}, nil
}

// Close releases callbacks held for ordering (they answer 503, so
// Chatlayer retries them against the next server), makes later ones
// answer 503 too, and stops the background reconciliations.
func (a *Adapter) Close() error {
	a.cancel()
	a.wg.Wait()
	return nil
}

// Wire shapes of the V1 message endpoint.
type (
	v1Request struct {
		User        v1User          `json:"user"`
		Message     v1Message       `json:"message"`
		SessionData json.RawMessage `json:"sessionData,omitempty"`
	}
	v1User struct {
		ID                string `json:"id"`
		FirstName         string `json:"firstName,omitempty"`
		LastName          string `json:"lastName,omitempty"`
		PreferredLanguage string `json:"preferredLanguage,omitempty"`
	}
	v1Message struct {
		TextMessage     *textMessage     `json:"textMessage,omitempty"`
		PostbackMessage *postbackMessage `json:"postbackMessage,omitempty"`
		IntroMessage    *struct{}        `json:"introMessage,omitempty"`
	}
	textMessage struct {
		Text string `json:"text"`
	}
	postbackMessage struct {
		Title             string      `json:"title"`
		NextDialogstateID string      `json:"nextDialogstateId,omitempty"`
		SessionDataToSet  []sessionKV `json:"sessionDataToSet,omitempty"`
		Payload           string      `json:"payload,omitempty"`
	}
	sessionKV struct {
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
	}
)

// legacyRequest is the body of the legacy webhookMessage endpoint.
type legacyRequest struct {
	Text        string       `json:"text"`
	Sender      legacySender `json:"sender"`
	VerifyToken string       `json:"verifyToken"`
	Locale      string       `json:"locale,omitempty"`
}

type legacySender struct {
	ID string `json:"id"`
}

// Send hands m to Chatlayer and returns once Chatlayer accepted it; the
// replies come back through ServeWebhook. Errors are *provider.Error,
// classified by provider.Upstream; Send never retries by itself, since
// the conversation service does.
func (a *Adapter) Send(ctx context.Context, m provider.Message) error {
	// Our conversation id is the Chatlayer user id: callbacks route on it,
	// and mode legacy needs a sender id of at least 32 characters.
	if !isConversationID(m.Conversation) {
		return rejected("conversation id %q is not 32 lowercase hex characters", m.Conversation)
	}
	if m.Kind == provider.Session {
		return a.pushSession(ctx, m)
	}
	var req provider.Request
	switch a.cfg.Mode {
	case ModeLegacy:
		body := legacyRequest{
			Sender:      legacySender{ID: m.Conversation},
			VerifyToken: a.cfg.VerifyToken.Reveal(),
			Locale:      language(m.Visitor.Locale),
		}
		switch m.Kind {
		case provider.Start:
			return nil // assumption 5: no intro message in mode legacy
		case provider.Text:
			body.Text = m.Text
		case provider.Postback:
			// The payload goes back unchanged: a stringified JSON is how
			// the legacy endpoint takes a click.
			body.Text = m.Payload
			if body.Text == "" {
				body.Text = m.Text
			}
		default:
			return rejected("unknown message kind %q", m.Kind)
		}
		if len(body.Sender.ID) < 32 {
			return rejected("legacy sender ids need at least 32 characters")
		}
		req = provider.Request{Method: http.MethodPost, URL: a.base + "/api/webhookMessage/" + url.PathEscape(a.cfg.BotID), JSON: body}
	default:
		body := v1Request{User: v1User{ID: m.Conversation, PreferredLanguage: language(m.Visitor.Locale)}}
		if m.Contact != nil {
			body.User.FirstName, body.User.LastName = splitName(m.Contact.Name)
		}
		switch m.Kind {
		case provider.Start:
			if !*a.cfg.Greet {
				return nil
			}
			if m.Again && a.cfg.HistoryOn() && a.startedBefore(ctx, m.Conversation) {
				a.log.Info("chatlayer already has this conversation: its start is not sent again", "conversation", m.Conversation)
				return nil
			}
			body.Message.IntroMessage = &struct{}{}
		case provider.Text:
			body.Message.TextMessage = &textMessage{Text: m.Text}
		case provider.Postback:
			body.Message.PostbackMessage = v1Postback(m.Text, m.Payload)
		default:
			return rejected("unknown message kind %q", m.Kind)
		}
		body.SessionData = a.sessionData(m)
		req = provider.Request{
			Method: http.MethodPost,
			URL:    a.base + "/v1/channels/webhook/" + url.PathEscape(a.cfg.ChannelID) + "/messages",
			Header: http.Header{"Authorization": {"Bearer " + a.cfg.Token.Reveal()}},
			JSON:   body,
		}
	}

	done := a.replies.Begin(m.Conversation)
	_, err := a.up.Do(ctx, req) // assumption 1: a 2xx is acceptance; its body is ignored
	replied := done()
	a.sent(m.Conversation, err)
	if err != nil {
		return err
	}
	if *a.cfg.ReplyTyping && !replied {
		a.sink.Typing(m.Conversation, true)
	}
	return nil
}

// PushesSession reports whether the bot sends session data at once
// (session_dialogstate is set): the service then hands Send a
// provider.Session message after each change.
func (a *Adapter) PushesSession() bool {
	return a.cfg.SessionDialogstate != "" && a.cfg.BotID != "" && a.cfg.Token != ""
}

// Wire shape of the legacy asynchronous endpoint, POST /api/webview.
type (
	webviewRequest struct {
		BotID    string          `json:"botId"`
		SenderID string          `json:"senderId"`
		Session  *webviewSession `json:"session,omitempty"`
		Action   webviewAction   `json:"action"`
	}
	webviewSession struct {
		Data json.RawMessage `json:"data"`
	}
	webviewAction struct {
		NextDialogstate string `json:"nextDialogstate"`
	}
)

// pushSession saves the visitor's session data (with the signed-in
// user's contact, assumption 7) in Chatlayer through POST /api/webview,
// in both modes, without a visitor message. Chatlayer takes that call
// only with a message or a dialog state to go to, so it names the bot's
// session_dialogstate (assumption 13).
func (a *Adapter) pushSession(ctx context.Context, m provider.Message) error {
	if !a.PushesSession() {
		return rejected("session data pushed, but session_dialogstate is not set")
	}
	data := a.sessionData(m)
	if data == nil {
		data = json.RawMessage(`{}`)
	}
	_, err := a.up.Do(ctx, provider.Request{
		Method: http.MethodPost,
		URL:    a.base + "/api/webview?access_token=" + url.QueryEscape(a.cfg.Token.Reveal()), // assumption 11; Upstream's errors never show the query
		JSON: webviewRequest{
			BotID: a.cfg.BotID, SenderID: m.Conversation,
			Session: &webviewSession{Data: data},
			Action:  webviewAction{NextDialogstate: a.cfg.SessionDialogstate},
		},
	})
	return err
}

// sessionData returns the visitor's session data for V1's sessionData,
// with the signed-in user's contact added (assumption 7), or nil when
// there is none.
func (a *Adapter) sessionData(m provider.Message) json.RawMessage {
	obj := map[string]json.RawMessage{}
	if len(m.Session) > 0 {
		if err := json.Unmarshal(m.Session, &obj); err != nil {
			a.log.Warn("session data is not a JSON object; not sent", "conversation", m.Conversation)
			obj = map[string]json.RawMessage{}
		}
	}
	contactSessionData(obj, m.Contact)
	if len(obj) == 0 {
		return nil
	}
	out, _ := json.Marshal(obj)
	return out
}

// language returns the primary subtag of a BCP 47 tag ("en" for
// "en-GB"), or "" when there is none worth sending.
func language(tag string) string {
	primary, _, _ := strings.Cut(strings.ReplaceAll(tag, "_", "-"), "-")
	primary = strings.ToLower(strings.TrimSpace(primary))
	if len(primary) < 2 || len(primary) > 3 {
		return ""
	}
	for i := 0; i < len(primary); i++ {
		if c := primary[i]; c < 'a' || c > 'z' {
			return ""
		}
	}
	return primary
}

// rejected is a permanent failure found before calling Chatlayer.
func rejected(format string, args ...any) error {
	return &provider.Error{Reason: provider.ReasonRejected, Err: fmt.Errorf("chatlayer: "+format, args...)}
}
