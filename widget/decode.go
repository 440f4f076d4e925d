package widget

import (
	"strconv"
)

// Decoding: Decode and DecodeBody read frames and bodies with a reader,
// then validate them.

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
	if key == "" {
		return r.path
	}
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

// str is kept out of line: inlined, its call to get (and get's error
// path) is copied into each of its many call sites, which costs
// widget.wasm about 7 KB (over 1 KB brotli) for no measurable speed.
//
//go:noinline
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
	b.Blocks = r.blocks("blocks")
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

// blocks reads formatted text (Body.Blocks) from the member key.
func (r *reader) blocks(key string) []Block {
	var out []Block
	r.each(key, func(b *reader) {
		bl := Block{UL: b.items("ul"), OL: b.items("ol"), Start: int(b.int("start")), Pre: b.str("pre")}
		b.each("p", func(run *reader) {
			bl.P = append(bl.P, Run{Text: run.str("text"), Style: run.str("style"), URL: run.str("url")})
		})
		out = append(out, bl)
	})
	return out
}

// items reads a list's items, each an array of blocks.
func (r *reader) items(key string) [][]Block {
	v, ok := r.get(key, JSONArray, "an array")
	if !ok {
		return nil
	}
	out := make([][]Block, len(v.Items))
	for i, item := range v.Items {
		// A reader of a one-member object whose key is "" reads the item
		// with the item's own path.
		sub := reader{v: JSONValue{Kind: JSONObject, Fields: []JSONField{{Value: item}}}, path: r.field(key) + "[" + strconv.Itoa(i) + "]"}
		out[i] = sub.blocks("")
		if sub.err != nil {
			r.err = sub.err
			return nil
		}
	}
	return out
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

		ColorScheme: w.str("color_scheme"),
		Font:        w.str("font"),
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
