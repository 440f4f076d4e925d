package widget

import (
	"strconv"
)

// Encoding: the frames' and the body's AppendJSON methods, written with
// the jsonWriter of json.go.

// Encode returns the JSON encoding of f.
func Encode(f Frame) []byte { return f.AppendJSON(make([]byte, 0, 128)) }

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
	w.str("color_scheme", l.ColorScheme, true)
	w.str("font", l.Font, true)
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
	appendBlocks(&w, "blocks", bd.Blocks)
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

// appendBlocks writes formatted text (Body.Blocks) as the member key.
func appendBlocks(w *jsonWriter, key string, bs []Block) {
	w.list(key, len(bs), func(i int) { appendBlock(w, bs[i]) })
}

func appendBlock(w *jsonWriter, bl Block) {
	w.open()
	w.list("p", len(bl.P), func(i int) {
		r := bl.P[i]
		w.open()
		w.str("text", r.Text, false)
		w.str("style", r.Style, true)
		w.str("url", r.URL, true)
		w.close()
	})
	appendItems(w, "ul", bl.UL)
	appendItems(w, "ol", bl.OL)
	if bl.Start != 0 {
		w.key("start")
		w.b = strconv.AppendInt(w.b, int64(bl.Start), 10)
	}
	w.str("pre", bl.Pre, true)
	w.close()
}

// appendItems writes a list's items, each an array of blocks.
func appendItems(w *jsonWriter, key string, items [][]Block) {
	w.list(key, len(items), func(i int) {
		w.b = append(w.b, '[')
		for j, bl := range items[i] {
			if j > 0 {
				w.b = append(w.b, ',')
			}
			appendBlock(w, bl)
		}
		w.b = append(w.b, ']')
	})
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
