package chatlayer

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/porthole-chat/porthole/widget"
)

// ErrNothingToShow is returned (wrapped) by Normalize when a message has
// no part the widget can display.
var ErrNothingToShow = errors.New("chatlayer: nothing displayable in the message")

// Normalize turns one Chatlayer bot message (the "message" of a
// callback, or of a history row) into neutral bodies, each of which
// passes widget.Body.Validate. It reads both documented shapes: the
// Messenger style ({text, quick_replies} or {attachment}) and the older
// API-plugin style ({type, config}); an array of messages is read as
// their sequence.
//
// Broken parts are dropped rather than failing the message: a button
// with a bad URL, a card without a title, an unknown attachment. Postback
// payloads are passed on exactly as the bot wrote them. An event message
// ({"type":"event"}) is not for display: it returns no bodies and no
// error. The error, wrapping ErrNothingToShow, comes only when nothing
// displayable is left.
func Normalize(msg json.RawMessage) ([]widget.Body, error) {
	msg = bytes.TrimSpace(msg)
	if isEvent(msg) {
		return nil, nil
	}
	var out []widget.Body
	switch {
	case len(msg) > 0 && msg[0] == '[':
		for _, m := range array(msg) {
			bodies, _ := Normalize(m)
			out = append(out, bodies...)
		}
	case len(msg) > 0 && msg[0] == '"':
		out = appendText(out, str(msg), nil)
	default:
		m := object(msg)
		if m == nil {
			return nil, errors.Join(ErrNothingToShow, errors.New("the message is not a JSON object"))
		}
		if _, plugin := m["config"]; plugin && str(m["type"]) != "" {
			out = pluginMessage(m)
		} else {
			out = messengerMessage(m)
		}
	}
	valid := out[:0]
	for _, b := range out {
		if b.Validate() == nil {
			valid = append(valid, b)
		}
	}
	if len(valid) == 0 {
		return nil, ErrNothingToShow
	}
	return valid, nil
}

// isEvent reports whether msg is an event ({"type":"event"}), which the
// bot sends for integrations, not for the visitor.
func isEvent(msg json.RawMessage) bool {
	return str(object(msg)["type"]) == "event"
}

// messengerMessage reads the Messenger-style shape.
func messengerMessage(m map[string]json.RawMessage) []widget.Body {
	var out []widget.Body
	text := str(m["text"])
	qrs := quickReplies(array(m["quick_replies"]))
	if strings.TrimSpace(text) != "" {
		out = appendText(out, text, qrs)
		qrs = nil
	}
	if att := object(m["attachment"]); att != nil {
		out = append(out, attachment(att)...)
	}
	if len(qrs) > 0 {
		// Quick replies without text: the neutral model hangs quick
		// replies on a text, so they become postback buttons instead.
		out = append(out, buttonsBody("", quickRepliesAsButtons(qrs)))
	}
	return out
}

// attachment reads a Messenger attachment: a template or a media file.
func attachment(att map[string]json.RawMessage) []widget.Body {
	payload := object(att["payload"])
	switch kind := str(att["type"]); kind {
	case "template":
		return template(payload)
	case widget.MediaImage, widget.MediaVideo, widget.MediaAudio, widget.MediaFile:
		return []widget.Body{media(kind, str(payload["url"]), firstNonEmpty(str(payload["title"]), str(payload["name"])))}
	}
	return nil
}

// template reads a Messenger template. A list template becomes a
// carousel, one card per element, followed by its buttons as a buttons
// body: the neutral model has no vertical list, and a carousel keeps
// every field of a list element (title, subtitle, image, link, buttons).
func template(p map[string]json.RawMessage) []widget.Body {
	switch str(p["template_type"]) {
	case "button":
		text := str(p["text"])
		if bs := buttons(array(p["buttons"])); len(bs) > 0 {
			return []widget.Body{buttonsBody(text, bs)}
		}
		return appendText(nil, text, nil)
	case "generic":
		return carousel(cards(array(p["elements"])))
	case "list":
		out := carousel(cards(array(p["elements"])))
		if bs := buttons(array(p["buttons"])); len(bs) > 0 {
			out = append(out, buttonsBody("", bs))
		}
		return out
	case "media":
		var out []widget.Body
		for _, e := range array(p["elements"]) {
			el := object(e)
			out = append(out, media(str(el["media_type"]), str(el["url"]), ""))
			if bs := buttons(array(el["buttons"])); len(bs) > 0 {
				out = append(out, buttonsBody("", bs))
			}
		}
		return out
	}
	return appendText(nil, str(p["text"]), nil)
}

