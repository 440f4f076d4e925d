package widget

import (
	"strconv"
)

// Server frames: Receive and Handle apply what the server sends (the
// welcome, messages, acks, delivery states, typing and errors).

// KindUnsupported is the body kind of an entry whose msg frame this
// widget could not read (a newer server's body kind, say). The renderer
// shows TextUnsupported in its place; the seq still counts, so the
// transcript stays contiguous.
const KindUnsupported = "unsupported"

// Receive decodes one text frame from the socket and handles it. A frame
// that does not decode is ignored, except a msg this version cannot
// read: it takes its seq as a KindUnsupported entry, so that the
// transcript stays contiguous and no resync loop starts.
func (c *Client) Receive(data []byte) Update {
	// Server frames are read here type by type rather than through
	// Decode and Handle: the browser never receives a client frame, and
	// without the Frame interface the linker leaves the client frames'
	// readers and the server frames' encoders out of widget.wasm.
	var u Update
	v, err := ParseJSON(data)
	if err != nil || v.Kind != JSONObject || len(data) > MaxFrame {
		return c.finish(u)
	}
	r := reader{v: v}
	switch r.str("type") {
	case TypeWelcome:
		f := new(Welcome)
		if f.read(&r); r.err == nil && f.Validate() == nil {
			c.onWelcome(f, &u)
		}
	case TypeMsg:
		// The body is not validated again here: the server validated it
		// before storing it, and the renderer checks every URL itself and
		// writes text only as text nodes. Body.Validate's share of
		// widget.wasm buys nothing the renderer does not already ensure.
		f := new(Msg)
		f.read(&r)
		if r.err != nil || f.Seq == 0 || !knownKind(f.Body.Kind) {
			// A msg this version cannot read still takes its seq.
			r = reader{v: v}
			f = &Msg{Seq: r.uint("seq"), ID: r.str("id"), ClientID: r.str("client_id"), From: r.str("from"), At: r.str("at"), Body: Body{Kind: KindUnsupported}}
			if r.err != nil || f.Seq == 0 {
				return c.finish(u)
			}
			if f.From != "user" && f.From != "system" {
				f.From = "bot"
			}
		}
		c.onMsg(f, &u)
	case TypeAck:
		f := new(Ack)
		if f.read(&r); r.err == nil && f.Validate() == nil {
			c.onAck(f, &u)
		}
	case TypeStatus:
		f := new(Status)
		if f.read(&r); r.err == nil && f.Validate() == nil {
			c.onStatus(f, &u)
		}
	case TypeTyping:
		f := new(Typing)
		if f.read(&r); r.err == nil {
			c.onTyping(f)
		}
	case TypeError:
		f := new(ErrorFrame)
		if f.read(&r); r.err == nil && f.Validate() == nil {
			c.onError(f, &u)
		}
	}
	return c.finish(u)
}

func knownKind(k string) bool {
	return k == KindText || k == KindButtons || k == KindCarousel || k == KindMedia
}

// onTyping shows or hides the typing indicator; it hides itself after
// TypingTimeout without news.
func (c *Client) onTyping(f *Typing) {
	c.typing = f.On
	if f.On {
		c.typingUntil = c.now().Add(TypingTimeout)
	}
}

// Handle applies one decoded server frame; Receive is the browser's path.
func (c *Client) Handle(f Frame) Update {
	var u Update
	switch f := f.(type) {
	case *Welcome:
		c.onWelcome(f, &u)
	case *Msg:
		c.onMsg(f, &u)
	case *Ack:
		c.onAck(f, &u)
	case *Status:
		c.onStatus(f, &u)
	case *Typing:
		c.onTyping(f)
	case *ErrorFrame:
		c.onError(f, &u)
	}
	return c.finish(u)
}

func (c *Client) onWelcome(w *Welcome, u *Update) {
	now := c.now()
	if w.Visitor != "" {
		c.store.Set(c.key(KeyVisitor), w.Visitor)
	}
	// A different conversation (a fresh visitor) or one that ends before
	// what we hold: our transcript is not the server's. Drop it; the
	// server replays everything.
	if (c.conv != "" && w.Conversation != c.conv) || w.Last < c.helloAfter {
		c.resetTranscript()
		c.welcomed = false
		u.Change |= ChangeTranscript
	}
	if !c.welcomed {
		c.historyMark = w.Last
		c.welcomed = true
	}
	c.conv, c.last = w.Conversation, w.Last
	if c.seenConv != w.Conversation {
		c.seen, c.seenConv = 0, w.Conversation
		c.saveSeen()
	} else if c.seen > w.Last {
		c.seen = w.Last
		c.saveSeen()
	}
	c.serverLook = w.Widget // repainting the look on every welcome is cheap
	c.failed = ""           // the server answers: fetch texts that failed again
	u.Change |= ChangeLook
	if c.conn != ConnOnline { // not the answer to a resync hello
		c.welcomedAt = now
	}
	c.conn = ConnOnline
	c.deadline = Instant(0)
	c.bannerAt = Instant(0)
	if c.open && c.visible {
		c.markSeen(true)
	}
	c.flush(u)
}

