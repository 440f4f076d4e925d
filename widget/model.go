// Package widget is what the browser widget and the server share: the
// porthole.v1 wire protocol, the neutral message model every provider
// translates to and from, and their validation.
//
// It is compiled into widget.wasm, so it stays free of fmt, encoding/json,
// net/http and reflection: each of those adds hundreds of kilobytes to
// the browser download. JSON is read and written by the small codec in
// json.go, whose output is identical to encoding/json's.
package widget

import (
	"strconv"
	"unicode/utf8"
)

// Limits of the neutral model. They bound what a visitor can send and
// what a bot reply may hold, so that a frame always fits MaxFrame.
const (
	MaxText         = 4000 // characters of a text message
	MaxTitle        = 256  // characters of a button, card or quick-reply title
	MaxPayload      = 4096 // bytes of an opaque postback payload
	MaxURL          = 2048 // bytes of a URL
	MaxButtons      = 11   // buttons of one message or card
	MaxQuickReplies = 13
	MaxCards        = 10
	MaxID           = 64   // bytes of a client message id
	MaxSessionData  = 4096 // bytes of a session frame's data object
	// MaxFrame is the largest frame the server reads; bigger ones close
	// the socket with 1009 (message too big).
	MaxFrame = 32 << 10
)

// Body kinds.
const (
	KindText     = "text"
	KindButtons  = "buttons"
	KindCarousel = "carousel"
	KindMedia    = "media"
)

// Button types.
const (
	ButtonPostback = "postback"
	ButtonURL      = "url"
	ButtonPhone    = "phone"
)

// Media types.
const (
	MediaImage = "image"
	MediaVideo = "video"
	MediaAudio = "audio"
	MediaFile  = "file"
)

// Body is the neutral content of one message. Text is plain text: no
// markup ever crosses the wire; the widget detects links itself.
type Body struct {
	Kind         string       `json:"kind"`
	Text         string       `json:"text,omitempty"`
	QuickReplies []QuickReply `json:"quick_replies,omitempty"`
	Buttons      []Button     `json:"buttons,omitempty"`
	Cards        []Card       `json:"cards,omitempty"`
	Media        string       `json:"media,omitempty"`
	URL          string       `json:"url,omitempty"`
	Alt          string       `json:"alt,omitempty"`
}

// QuickReply is a suggested answer shown under a message; a click sends
// Payload back to the bot as a postback.
type QuickReply struct {
	Title   string `json:"title"`
	Payload string `json:"payload"`
}

// Button is a postback, link or phone button.
type Button struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Payload string `json:"payload,omitempty"`
	URL     string `json:"url,omitempty"`
	Phone   string `json:"phone,omitempty"`
}

// Card is one element of a carousel.
type Card struct {
	Title    string   `json:"title"`
	Subtitle string   `json:"subtitle,omitempty"`
	Image    string   `json:"image,omitempty"`
	URL      string   `json:"url,omitempty"`
	Buttons  []Button `json:"buttons,omitempty"`
}

// Text returns a plain text body.
func Text(s string) Body { return Body{Kind: KindText, Text: s} }

// Summary returns a one-line plain-text rendering of b, for notifications,
// logs-free previews and text-only channels.
func (b Body) Summary() string {
	switch b.Kind {
	case KindCarousel:
		if len(b.Cards) > 0 {
			return b.Cards[0].Title
		}
	case KindMedia:
		if b.Alt != "" {
			return b.Alt
		}
		return b.Media
	}
	return b.Text
}

// Validate reports the first problem of b, naming the offending field
// with a JSON path such as "body.buttons[1].url".
func (b Body) Validate() error {
	switch b.Kind {
	case KindText:
		if TrimSpace(b.Text) == "" {
			return invalid("body.text", "is empty")
		}
		if err := checkText("body.text", b.Text, MaxText); err != nil {
			return err
		}
		if len(b.QuickReplies) > MaxQuickReplies {
			return invalid("body.quick_replies", "has more than "+strconv.Itoa(MaxQuickReplies)+" entries")
		}
		for i, q := range b.QuickReplies {
			p := "body.quick_replies[" + strconv.Itoa(i) + "]"
			if err := checkTitle(p+".title", q.Title); err != nil {
				return err
			}
			if err := checkPayload(p+".payload", q.Payload); err != nil {
				return err
			}
		}
	case KindButtons:
		if err := checkText("body.text", b.Text, MaxText); err != nil {
			return err
		}
		if len(b.Buttons) == 0 {
			return invalid("body.buttons", "is empty")
		}
		if err := checkButtons("body.buttons", b.Buttons); err != nil {
			return err
		}
	case KindCarousel:
		if len(b.Cards) == 0 {
			return invalid("body.cards", "is empty")
		}
		if len(b.Cards) > MaxCards {
			return invalid("body.cards", "has more than "+strconv.Itoa(MaxCards)+" cards")
		}
		for i, c := range b.Cards {
			p := "body.cards[" + strconv.Itoa(i) + "]"
			if err := checkTitle(p+".title", c.Title); err != nil {
				return err
			}
			if err := checkText(p+".subtitle", c.Subtitle, MaxText); err != nil {
				return err
			}
			if c.Image != "" {
				if err := CheckURL(p+".image", c.Image, false); err != nil {
					return err
				}
			}
			if c.URL != "" {
				if err := CheckURL(p+".url", c.URL, true); err != nil {
					return err
				}
			}
			if err := checkButtons(p+".buttons", c.Buttons); err != nil {
				return err
			}
		}
	case KindMedia:
		switch b.Media {
		case MediaImage, MediaVideo, MediaAudio, MediaFile:
		default:
			return invalid("body.media", "must be image, video, audio or file")
		}
		if err := CheckURL("body.url", b.URL, false); err != nil {
			return err
		}
		if err := checkText("body.alt", b.Alt, MaxTitle); err != nil {
			return err
		}
	case "":
		return invalid("body.kind", "is missing")
	default:
		return invalid("body.kind", "must be text, buttons, carousel or media")
	}
	return nil
}

