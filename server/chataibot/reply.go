package chataibot

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/porthole-chat/porthole/widget"
)

// This file is the one seam for what ChatAIBot does not document: how the
// bot's replies reach an integrator. Everything about the reply shape,
// for callbacks and for bot messages found in API answers alike, is here.
// The emulator (chataibottest) writes the same assumed contract as
// literal JSON of its own, never these types, so that a change here that
// breaks the contract breaks a test.

// Callback is the body ChatAIBot is ASSUMED to POST to our webhook,
// /hooks/chataibot/{bot}, for each batch of bot messages. It mirrors the
// documented request shape: messages are {type, data}, as the visitor's
// own messages are, and the conversation is named by the id that the
// start call returned. Markdown for the README:
//
//	### Assumed reply webhook (ChatAIBot)
//
//	ChatAIBot does not document how bot replies reach an "API as a channel"
//	integration. Porthole expects them by HTTP POST to
//	`https://<porthole>/hooks/chataibot/<bot id>`, authenticated by the
//	bot's `webhook_secret`: `Authorization: Bearer <secret>` (default), or
//	the raw secret in the header named by `webhook_header` when
//	`webhook_auth: header`. A wrong or missing secret gets 401 and nothing
//	is stored. Body (JSON):
//
//	```json
//	{
//	  "conversation_id": "<the id returned by POST /api/v1/conversations>",
//	  "message_id": "<unique per reply batch: retries of the same batch repeat it>",
//	  "in_reply_to": "<optional: the visitor message_id being answered>",
//	  "messages": [
//	    {"type": "text", "data": {"body": "Hi! How can I help?",
//	      "quick_replies": [{"title": "Pricing", "payload": "pricing"}, "Support"]}},
//	    {"type": "buttons", "data": {"body": "Pick one", "buttons": [
//	      {"type": "postback", "title": "Plans", "payload": "plans"},
//	      {"type": "url", "title": "Docs", "url": "https://example.com/docs"},
//	      {"type": "phone", "title": "Call us", "phone": "+32 477 99 00 22"}]}},
//	    {"type": "carousel", "data": {"cards": [
//	      {"title": "Basic", "subtitle": "For one site", "image_url": "https://example.com/basic.png",
//	       "url": "https://example.com/basic", "buttons": [{"type": "postback", "title": "Choose", "payload": "basic"}]}]}},
//	    {"type": "image", "data": {"url": "https://example.com/a.png", "caption": "A diagram"}},
//	    {"type": "video", "data": {"url": "https://example.com/a.mp4"}},
//	    {"type": "audio", "data": {"url": "https://example.com/a.mp3"}},
//	    {"type": "file",  "data": {"url": "https://example.com/a.pdf", "name": "a.pdf"}}
//	  ]
//	}
//	```
//
//	- Porthole answers 200 `{"ok":true}` once the messages are stored; 401 for a
//	  bad secret; 400 for a body it cannot read (retrying will not help); 500
//	  when it could not store them (retry). A conversation it does not know
//	  gets 200 and is logged.
//	- A batch is stored once per `message_id`: retries are harmless. Without a
//	  `message_id`, a hash of the body is the key, so two byte-identical
//	  batches in one conversation are taken as one.
//	- Batches are shown in the order they arrive.
//	- Also accepted: `"conversation": {"id": ...}` for `conversation_id`;
//	  `"reply"` for `messages`, holding one message, an array, or a plain
//	  string; a quick reply as a plain string (title = payload); button types
//	  `web_url`/`link` for `url` and `phone_number`/`call` for `phone`; a
//	  postback button without `payload` sends its title. A message of
//	  another type that has a `data.body` is shown as text; anything else is
//	  skipped.
//	- The same `messages` (or `reply`) in the answer to the start or send
//	  call are shown too.
type Callback struct {
	ConversationID string          `json:"conversation_id,omitempty"`
	Conversation   *ConversationID `json:"conversation,omitempty"`
	MessageID      string          `json:"message_id,omitempty"`
	InReplyTo      string          `json:"in_reply_to,omitempty"`
	Messages       BotMessages     `json:"messages,omitempty"`
	Reply          BotMessages     `json:"reply,omitempty"`
}