// pluginMessage reads the older API-plugin shape {type, config}.
func pluginMessage(m map[string]json.RawMessage) []widget.Body {
	cfg := object(m["config"])
	texts := pluginTexts(cfg)
	switch str(m["type"]) {
	case "text":
		var out []widget.Body
		for _, t := range texts {
			out = appendText(out, t, nil)
		}
		return out
	case "buttons":
		text := strings.Join(texts, "\n")
		if bs := buttons(array(cfg["buttons"])); len(bs) > 0 {
			return []widget.Body{buttonsBody(text, bs)}
		}
		return appendText(nil, text, nil)
	case "quickReplies":
		qrs := quickReplies(array(firstPresent(cfg, "quickReplies", "quick_replies")))
		text := strings.Join(texts, "\n")
		if strings.TrimSpace(text) == "" {
			if len(qrs) == 0 {
				return nil
			}
			return []widget.Body{buttonsBody("", quickRepliesAsButtons(qrs))}
		}
		return appendText(nil, text, qrs)
	case "carousel", "list":
		return carousel(cards(array(cfg["elements"])))
	case "media":
		md := object(cfg["media"])
		if md == nil {
			md = cfg
		}
		return []widget.Body{media(str(md["type"]), str(md["url"]), firstNonEmpty(str(md["title"]), str(md["name"])))}
	}
	var out []widget.Body
	for _, t := range texts {
		out = appendText(out, t, nil)
	}
	return out
}

// pluginTexts returns the texts of an API-plugin config:
// config.textMessages[].text, or config.text.
func pluginTexts(cfg map[string]json.RawMessage) []string {
	var texts []string
	for _, t := range array(cfg["textMessages"]) {
		s := str(t) // a bare string is taken too
		if o := object(t); o != nil {
			s = str(o["text"])
		}
		if strings.TrimSpace(s) != "" {
			texts = append(texts, s)
		}
	}
	if len(texts) == 0 {
		if s := str(cfg["text"]); strings.TrimSpace(s) != "" {
			texts = append(texts, s)
		}
	}
	return texts
}

// appendText appends a text body, cut to the model's length limit, with
// its quick replies; blank text appends nothing.
func appendText(out []widget.Body, text string, qrs []widget.QuickReply) []widget.Body {
	if strings.TrimSpace(text) == "" {
		return out
	}
	if len(qrs) > widget.MaxQuickReplies {
		qrs = qrs[:widget.MaxQuickReplies]
	}
	return append(out, widget.Body{Kind: widget.KindText, Text: cut(text, widget.MaxText), QuickReplies: qrs})
}

// quickReplies reads Messenger quick replies, dropping the kinds that ask
// the platform for the visitor's phone, e-mail or location, and any that
// would not validate. A payload is kept exactly as written; one missing
// is the title, which is what a click on it says.
func quickReplies(raws []json.RawMessage) []widget.QuickReply {
	var qrs []widget.QuickReply
	for _, raw := range raws {
		q := object(raw)
		switch str(q["content_type"]) {
		case "", "text":
		default:
			continue
		}
		title := firstNonEmpty(str(q["title"]), str(q["caption"]))
		qr := widget.QuickReply{Title: title, Payload: payloadOf(q["payload"])}
		if qr.Payload == "" {
			qr.Payload = title
		}
		if (widget.Body{Kind: widget.KindText, Text: "x", QuickReplies: []widget.QuickReply{qr}}).Validate() == nil {
			qrs = append(qrs, qr)
		}
	}
	return qrs
}

// quickRepliesAsButtons turns quick replies into postback buttons.
func quickRepliesAsButtons(qrs []widget.QuickReply) []widget.Button {
	bs := make([]widget.Button, 0, len(qrs))
	for _, q := range qrs {
		bs = append(bs, widget.Button{Type: widget.ButtonPostback, Title: q.Title, Payload: q.Payload})
	}
	return bs
}

