package widget

import (
	"strconv"
)

// Protocol is the WebSocket subprotocol of this wire format.
const Protocol = "porthole.v1"

// Frame is one protocol message: one JSON object per WebSocket text frame,
// discriminated by its "type" member.
type Frame interface {
	// Type returns the frame's "type" member.
	Type() string
	// AppendJSON appends the frame's JSON encoding to b.
	AppendJSON(b []byte) []byte
}

// Encode returns the JSON encoding of f.
func Encode(f Frame) []byte { return f.AppendJSON(make([]byte, 0, 128)) }

// RawJSON is a JSON value kept as its encoding, such as the data of a
// session frame. Its MarshalJSON lets encoding/json embed it as is.
type RawJSON []byte

// MarshalJSON returns r itself, or null when empty.
func (r RawJSON) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return r, nil
}

// UnmarshalJSON keeps a copy of data.
func (r *RawJSON) UnmarshalJSON(data []byte) error {
	*r = append((*r)[:0], data...)
	return nil
}

// Client to server.

// Hello opens a session; it must be the first frame on a socket.
type Hello struct {
	Bot     string   `json:"bot"`
	Visitor string   `json:"visitor,omitempty"` // token from an earlier welcome
	After   uint64   `json:"after,omitempty"`   // replay messages with seq > After
	Locale  string   `json:"locale,omitempty"`
	TZ      string   `json:"tz,omitempty"`
	Page    Page     `json:"page"`
	Caps    []string `json:"caps,omitempty"`
	// Login is the page's latest Porthole.login (its ID empty), sent
	// with every hello: a signed-in user's conversation is found by the
	// user, never by the visitor token alone, so a widget that
	// reconnects shows it at once without a second round trip.
	Login *Login `json:"login,omitempty"`
}

// Page describes the host page the widget runs on.
type Page struct {
	URL      string `json:"url,omitempty"`
	Referrer string `json:"referrer,omitempty"`
	Title    string `json:"title,omitempty"`
}

// Send is a message the visitor typed.
type Send struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// Postback is a click on a postback button or quick reply: Title is what
// the visitor saw, Payload goes back to the bot exactly as it sent it.
type Postback struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Payload string `json:"payload"`
}

// Session sets session data for the bot (Porthole.setSessionData).
type Session struct {
	ID   string  `json:"id"`
	Data RawJSON `json:"data"`
}

// Login attaches the host site's signed-in user to the conversation
// (Porthole.login), so that the bot platform gets the contact. Signature
// is the hex HMAC-SHA256 of User under the bot's identity_secret,
// computed by the site's own backend: a page cannot claim a user it did
// not sign. An empty User logs out.
type Login struct {
	ID        string `json:"id"`
	User      string `json:"user"`
	Signature string `json:"signature,omitempty"`
	Name      string `json:"name,omitempty"`
	Email     string `json:"email,omitempty"`
	Phone     string `json:"phone,omitempty"`
}

// Start asks the server for the visitor's conversation. A hello never
// creates one, so that a page view costs the bot platform nothing: the
// widget sends start when the visitor shows intent (opens the panel, or
// has a message to send). The first start of a visitor creates the
// conversation and the platform's greeting, once; a later one, or one
// from another tab, finds it. The server answers with a new welcome that
// names the conversation, then the replay. ID names the start in an
// error frame: rate_limited with retry_ms means send it again then.
type Start struct {
	ID string `json:"id"`
}

// Read tells the server the visitor has seen messages up to Seq.
type Read struct {
	Seq uint64 `json:"seq"`
}

// Server to client.

// Welcome answers hello and start: the visitor token to keep, the
// conversation and its last seq, and the bot's configured look.
// Conversation is "" (and Last 0) while the visitor has none: a hello
// never creates one, a start (or the first send) does.
type Welcome struct {
	Visitor      string `json:"visitor"`
	Conversation string `json:"conversation"`
	Last         uint64 `json:"last"`
	Widget       Look   `json:"widget"`
}