// ConversationID is the {"id": ...} object ChatAIBot uses in its start
// answer, accepted in a callback too.
type ConversationID struct {
	ID string `json:"id"`
}

// Ref returns the ChatAIBot conversation id a callback is for.
func (c *Callback) Ref() string {
	if c.ConversationID != "" {
		return c.ConversationID
	}
	if c.Conversation != nil {
		return c.Conversation.ID
	}
	return ""
}

// All returns the callback's bot messages, from messages then reply.
func (c *Callback) All() []BotMessage {
	return append(append([]BotMessage(nil), c.Messages...), c.Reply...)
}

// BotMessage is one bot message: a type and its data, like the documented
// visitor message {"data": {"body": ...}, "type": "text"}.
type BotMessage struct {
	// Type is text, buttons, carousel, image, video, audio or file.
	Type string  `json:"type"`
	Data BotData `json:"data"`
}

// BotData is the content of a bot message; which fields count depends on
// the message type.
type BotData struct {
	Body         string      `json:"body,omitempty"`          // text; the text above buttons
	QuickReplies []Choice    `json:"quick_replies,omitempty"` // text
	Buttons      []BotButton `json:"buttons,omitempty"`       // buttons (and text: makes it buttons)
	Cards        []BotCard   `json:"cards,omitempty"`         // carousel
	URL          string      `json:"url,omitempty"`           // media
	Caption      string      `json:"caption,omitempty"`       // media: alternative text
	Name         string      `json:"name,omitempty"`          // file: its name, the alternative text when no caption
}

// Choice is a quick reply. A plain JSON string is accepted as a choice
// whose title is also its payload.
type Choice struct {
	Title   string `json:"title"`
	Payload string `json:"payload,omitempty"`
}

// UnmarshalJSON accepts {"title","payload"} or a plain string.
func (c *Choice) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '"' {
		c.Payload = ""
		return json.Unmarshal(b, &c.Title)
	}
	type plain Choice
	return json.Unmarshal(b, (*plain)(c))
}

// BotButton is a button: postback (sends its payload, or its title),
// url (opens URL) or phone (calls Phone).
type BotButton struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Payload string `json:"payload,omitempty"`
	URL     string `json:"url,omitempty"`
	Phone   string `json:"phone,omitempty"`
}

// BotCard is one card of a carousel.
type BotCard struct {
	Title    string      `json:"title"`
	Subtitle string      `json:"subtitle,omitempty"`
	ImageURL string      `json:"image_url,omitempty"`
	URL      string      `json:"url,omitempty"`
	Buttons  []BotButton `json:"buttons,omitempty"`
}

// BotMessages is a list of bot messages that also reads a single message
// object or a plain string (a text message), the forms a "reply" field
// might plausibly take.
type BotMessages []BotMessage

// UnmarshalJSON accepts an array of messages, one message, a string or
// null.
func (m *BotMessages) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*m = nil
		return nil
	case b[0] == '[':
		var list []BotMessage
		err := json.Unmarshal(b, &list)
		*m = list
		return err
	case b[0] == '{':
		var one BotMessage
		err := json.Unmarshal(b, &one)
		*m = BotMessages{one}
		return err
	case b[0] == '"':
		var s string
		err := json.Unmarshal(b, &s)
		*m = BotMessages{{Type: "text", Data: BotData{Body: s}}}
		return err
	}
	return errors.New("chataibot: bot messages must be an array, an object or a string")
}

// Normalize turns bot messages into neutral bodies that pass
// widget.Body.Validate. Lists too long for the widget are cut, a button
// or card that cannot be shown (no title, a javascript: URL) is left out,
// and a message that still does not validate falls back to its
// data.body as plain text (buttons none of which can be shown). It
// returns how many messages were skipped altogether (no text, media with
// an unsafe URL, an unknown type without a body).
func Normalize(msgs []BotMessage) (bodies []widget.Body, skipped int) {
	for _, m := range msgs {
		b := normalize(m)
		if b.Validate() != nil {
			b = widget.Text(clip(strings.TrimSpace(m.Data.Body), widget.MaxText))
		}
		if b.Validate() != nil {
			skipped++
			continue
		}
		bodies = append(bodies, b)
	}
	return bodies, skipped
}

