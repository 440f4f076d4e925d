package chataibot

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/porthole-chat/porthole/server/provider"
)

// visitorText is what goes upstream as message.data.body. ASSUMED for
// postbacks: ChatAIBot documents no postback, and its flows match typed
// text, so a click is sent as the button's title (its payload when it
// has no title).
func visitorText(m provider.Message) string {
	if m.Kind == provider.Postback && strings.TrimSpace(m.Text) == "" {
		return m.Payload
	}
	return m.Text
}

// messageKey names a visitor message across retries.
func messageKey(m provider.Message) string {
	if m.ClientID != "" {
		return m.ClientID
	}
	return "seq:" + strconv.FormatUint(m.Seq, 10)
}

func newText(s string) textMessage { return textMessage{Data: messageData{Body: s}, Type: "text"} }

// contactVariables fills variables.contact from the host site's signed-in
// user (Porthole.login). ChatAIBot documents no call to update variables
// later, so a login after the conversation started reaches it only in a
// new conversation.
func contactVariables(c *provider.Contact) map[string]string {
	if c == nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range map[string]string{"name": c.Name, "email": c.Email, "phone": c.Phone} {
		if v != "" {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// systemVariables fills variables.system from what the widget's hello
// said. ASSUMED: referrerUrl is the page the chat happens on (what
// ChatAIBot's own widget would report), else the page's referrer.
func systemVariables(v provider.Visitor) map[string]string {
	sys := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			sys[k] = v
		}
	}
	set("timezone", v.TZ)
	set("browserLanguage", v.Locale)
	if v.PageURL != "" {
		set("referrerUrl", v.PageURL)
	} else {
		set("referrerUrl", v.Referrer)
	}
	return sys
}

// sessionObject returns the session data when it is a non-empty JSON
// object, for variables.conversation, without identity keys: those go
// in variables.contact, from a verified login only (the service refuses
// them, but data stored before it did may hold some).
func sessionObject(b []byte) json.RawMessage {
	var obj map[string]json.RawMessage
	if len(b) == 0 || json.Unmarshal(b, &obj) != nil || len(obj) == 0 {
		return nil
	}
	if len(provider.StripReserved(obj)) == 0 {
		return json.RawMessage(b)
	}
	if len(obj) == 0 {
		return json.RawMessage("{}")
	}
	out, _ := json.Marshal(obj)
	return out
}

// apiAnswer is what the start and send calls answer; Messages and Reply
// are read by parseMessages, leniently.
type apiAnswer struct {
	OK           *bool           `json:"ok"`
	Error        json.RawMessage `json:"error"`
	Conversation ConversationID  `json:"conversation"`
	MessageID    string          `json:"message_id"`
	Messages     json.RawMessage `json:"messages"`
	Reply        json.RawMessage `json:"reply"`
}

// parse reads an API answer. "ok": false is an error whatever the status.
// An answer that is not JSON is an error when the caller needs its
// content (start), and is taken as a success otherwise: the 2xx said so.
func (a *Adapter) parse(what string, resp *provider.Response, need bool) (*apiAnswer, error) {
	var ans apiAnswer
	if err := json.Unmarshal(resp.Body, &ans); err != nil {
		if need {
			return nil, &provider.Error{Reason: provider.ReasonUnavailable, Temporary: true, Status: resp.Status, Err: errors.New(what + ": the answer is not JSON")}
		}
		a.log.Warn("chataibot: answer is not JSON; taken as accepted", "bot", a.bot, "call", what, "status", resp.Status)
		return &ans, nil
	}
	if ans.OK != nil && !*ans.OK {
		msg := what + " answered ok:false"
		if s := a.scrub(errorText(ans.Error)); s != "" {
			msg += ": " + s
		}
		return nil, &provider.Error{Reason: provider.ReasonRejected, Status: resp.Status, Err: errors.New(msg)}
	}
	return &ans, nil
}

// errorText reads "error" as a string or as an object with a message.
func errorText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.Message
	}
	return ""
}

// scrub makes upstream text safe for an error: no secret of ours, no
// control characters, bounded.
func (a *Adapter) scrub(s string) string {
	for _, secret := range []string{a.cfg.Token.Reveal(), a.cfg.WebhookSecret.Reveal()} {
		if len(secret) >= 6 { // a shorter one would mangle ordinary words
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return clip(strings.TrimSpace(s), 200)
}

func rejected(err error) error {
	return &provider.Error{Reason: provider.ReasonRejected, Err: err}
}

// The request bodies, exactly as documented.
type (
	textMessage struct {
		Data messageData `json:"data"`
		Type string      `json:"type"`
	}
	messageData struct {
		Body string `json:"body"`
	}
	startRequest struct {
		Channel   string      `json:"channel"`
		Message   textMessage `json:"message"`
		Variables *variables  `json:"variables,omitempty"`
		BotKey    string      `json:"bot_key"`
		From      startFrom   `json:"from"`
	}
	variables struct {
		System       map[string]string `json:"system,omitempty"`
		Contact      map[string]string `json:"contact,omitempty"` // from Porthole.login
		Conversation json.RawMessage   `json:"conversation,omitempty"`
	}
	startFrom struct {
		UserExternalID string `json:"user_external_id"`
		Type           string `json:"type"`
	}
	sendRequest struct {
		Message textMessage `json:"message"`
		User    sendUser    `json:"user"`
	}
	sendUser struct {
		Type string `json:"type"`
	}
)