// Look is the bot's configured appearance and texts; page options given
// to Porthole.init override it.
type Look struct {
	Title      string            `json:"title,omitempty"`
	Subtitle   string            `json:"subtitle,omitempty"`
	Icon       string            `json:"icon,omitempty"`
	Position   string            `json:"position,omitempty"`
	BrandColor string            `json:"brand_color,omitempty"`
	Greeting   string            `json:"greeting,omitempty"`
	Locale     string            `json:"locale,omitempty"`
	Texts      map[string]string `json:"texts,omitempty"`
}

// Msg is one transcript message.
type Msg struct {
	Seq      uint64 `json:"seq"`
	ID       string `json:"id"`
	ClientID string `json:"client_id,omitempty"`
	From     string `json:"from"`
	At       string `json:"at"` // RFC 3339 with milliseconds, UTC
	Body     Body   `json:"body"`
}

// Ack says the client message ID is durable on the server as Seq.
type Ack struct {
	ID  string `json:"id"`
	Seq uint64 `json:"seq"`
}

// Delivery states of a status frame.
const (
	StateDelivered = "delivered"
	StateFailed    = "failed"
)

// Status reports what the bot platform did with a user message.
type Status struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Error string `json:"error,omitempty"` // reason code when failed
}

// Typing shows or hides the bot's typing indicator.
type Typing struct {
	On bool `json:"on"`
}

// ErrorFrame reports a problem; the socket stays open unless the server
// closes it separately. ID names the client frame it concerns, if any.
// With RetryMS the frame was not stored (rate_limited, or internal when
// the store could not write it): the client sends it again, with the same
// id, after that many milliseconds.
type ErrorFrame struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	ID      string `json:"id,omitempty"`
	RetryMS int64  `json:"retry_ms,omitempty"`
}

// Frame types.
const (
	TypeHello    = "hello"
	TypeSend     = "send"
	TypePostback = "postback"
	TypeSession  = "session"
	TypeRead     = "read"
	TypeLogin    = "login"
	TypeStart    = "start"
	TypeWelcome  = "welcome"
	TypeMsg      = "msg"
	TypeAck      = "ack"
	TypeStatus   = "status"
	TypeTyping   = "typing"
	TypeError    = "error"
)

func (*Hello) Type() string      { return TypeHello }
func (*Send) Type() string       { return TypeSend }
func (*Postback) Type() string   { return TypePostback }
func (*Session) Type() string    { return TypeSession }
func (*Read) Type() string       { return TypeRead }
func (*Login) Type() string      { return TypeLogin }
func (*Start) Type() string      { return TypeStart }
func (*Welcome) Type() string    { return TypeWelcome }
func (*Msg) Type() string        { return TypeMsg }
func (*Ack) Type() string        { return TypeAck }
func (*Status) Type() string     { return TypeStatus }
func (*Typing) Type() string     { return TypeTyping }
func (*ErrorFrame) Type() string { return TypeError }

func frameStart(b []byte, typ string) jsonWriter {
	w := jsonWriter{b: b}
	w.open()
	w.str("type", typ, false)
	return w
}

func (f *Hello) AppendJSON(b []byte) []byte {
	w := frameStart(b, TypeHello)
	w.str("bot", f.Bot, false)
	w.str("visitor", f.Visitor, true)
	w.uint("after", f.After, true)
	w.str("locale", f.Locale, true)
	w.str("tz", f.TZ, true)
	w.key("page")
	w.open()
	w.str("url", f.Page.URL, true)
	w.str("referrer", f.Page.Referrer, true)
	w.str("title", f.Page.Title, true)
	w.close()
	w.strings("caps", f.Caps)
	if l := f.Login; l != nil {
		w.key("login")
		w.open()
		l.appendFields(&w)
		w.close()
	}
	w.close()
	return w.b
}

func (f *Send) AppendJSON(b []byte) []byte {
	w := frameStart(b, TypeSend)
	w.str("id", f.ID, false)
	w.str("text", f.Text, false)
	w.close()
	return w.b
}

func (f *Postback) AppendJSON(b []byte) []byte {
	w := frameStart(b, TypePostback)
	w.str("id", f.ID, false)
	w.str("title", f.Title, false)
	w.str("payload", f.Payload, false)
	w.close()
	return w.b
}