// Media types that a message type names directly.
var mediaTypes = map[string]string{
	"image": widget.MediaImage, "video": widget.MediaVideo,
	"audio": widget.MediaAudio, "file": widget.MediaFile,
}

func normalize(m BotMessage) widget.Body {
	d := m.Data
	text := clip(strings.TrimSpace(d.Body), widget.MaxText)
	typ := strings.ToLower(strings.TrimSpace(m.Type))
	if media, ok := mediaTypes[typ]; ok {
		alt := d.Caption
		if alt == "" {
			alt = d.Name
		}
		return widget.Body{Kind: widget.KindMedia, Media: media, URL: d.URL, Alt: clip(strings.TrimSpace(alt), widget.MaxTitle)}
	}
	switch typ {
	case "carousel", "cards":
		var cards []widget.Card
		for _, c := range d.Cards {
			if card, ok := normalizeCard(c); ok && len(cards) < widget.MaxCards {
				cards = append(cards, card)
			}
		}
		return widget.Body{Kind: widget.KindCarousel, Cards: cards}
	case "buttons", "text", "quick_replies", "":
		if buttons := normalizeButtons(d.Buttons); len(buttons) > 0 {
			return widget.Body{Kind: widget.KindButtons, Text: text, Buttons: buttons}
		}
		var qrs []widget.QuickReply
		for _, c := range d.QuickReplies {
			q := widget.QuickReply{Title: clip(strings.TrimSpace(c.Title), widget.MaxTitle), Payload: c.Payload}
			if q.Payload == "" {
				q.Payload = q.Title
			}
			if len(qrs) < widget.MaxQuickReplies && (widget.Body{Kind: widget.KindText, Text: "x", QuickReplies: []widget.QuickReply{q}}).Validate() == nil {
				qrs = append(qrs, q)
			}
		}
		return widget.Body{Kind: widget.KindText, Text: text, QuickReplies: qrs}
	}
	return widget.Text(text) // an unknown type: its text, if any
}

// normalizeButtons maps buttons, leaving out those the widget cannot show.
func normalizeButtons(in []BotButton) []widget.Button {
	var out []widget.Button
	for _, b := range in {
		btn := widget.Button{Title: clip(strings.TrimSpace(b.Title), widget.MaxTitle)}
		switch strings.ToLower(b.Type) {
		case "url", "web_url", "link":
			btn.Type, btn.URL = widget.ButtonURL, b.URL
		case "phone", "phone_number", "call":
			btn.Type, btn.Phone = widget.ButtonPhone, b.Phone
			if btn.Phone == "" {
				btn.Phone = b.Payload // Messenger style: the number in payload
			}
		default: // postback, or a button that says nothing more
			btn.Type, btn.Payload = widget.ButtonPostback, b.Payload
			if btn.Payload == "" {
				btn.Payload = btn.Title
			}
		}
		if len(out) < widget.MaxButtons && (widget.Body{Kind: widget.KindButtons, Buttons: []widget.Button{btn}}).Validate() == nil {
			out = append(out, btn)
		}
	}
	return out
}

// normalizeCard maps a card, dropping an image or link that is not a
// safe URL rather than the whole card.
func normalizeCard(c BotCard) (widget.Card, bool) {
	card := widget.Card{
		Title:    clip(strings.TrimSpace(c.Title), widget.MaxTitle),
		Subtitle: clip(strings.TrimSpace(c.Subtitle), widget.MaxText),
		Buttons:  normalizeButtons(c.Buttons),
	}
	if widget.CheckURL("image", c.ImageURL, false) == nil {
		card.Image = c.ImageURL
	}
	if widget.CheckURL("url", c.URL, true) == nil {
		card.URL = c.URL
	}
	ok := (widget.Body{Kind: widget.KindCarousel, Cards: []widget.Card{card}}).Validate() == nil
	return card, ok
}

// clip cuts s to at most n characters, marking the cut with an ellipsis.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