func (c *Client) onMsg(m *Msg, u *Update) {
	if m.Seq == 0 {
		return
	}
	if e := c.bySeq(m.Seq); e != nil {
		// Held already: a replay, another resync, or the ack of our own
		// message placed it first. Fill in what the ack did not carry.
		if e.ID == "" && (e.ClientID == m.ClientID || m.ClientID == "") {
			e.ID, e.Stamp, e.Body = m.ID, m.At, m.Body
			u.Change |= ChangeTranscript
		}
		return
	}
	var e *Entry
	if m.ClientID != "" && m.From == "user" {
		if p := c.byClient[m.ClientID]; p != nil && p.Seq == 0 {
			e = p // our own message: it is stored
			c.removePending(p)
			if p.State == StateSending || p.State == StateFailed {
				p.State, p.Error, p.Detail = StateSent, "", ""
			}
			if it := c.findItem(m.ClientID); it != nil && it.persist {
				c.dropItem(it) // no need to send it again
			}
		}
	}
	mine := e != nil
	if e == nil {
		e = &Entry{ClientID: m.ClientID, From: m.From}
		if m.From == "user" {
			e.State = StateSent
		}
		if m.ClientID != "" {
			c.byClient[m.ClientID] = e
		}
	}
	e.Seq, e.ID, e.Stamp, e.Body = m.Seq, m.ID, m.At, m.Body
	if e.At.IsZero() {
		e.At = c.now()
	}
	c.insert(e)
	u.Change |= ChangeTranscript
	if !mine && m.Seq > c.historyMark {
		u.New = append(u.New, e)
	}
	if m.From != "user" {
		c.typing = false // the message it announced is here
	}
	if c.open && c.visible {
		c.markSeen(false)
	}
	// A gap: ask for a replay, once per gap (a hello asked for everything
	// after gapAsked already).
	if contig := c.contigSeq(); m.Seq > contig && contig != c.gapAsked && c.conn == ConnOnline {
		u.Send = append(u.Send, c.hello())
	}
}

func (c *Client) onAck(a *Ack, u *Update) {
	if it := c.findItem(a.ID); it != nil {
		c.dropItem(it)
		c.done[a.ID] = true
		if l, ok := it.frame.(*Login); ok && l.User == "" {
			// The server made this browser a fresh visitor (its welcome
			// came first); the other tabs follow (Sync).
			c.logout = strconv.FormatUint(c.random(), 36)
			c.store.Set(c.key(KeyLogout), c.logout)
		}
	}
	e := c.byClient[a.ID]
	if e == nil {
		return
	}
	// An ack means stored, and pending or delivered on the server.
	if e.State != StateDelivered {
		e.State, e.Error, e.Detail = StateSent, "", ""
	}
	if e.Seq == 0 && a.Seq > 0 && c.bySeq(a.Seq) == nil {
		c.removePending(e)
		e.Seq = a.Seq
		c.insert(e)
	}
	u.Change |= ChangeTranscript
}

func (c *Client) onStatus(st *Status, u *Update) {
	e := c.byClient[st.ID]
	if e == nil {
		return
	}
	switch st.State {
	case StateDelivered:
		e.State, e.Error, e.Detail = StateDelivered, "", ""
	case StateFailed:
		if it := c.findItem(st.ID); it != nil && it.gen == c.gen && c.conn == ConnOnline && e.State == StateSending {
			// A replayed failure of a message we are retrying right now:
			// the retry's own ack and status follow.
			return
		}
		e.State, e.Error = StateFailed, st.Error
		if e.Error == "" {
			e.Error = StateFailed
		}
	default:
		return
	}
	u.Change |= ChangeTranscript
}

func (c *Client) onError(f *ErrorFrame, u *Update) {
	u.Notice = &Notice{Code: f.Code, Message: f.Message, ID: f.ID}
	if f.Code == CodeUnauthorized {
		// The login, sent with a hello (no id) or on its own, was
		// refused: hellos stop carrying it.
		if it := c.findItem(f.ID); f.ID == "" || it != nil && it.frame.Type() == TypeLogin {
			c.login = nil
		}
	}
	if f.ID == "" {
		return
	}
	retry := f.Code == CodeRateLimited || f.RetryMS > 0
	if f.ID == c.startID {
		if retry && c.conv == "" { // nothing was created: start again later
			c.startAt, c.startGen = c.now().Add(retryDelay(f)), 0
		}
		return
	}
	it := c.findItem(f.ID)
	if it == nil {
		return
	}
	if retry {
		// Not stored: keep it, and everything typed after it, queued,
		// and say why it is still sending until its ack.
		if e := it.entry; e != nil && e.Error != f.Code {
			e.Error = f.Code
			u.Change |= ChangeTranscript
		}
		it.retryAt = c.now().Add(retryDelay(f))
		it.gen = 0
		return
	}
	// Refused as invalid: it would be refused again, so no retry loop.
	c.dropItem(it)
	if e := it.entry; e != nil {
		e.State, e.Error, e.Detail = StateFailed, f.Code, f.Message
		u.Change |= ChangeTranscript
	}
}

// retryDelay is how long to wait before sending again what f refused
// without storing it: its retry_ms, within bounds.
func retryDelay(f *ErrorFrame) Span {
	d := Span(f.RetryMS) * Millisecond
	if d <= 0 {
		d = 2 * Second
	}
	return min(max(d, 250*Millisecond), Minute)
}

// Typing reports whether the bot is typing.
func (c *Client) Typing() bool { return c.typing }