// buttons reads Messenger (and API-plugin) buttons, keeping those that
// validate: postback keeps its payload untouched, web_url becomes a link,
// phone_number a phone button; element_share and unknown kinds are
// dropped, having no meaning outside Messenger.
func buttons(raws []json.RawMessage) []widget.Button {
	var bs []widget.Button
	for _, raw := range raws {
		b := object(raw)
		title := str(b["title"])
		var bt widget.Button
		switch str(b["type"]) {
		case "postback":
			bt = widget.Button{Type: widget.ButtonPostback, Title: title, Payload: payloadOf(b["payload"])}
			if bt.Payload == "" {
				bt.Payload = title
			}
		case "web_url":
			bt = widget.Button{Type: widget.ButtonURL, Title: title, URL: strings.TrimSpace(str(b["url"]))}
		case "phone_number":
			phone := strings.TrimSpace(firstNonEmpty(str(b["payload"]), str(b["phone_number"])))
			bt = widget.Button{Type: widget.ButtonPhone, Title: title, Phone: strings.TrimPrefix(phone, "tel:")}
		default: // element_share, account_link, game_play, ...
			continue
		}
		if (widget.Body{Kind: widget.KindButtons, Buttons: []widget.Button{bt}}).Validate() == nil {
			bs = append(bs, bt)
		}
	}
	if len(bs) > widget.MaxButtons {
		bs = bs[:widget.MaxButtons]
	}
	return bs
}

func buttonsBody(text string, bs []widget.Button) widget.Body {
	return widget.Body{Kind: widget.KindButtons, Text: cut(text, widget.MaxText), Buttons: bs}
}

// cards reads carousel elements in both spellings: Messenger's
// title/subtitle/image_url/item_url/default_action and the API plugin's
// title/subTitle/imageUrl/webUrl. A bad image or link is left out of its
// card; a card without a title is dropped.
func cards(raws []json.RawMessage) []widget.Card {
	var cs []widget.Card
	for _, raw := range raws {
		e := object(raw)
		c := widget.Card{
			Title:    cut(strings.TrimSpace(str(e["title"])), widget.MaxTitle),
			Subtitle: cut(firstNonEmpty(str(e["subtitle"]), str(e["subTitle"])), widget.MaxText),
			Image:    strings.TrimSpace(firstNonEmpty(str(e["image_url"]), str(e["imageUrl"]))),
			URL: strings.TrimSpace(firstNonEmpty(str(e["item_url"]), str(object(e["default_action"])["url"]),
				str(e["webUrl"]), str(e["url"]))),
			Buttons: buttons(array(e["buttons"])),
		}
		if c.Image != "" && widget.CheckURL("image", c.Image, false) != nil {
			c.Image = ""
		}
		if c.URL != "" && widget.CheckURL("url", c.URL, true) != nil {
			c.URL = ""
		}
		if (widget.Body{Kind: widget.KindCarousel, Cards: []widget.Card{c}}).Validate() == nil {
			cs = append(cs, c)
		}
	}
	return cs
}

// carousel wraps cards in a body, keeping the first MaxCards.
func carousel(cs []widget.Card) []widget.Body {
	if len(cs) == 0 {
		return nil
	}
	if len(cs) > widget.MaxCards {
		cs = cs[:widget.MaxCards]
	}
	return []widget.Body{{Kind: widget.KindCarousel, Cards: cs}}
}

// media returns a media body; Normalize drops it if it does not validate
// (an unknown kind, or a URL that is not http(s)).
func media(kind, url, alt string) widget.Body {
	return widget.Body{Kind: widget.KindMedia, Media: kind, URL: strings.TrimSpace(url), Alt: cut(alt, widget.MaxTitle)}
}

// payloadOf returns a postback payload exactly as the bot wrote it: a
// JSON string's value, or the raw JSON of anything else (an object some
// bots put there unquoted).
func payloadOf(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// cut shortens s to at most max characters, marking the cut with "…".
func cut(s string, max int) string {
	if len(s) <= max || utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// object decodes a JSON object, or returns nil.
func object(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// array decodes a JSON array, or returns nil.
func array(raw json.RawMessage) []json.RawMessage {
	var a []json.RawMessage
	if json.Unmarshal(raw, &a) != nil {
		return nil
	}
	return a
}

// str reads a JSON string (or number) as text, and anything else as "".
func str(raw json.RawMessage) string { return scalar(raw) }

// firstPresent returns the first of keys present in m.
func firstPresent(m map[string]json.RawMessage, keys ...string) json.RawMessage {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	return nil
}
