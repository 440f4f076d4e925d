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
// markup ever crosses the wire; the widget detects links itself. Blocks,
// when set, is the same text formatted (a bot's Markdown, converted on
// the server): the widget and the chat page show Blocks, and Text stays
// the plain-text rendering for everything that shows text only
// (notifications, transcripts, an older widget).
type Body struct {
	Kind         string       `json:"kind"`
	Text         string       `json:"text,omitempty"`
	Blocks       []Block      `json:"blocks,omitempty"`
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
	_       noCompare
	Title   string `json:"title"`
	Payload string `json:"payload"`
}

// Button is a postback, link or phone button.
type Button struct {
	_       noCompare
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

// Block is one block of formatted text: exactly one of a paragraph of
// runs (P), a bulleted list (UL) or numbered list (OL, numbered from
// Start when that is not 1) whose items are blocks in turn, or a code
// block (Pre). It is structure, never markup: renderers build their own
// elements and put every text in as text.
type Block struct {
	P     []Run     `json:"p,omitempty"`
	UL    [][]Block `json:"ul,omitempty"`
	OL    [][]Block `json:"ol,omitempty"`
	Start int       `json:"start,omitempty"`
	Pre   string    `json:"pre,omitempty"`
}

// Run is a piece of a paragraph in one style: Style holds a letter per
// style, in the order b (bold), i (italic), s (struck through), c
// (code); URL, when set, makes the run a link (checked as CheckURL's
// links are). "\n" in Text is a line break.
type Run struct {
	_     noCompare
	Text  string `json:"text"`
	Style string `json:"style,omitempty"`
	URL   string `json:"url,omitempty"`
}

// Styles of a Run, the letters of Run.Style in their order.
const Styles = "bisc"

// Limits of formatted text: how deep lists nest, how many blocks and
// runs a body holds, and how large it may encode, so that a msg frame
// with it still fits MaxFrame.
const (
	MaxListDepth = 5
	MaxBlockRuns = 1000
	MaxBody      = MaxFrame - 1024
)

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
		if err := b.checkBlocks(); err != nil {
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
		if err := b.checkBlocks(); err != nil {
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
	if b.Blocks != nil && b.Kind != KindText && b.Kind != KindButtons {
		return invalid("body.blocks", "is only for text and buttons messages")
	}
	return nil
}

// checkBlocks validates Blocks: their shape, styles and links, how deep
// lists nest, how much they hold, and that the body still fits a frame.
func (b Body) checkBlocks() error {
	if b.Blocks == nil {
		return nil
	}
	if b.Text == "" {
		return invalid("body.text", "is empty; formatted text (body.blocks) needs its plain-text rendering in body.text")
	}
	c := blockCheck{}
	if err := c.blocks("body.blocks", b.Blocks, 0); err != nil {
		return err
	}
	if c.chars > MaxText {
		return invalid("body.blocks", "hold more than "+strconv.Itoa(MaxText)+" characters")
	}
	if n := len(b.AppendJSON(nil)); n > MaxBody {
		return invalid("body.blocks", "make the body "+strconv.Itoa(n)+" bytes, more than "+strconv.Itoa(MaxBody)+"; send the plain text alone")
	}
	return nil
}

// blockCheck counts what a body's blocks hold while it checks them.
type blockCheck struct{ runs, chars int }

func (c *blockCheck) blocks(path string, bs []Block, depth int) error {
	if len(bs) == 0 {
		return invalid(path, "is empty")
	}
	for i, bl := range bs {
		p := path + "[" + strconv.Itoa(i) + "]"
		if c.runs += 1 + len(bl.P); c.runs > MaxBlockRuns {
			return invalid(path, "hold more than "+strconv.Itoa(MaxBlockRuns)+" blocks and runs")
		}
		kinds := 0
		for _, set := range []bool{len(bl.P) > 0, len(bl.UL) > 0, len(bl.OL) > 0, bl.Pre != ""} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			return invalid(p, "must have exactly one of p, ul, ol and pre")
		}
		if bl.Start != 0 && (len(bl.OL) == 0 || bl.Start < 0 || bl.Start > 999999999) {
			return invalid(p+".start", "must be a number from 0 to 999999999, on an ol block only")
		}
		for j, r := range bl.P {
			rp := p + ".p[" + strconv.Itoa(j) + "]"
			if r.Text == "" {
				return invalid(rp+".text", "is empty")
			}
			if err := checkText(rp+".text", r.Text, MaxText); err != nil {
				return err
			}
			c.chars += utf8.RuneCountInString(r.Text)
			if !validStyle(r.Style) {
				return invalid(rp+".style", "must be letters of "+quote(Styles)+", each once, in that order")
			}
			if r.URL != "" {
				if err := CheckURL(rp+".url", r.URL, true); err != nil {
					return err
				}
			}
		}
		if bl.Pre != "" {
			if err := checkText(p+".pre", bl.Pre, MaxText); err != nil {
				return err
			}
			c.chars += utf8.RuneCountInString(bl.Pre)
		}
		for _, list := range []struct {
			key   string
			items [][]Block
		}{{".ul", bl.UL}, {".ol", bl.OL}} {
			if len(list.items) == 0 {
				continue
			}
			if depth >= MaxListDepth {
				return invalid(p+list.key, "nests lists more than "+strconv.Itoa(MaxListDepth)+" deep")
			}
			for j, item := range list.items {
				if err := c.blocks(p+list.key+"["+strconv.Itoa(j)+"]", item, depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// validStyle reports whether s is a subsequence of Styles.
func validStyle(s string) bool {
	i := 0
	for j := 0; j < len(s); j++ {
		k := IndexByte(Styles[i:], s[j])
		if k < 0 {
			return false
		}
		i += k + 1
	}
	return true
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
	_       noCompare
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
