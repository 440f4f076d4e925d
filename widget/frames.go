package widget

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
	_        noCompare
	URL      string `json:"url,omitempty"`
	Referrer string `json:"referrer,omitempty"`
	Title    string `json:"title,omitempty"`
}

// Send is a message the visitor typed.
type Send struct {
	_    noCompare
	ID   string `json:"id"`
	Text string `json:"text"`
}

// Postback is a click on a postback button or quick reply: Title is what
// the visitor saw, Payload goes back to the bot exactly as it sent it.
type Postback struct {
	_       noCompare
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
	_         noCompare
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
	// ColorScheme is "light" or "dark" to fix the panel's colours; ""
	// (auto) follows the visitor's system.
	ColorScheme string `json:"color_scheme,omitempty"`
	// Font is a CSS font-family list (CheckFont); "" keeps the system font.
	Font string `json:"font,omitempty"`
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