func (f *Session) AppendJSON(b []byte) []byte {
	w := frameStart(b, TypeSession)
	w.str("id", f.ID, false)
	w.key("data")
	if len(f.Data) == 0 {
		w.b = append(w.b, "null"...)
	} else {
		w.b = append(w.b, f.Data...)
	}
	w.close()
	return w.b
}

func (f *Login) AppendJSON(b []byte) []byte {
	w := frameStart(b, TypeLogin)
	w.str("id", f.ID, false)
	f.appendFields(&w)
	w.close()
	return w.b
}

// appendFields writes what a login says, for the frame and for a hello.
func (f *Login) appendFields(w *jsonWriter) {
	w.str("user", f.User, false)
	w.str("signature", f.Signature, true)
	w.str("name", f.Name, true)
	w.str("email", f.Email, true)
	w.str("phone", f.Phone, true)
}

func (f *Start) AppendJSON(b []byte) []byte {
	w := frameStart(b, TypeStart)
	w.str("id", f.ID, false)
	w.close()
	return w.b
}

func (f *Read) AppendJSON(b []byte) []byte {
	w := frameStart(b, TypeRead)
	w.uint("seq", f.Seq, false)
	w.close()
	return w.b
}

func (f *Welcome) AppendJSON(b []byte) []byte {
	w := frameStart(b, TypeWelcome)
	w.str("visitor", f.Visitor, false)
	w.str("conversation", f.Conversation, false)
	w.uint("last", f.Last, false)
	w.key("widget")
	f.Widget.appendJSON(&w)
	w.close()
	return w.b
}

func (l *Look) appendJSON(w *jsonWriter) {
	w.open()
	w.str("title", l.Title, true)
	w.str("subtitle", l.Subtitle, true)
	w.str("icon", l.Icon, true)
	w.str("position", l.Position, true)
	w.str("brand_color", l.BrandColor, true)
	w.str("greeting", l.Greeting, true)
	w.str("locale", l.Locale, true)
	if len(l.Texts) > 0 {
		keys := make([]string, 0, len(l.Texts))
		for k := range l.Texts {
			keys = append(keys, k)
		}
		sortStrings(keys) // encoding/json sorts map keys
		w.key("texts")
		w.open()
		for _, k := range keys {
			w.str(k, l.Texts[k], false)
		}
		w.close()
	}
	w.close()
}

func (f *Msg) AppendJSON(b []byte) []byte {
	w := frameStart(b, TypeMsg)
	w.uint("seq", f.Seq, false)
	w.str("id", f.ID, false)
	w.str("client_id", f.ClientID, true)
	w.str("from", f.From, false)
	w.str("at", f.At, false)
	w.key("body")
	w.b = f.Body.AppendJSON(w.b)
	w.close()
	return w.b
}

func (f *Ack) AppendJSON(b []byte) []byte {
	w := frameStart(b, TypeAck)
	w.str("id", f.ID, false)
	w.uint("seq", f.Seq, false)
	w.close()
	return w.b
}

func (f *Status) AppendJSON(b []byte) []byte {
	w := frameStart(b, TypeStatus)
	w.str("id", f.ID, false)
	w.str("state", f.State, false)
	w.str("error", f.Error, true)
	w.close()
	return w.b
}

func (f *Typing) AppendJSON(b []byte) []byte {
	w := frameStart(b, TypeTyping)
	w.bool("on", f.On, false)
	w.close()
	return w.b
}

func (f *ErrorFrame) AppendJSON(b []byte) []byte {
	w := frameStart(b, TypeError)
	w.str("code", f.Code, false)
	w.str("message", f.Message, false)
	w.str("id", f.ID, true)
	if f.RetryMS != 0 {
		w.key("retry_ms")
		w.b = strconv.AppendInt(w.b, f.RetryMS, 10)
	}
	w.close()
	return w.b
}