func checkButtons(path string, bs []Button) error {
	if len(bs) > MaxButtons {
		return invalid(path, "has more than "+strconv.Itoa(MaxButtons)+" buttons")
	}
	for i, bt := range bs {
		p := path + "[" + strconv.Itoa(i) + "]"
		if err := checkTitle(p+".title", bt.Title); err != nil {
			return err
		}
		switch bt.Type {
		case ButtonPostback:
			if err := checkPayload(p+".payload", bt.Payload); err != nil {
				return err
			}
		case ButtonURL:
			if err := CheckURL(p+".url", bt.URL, true); err != nil {
				return err
			}
		case ButtonPhone:
			if !validPhone(bt.Phone) {
				return invalid(p+".phone", "must be a phone number such as +32 477 99 00 22")
			}
		default:
			return invalid(p+".type", "must be postback, url or phone")
		}
	}
	return nil
}

func checkTitle(path, s string) error {
	if TrimSpace(s) == "" {
		return invalid(path, "is empty")
	}
	return checkText(path, s, MaxTitle)
}

func checkPayload(path, s string) error {
	if s == "" {
		return invalid(path, "is empty")
	}
	if len(s) > MaxPayload {
		return invalid(path, "is longer than "+strconv.Itoa(MaxPayload)+" bytes")
	}
	return nil
}

// checkText bounds s to max characters of valid UTF-8.
func checkText(path, s string, max int) error {
	if !utf8.ValidString(s) {
		return invalid(path, "is not valid UTF-8")
	}
	if len(s) > max && utf8.RuneCountInString(s) > max {
		return invalid(path, "is longer than "+strconv.Itoa(max)+" characters")
	}
	return nil
}

// CheckURL accepts absolute http and https URLs, and mailto and tel too
// when link is set (a link the visitor clicks, as opposed to media the
// widget loads). Anything else, javascript: and data: in particular, is
// refused, so a bot reply can never smuggle script into the page.
func CheckURL(path, u string, link bool) error {
	if u == "" {
		return invalid(path, "is empty")
	}
	if len(u) > MaxURL {
		return invalid(path, "is longer than "+strconv.Itoa(MaxURL)+" bytes")
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= ' ' || c == 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' {
			return invalid(path, "contains a space, quote, angle bracket or control character")
		}
	}
	scheme, rest, ok := Cut(u, ":")
	if !ok {
		return invalid(path, "must be an absolute URL")
	}
	switch lowerASCII(scheme) {
	case "https", "http":
		if !HasPrefix(rest, "//") || len(rest) == 2 || rest[2] == '/' {
			return invalid(path, "must be an absolute URL with a host")
		}
		return nil
	case "mailto", "tel":
		if link && rest != "" {
			return nil
		}
	}
	if link {
		return invalid(path, "must use https, http, mailto or tel")
	}
	return invalid(path, "must use https or http")
}

func validPhone(s string) bool {
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' && i == 0, c == ' ', c == '-', c == '(', c == ')', c == '.':
		default:
			return false
		}
	}
	return digits >= 3 && len(s) <= 32
}

// Error codes of the error frame.
const (
	CodeBadRequest          = "bad_request"
	CodeUnauthorized        = "unauthorized"
	CodeForbiddenOrigin     = "forbidden_origin"
	CodeRateLimited         = "rate_limited"
	CodeTooLarge            = "too_large"
	CodeUpstreamUnavailable = "upstream_unavailable"
	CodeInternal            = "internal"
)

// Error is a protocol error: what goes into an error frame. Field names
// the offending field by its JSON path when there is one.
type Error struct {
	Code    string
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + " " + e.Message
}

func invalid(field, msg string) error {
	return &Error{Code: CodeBadRequest, Field: field, Message: msg}
}

// lowerASCII lower-cases ASCII letters only; URL schemes are ASCII, and
// strings.ToLower would link the Unicode case tables into widget.wasm.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