// AppendJSON appends the JSON encoding of the body.
func (bd Body) AppendJSON(b []byte) []byte {
	w := jsonWriter{b: b}
	w.open()
	w.str("kind", bd.Kind, false)
	w.str("text", bd.Text, true)
	w.list("quick_replies", len(bd.QuickReplies), func(i int) {
		q := bd.QuickReplies[i]
		w.open()
		w.str("title", q.Title, false)
		w.str("payload", q.Payload, false)
		w.close()
	})
	appendButtons(&w, bd.Buttons)
	w.list("cards", len(bd.Cards), func(i int) {
		c := bd.Cards[i]
		w.open()
		w.str("title", c.Title, false)
		w.str("subtitle", c.Subtitle, true)
		w.str("image", c.Image, true)
		w.str("url", c.URL, true)
		appendButtons(&w, c.Buttons)
		w.close()
	})
	w.str("media", bd.Media, true)
	w.str("url", bd.URL, true)
	w.str("alt", bd.Alt, true)
	w.close()
	return w.b
}

func appendButtons(w *jsonWriter, bs []Button) {
	w.list("buttons", len(bs), func(i int) {
		bt := bs[i]
		w.open()
		w.str("type", bt.Type, false)
		w.str("title", bt.Title, false)
		w.str("payload", bt.Payload, true)
		w.str("url", bt.URL, true)
		w.str("phone", bt.Phone, true)
		w.close()
	})
}

// sortStrings is an insertion sort: the lists are a few dozen keys and
// the sort package would cost more in widget.wasm than it saves.
func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Decoding.

// Decode parses one frame of any type and validates it. The error is an
// *Error whose Code and Field say what is wrong, ready for an error frame.
func Decode(data []byte) (Frame, error) {
	if len(data) > MaxFrame {
		return nil, &Error{Code: CodeTooLarge, Message: "frame is larger than " + strconv.Itoa(MaxFrame) + " bytes"}
	}
	v, err := ParseJSON(data)
	if err != nil {
		return nil, err
	}
	if v.Kind != JSONObject {
		return nil, invalid("", "frame must be a JSON object")
	}
	r := reader{v: v}
	typ := r.str("type")
	if r.err != nil {
		return nil, r.err
	}
	var f interface {
		Frame
		read(*reader)
		Validate() error
	}
	switch typ {
	case TypeHello:
		f = new(Hello)
	case TypeSend:
		f = new(Send)
	case TypePostback:
		f = new(Postback)
	case TypeSession:
		f = new(Session)
	case TypeRead:
		f = new(Read)
	case TypeLogin:
		f = new(Login)
	case TypeStart:
		f = new(Start)
	case TypeWelcome:
		f = new(Welcome)
	case TypeMsg:
		f = new(Msg)
	case TypeAck:
		f = new(Ack)
	case TypeStatus:
		f = new(Status)
	case TypeTyping:
		f = new(Typing)
	case TypeError:
		f = new(ErrorFrame)
	case "":
		return nil, invalid("type", "is missing")
	default:
		return nil, invalid("type", "is not a known frame type: "+quote(typ))
	}
	f.read(&r)
	if r.err != nil {
		return nil, r.err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// DecodeBody parses and validates a body encoded by Body.AppendJSON.
func DecodeBody(data []byte) (Body, error) {
	v, err := ParseJSON(data)
	if err != nil {
		return Body{}, err
	}
	r := reader{v: v, path: "body"}
	b := r.body()
	if r.err != nil {
		return Body{}, r.err
	}
	return b, b.Validate()
}

// reader pulls typed members out of a parsed object and keeps the first
// type error, naming the member by its path.
type reader struct {
	v    JSONValue
	path string
	err  error
}

func (r *reader) field(key string) string {
	if r.path == "" {
		return key
	}
	return r.path + "." + key
}

func (r *reader) get(key string, kind JSONKind, want string) (JSONValue, bool) {
	v, ok := r.v.Get(key)
	if !ok || v.Kind == JSONNull || r.err != nil {
		return v, false
	}
	if v.Kind != kind {
		r.err = invalid(r.field(key), "must be "+want)
		return v, false
	}
	return v, true
}

func (r *reader) str(key string) string {
	v, _ := r.get(key, JSONString, "a string")
	return v.Str
}

func (r *reader) uint(key string) uint64 {
	v, ok := r.get(key, JSONNumber, "a number")
	if !ok {
		return 0
	}
	n, ok := parseUint(v.Str)
	if !ok {
		r.err = invalid(r.field(key), "must be a whole number of at least 0")
	}
	return n
}

func (r *reader) int(key string) int64 {
	v, ok := r.get(key, JSONNumber, "a number")
	if !ok {
		return 0
	}
	digits, neg := v.Str, HasPrefix(v.Str, "-")
	if neg {
		digits = digits[1:]
	}
	u, ok := parseUint(digits)
	n := int64(u)
	if neg {
		n = -n
	}
	if !ok || u > 1<<63-1 {
		r.err = invalid(r.field(key), "must be a whole number")
	}
	return n
}

func (r *reader) bool(key string) bool {
	v, _ := r.get(key, JSONBool, "true or false")
	return v.Bool
}

func (r *reader) object(key string) reader {
	v, _ := r.get(key, JSONObject, "an object")
	return reader{v: v, path: r.field(key), err: r.err}
}

// each calls fn with a reader for every object of the array member key.
func (r *reader) each(key string, fn func(item *reader)) {
	v, ok := r.get(key, JSONArray, "an array")
	if !ok {
		return
	}
	for i, item := range v.Items {
		path := r.field(key) + "[" + strconv.Itoa(i) + "]"
		if item.Kind != JSONObject {
			r.err = invalid(path, "must be an object")
			return
		}
		sub := reader{v: item, path: path}
		fn(&sub)
		if sub.err != nil {
			r.err = sub.err
			return
		}
	}
}

func (r *reader) strings(key string) []string {
	v, ok := r.get(key, JSONArray, "an array of strings")
	if !ok {
		return nil
	}
	out := make([]string, 0, len(v.Items))
	for _, item := range v.Items {
		if item.Kind != JSONString {
			r.err = invalid(r.field(key), "must be an array of strings")
			return nil
		}
		out = append(out, item.Str)
	}
	return out
}

func (r *reader) body() Body {
	b := Body{
		Kind:  r.str("kind"),
		Text:  r.str("text"),
		Media: r.str("media"),
		URL:   r.str("url"),
		Alt:   r.str("alt"),
	}
	r.each("quick_replies", func(q *reader) {
		b.QuickReplies = append(b.QuickReplies, QuickReply{Title: q.str("title"), Payload: q.str("payload")})
	})
	b.Buttons = r.buttons()
	r.each("cards", func(c *reader) {
		b.Cards = append(b.Cards, Card{
			Title:    c.str("title"),
			Subtitle: c.str("subtitle"),
			Image:    c.str("image"),
			URL:      c.str("url"),
			Buttons:  c.buttons(),
		})
	})
	return b
}

func (r *reader) buttons() []Button {
	var out []Button
	r.each("buttons", func(bt *reader) {
		out = append(out, Button{
			Type:    bt.str("type"),
			Title:   bt.str("title"),
			Payload: bt.str("payload"),
			URL:     bt.str("url"),
			Phone:   bt.str("phone"),
		})
	})
	return out
}

func (f *Hello) read(r *reader) {
	f.Bot = r.str("bot")
	f.Visitor = r.str("visitor")
	f.After = r.uint("after")
	f.Locale = r.str("locale")
	f.TZ = r.str("tz")
	p := r.object("page")
	f.Page = Page{URL: p.str("url"), Referrer: p.str("referrer"), Title: p.str("title")}
	if p.err != nil {
		r.err = p.err
	}
	f.Caps = r.strings("caps")
	if _, ok := r.v.Get("login"); ok {
		l := r.object("login")
		f.Login = new(Login)
		f.Login.read(&l)
		if l.err != nil && r.err == nil {
			r.err = l.err
		}
	}
}

func (f *Send) read(r *reader) {
	f.ID = r.str("id")
	f.Text = r.str("text")
}

func (f *Postback) read(r *reader) {
	f.ID = r.str("id")
	f.Title = r.str("title")
	f.Payload = r.str("payload")
}

func (f *Session) read(r *reader) {
	f.ID = r.str("id")
	v, ok := r.get("data", JSONObject, "an object")
	if ok {
		f.Data = AppendJSONValue(nil, v)
	}
}

func (f *Start) read(r *reader) { f.ID = r.str("id") }

func (f *Read) read(r *reader) { f.Seq = r.uint("seq") }

func (f *Login) read(r *reader) {
	f.ID = r.str("id")
	f.User = r.str("user")
	f.Signature = r.str("signature")
	f.Name = r.str("name")
	f.Email = r.str("email")
	f.Phone = r.str("phone")
}

func (f *Welcome) read(r *reader) {
	f.Visitor = r.str("visitor")
	f.Conversation = r.str("conversation")
	f.Last = r.uint("last")
	w := r.object("widget")
	f.Widget = Look{
		Title:      w.str("title"),
		Subtitle:   w.str("subtitle"),
		Icon:       w.str("icon"),
		Position:   w.str("position"),
		BrandColor: w.str("brand_color"),
		Greeting:   w.str("greeting"),
		Locale:     w.str("locale"),
	}
	if t, ok := w.get("texts", JSONObject, "an object"); ok {
		f.Widget.Texts = make(map[string]string, len(t.Fields))
		for _, kv := range t.Fields {
			if kv.Value.Kind == JSONString {
				f.Widget.Texts[kv.Key] = kv.Value.Str
			}
		}
	}
	if w.err != nil {
		r.err = w.err
	}
}

func (f *Msg) read(r *reader) {
	f.Seq = r.uint("seq")
	f.ID = r.str("id")
	f.ClientID = r.str("client_id")
	f.From = r.str("from")
	f.At = r.str("at")
	b := r.object("body")
	f.Body = b.body()
	if b.err != nil {
		r.err = b.err
	}
}

func (f *Ack) read(r *reader) {
	f.ID = r.str("id")
	f.Seq = r.uint("seq")
}

func (f *Status) read(r *reader) {
	f.ID = r.str("id")
	f.State = r.str("state")
	f.Error = r.str("error")
}

func (f *Typing) read(r *reader) { f.On = r.bool("on") }

func (f *ErrorFrame) read(r *reader) {
	f.Code = r.str("code")
	f.Message = r.str("message")
	f.ID = r.str("id")
	f.RetryMS = r.int("retry_ms")
}

// Validation of frames.

// Validate checks a hello frame.
func (f *Hello) Validate() error {
	if err := CheckBotID("bot", f.Bot); err != nil {
		return err
	}
	if len(f.Visitor) > 1024 {
		return invalid("visitor", "is longer than 1024 bytes")
	}
	if len(f.Locale) > 35 || len(f.TZ) > 64 {
		return invalid("locale", "or tz is too long")
	}
	if len(f.Page.URL) > MaxURL || len(f.Page.Referrer) > MaxURL {
		return invalid("page.url", "or page.referrer is longer than "+strconv.Itoa(MaxURL)+" bytes")
	}
	if err := checkText("page.title", f.Page.Title, MaxTitle); err != nil {
		return err
	}
	if len(f.Caps) > 16 {
		return invalid("caps", "has more than 16 entries")
	}
	if f.Login != nil {
		if f.Login.User == "" {
			return invalid("login.user", "is empty; leave login out for a visitor who is not signed in")
		}
		l := *f.Login
		l.ID = "hello"
		if err := l.Validate(); err != nil {
			if we, ok := err.(*Error); ok {
				we.Field = "login." + we.Field
			}
			return err
		}
	}
	return nil
}

// Validate checks a send frame.
func (f *Send) Validate() error {
	if err := CheckClientID("id", f.ID); err != nil {
		return err
	}
	if TrimSpace(f.Text) == "" {
		return invalid("text", "is empty")
	}
	return checkText("text", f.Text, MaxText)
}

// Validate checks a postback frame.
func (f *Postback) Validate() error {
	if err := CheckClientID("id", f.ID); err != nil {
		return err
	}
	if err := checkTitle("title", f.Title); err != nil {
		return err
	}
	return checkPayload("payload", f.Payload)
}

// Validate checks a session frame.
func (f *Session) Validate() error {
	if err := CheckClientID("id", f.ID); err != nil {
		return err
	}
	if len(f.Data) == 0 {
		return invalid("data", "must be an object")
	}
	if len(f.Data) > MaxSessionData {
		return invalid("data", "is larger than "+strconv.Itoa(MaxSessionData)+" bytes")
	}
	return nil
}

// Validate checks a login frame: a signature of 64 hex digits for a
// user, none for a logout.
func (f *Login) Validate() error {
	if err := CheckClientID("id", f.ID); err != nil {
		return err
	}
	if len(f.User) > MaxTitle {
		return invalid("user", "is longer than "+strconv.Itoa(MaxTitle)+" bytes")
	}
	if f.User == "" {
		if f.Signature != "" {
			return invalid("signature", "must be empty for a logout")
		}
		return nil
	}
	if len(f.Signature) != 64 || !hexDigits64(f.Signature) {
		return invalid("signature", "must be the 64 hex digits of HMAC-SHA256(identity_secret, user)")
	}
	if err := checkText("name", f.Name, MaxTitle); err != nil {
		return err
	}
	if len(f.Email) > MaxTitle || f.Email != "" && IndexByte(f.Email, '@') < 1 {
		return invalid("email", "must be an e-mail address")
	}
	if f.Phone != "" && !validPhone(f.Phone) {
		return invalid("phone", "must be a phone number such as +32 477 99 00 22")
	}
	return nil
}

func hexDigits64(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Validate checks a start frame.
func (f *Start) Validate() error { return CheckClientID("id", f.ID) }

// Validate accepts every read frame.
func (f *Read) Validate() error { return nil }

// Validate accepts every welcome frame: an empty conversation means the
// visitor has none yet.
func (f *Welcome) Validate() error { return nil }

// Validate checks a msg frame, body included.
func (f *Msg) Validate() error {
	if f.Seq == 0 {
		return invalid("seq", "must be at least 1")
	}
	switch f.From {
	case "user", "bot", "system":
	default:
		return invalid("from", "must be user, bot or system")
	}
	return f.Body.Validate()
}

// Validate checks an ack frame.
func (f *Ack) Validate() error { return CheckClientID("id", f.ID) }

// Validate checks a status frame.
func (f *Status) Validate() error {
	if f.State != StateDelivered && f.State != StateFailed {
		return invalid("state", "must be delivered or failed")
	}
	return CheckClientID("id", f.ID)
}

// Validate accepts every typing frame.
func (f *Typing) Validate() error { return nil }

// Validate checks an error frame.
func (f *ErrorFrame) Validate() error {
	if f.Code == "" {
		return invalid("code", "is missing")
	}
	return nil
}

// CheckClientID accepts 1 to MaxID characters of letters, digits and
// "-_.:", which covers UUIDs and the widget's own ids.
func CheckClientID(field, id string) error {
	if id == "" {
		return invalid(field, "is missing")
	}
	if len(id) > MaxID {
		return invalid(field, "is longer than "+strconv.Itoa(MaxID)+" characters")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return invalid(field, "may only hold letters, digits and - _ . :")
		}
	}
	return nil
}

// CheckBotID accepts a bot id: 1 to 64 lowercase letters, digits, - and _,
// starting with a letter or digit, so that it is safe in URLs and paths.
func CheckBotID(field, id string) error {
	if id == "" {
		return invalid(field, "is missing")
	}
	if len(id) > 64 {
		return invalid(field, "is longer than 64 characters")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (i > 0 && (c == '-' || c == '_'))
		if !ok {
			return invalid(field, "must be lowercase letters, digits, - and _, starting with a letter or digit")
		}
	}
	return nil
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return string(appendString(nil, s))
}

// parseUint reads a decimal number of at most 64 bits. It stands in for
// strconv.ParseUint, whose error type links strconv.Quote and its Unicode
// tables into widget.wasm.
func parseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
