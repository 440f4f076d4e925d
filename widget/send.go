package widget

import (
	"strconv"
)

// Visitor actions: messages, postbacks, session data and logins wait in
// the outbox, which flush sends in order once the socket is welcomed.

// CodeOutboxFull is the Notice code when OutboxCap messages are already
// waiting to be sent; the new one is refused rather than dropping an old one.
const CodeOutboxFull = "outbox_full"

// item is a frame waiting in the outbox until its ack.
type item struct {
	_       noCompare
	id      string
	frame   Frame  // *Send, *Postback or *Session
	entry   *Entry // nil for a session update
	at      Instant
	retryAt Instant // rate limited: not before this
	gen     int     // socket generation it was sent on; 0: never
	persist bool    // kept in Storage (a retry of a stored message is not)
}

// SendText queues a text message: the entry shows at once as sending and
// is in Storage before anything goes out, so a reload or a lost
// connection never loses it. Update.Send holds the frame when online;
// otherwise it goes after the next welcome, with the same id. Blank text
// returns a nil entry; invalid text a nil entry and a Notice.
func (c *Client) SendText(text string) (*Entry, Update) {
	text = TrimSpace(replaceAll(text, "\r\n", "\n"))
	if text == "" {
		return nil, c.finish(Update{})
	}
	id := c.newID()
	return c.enqueue(&Send{ID: id, Text: text}, &Entry{ClientID: id, From: "user", Body: Text(text)})
}

// Postback sends a button or quick-reply click, shown as the visitor's
// message with title; payload goes to the bot as the bot sent it.
func (c *Client) Postback(title, payload string) (*Entry, Update) {
	id := c.newID()
	return c.enqueue(&Postback{ID: id, Title: title, Payload: payload},
		&Entry{ClientID: id, From: "user", Body: Text(title), payload: payload, postback: true})
}

type validator interface {
	Frame
	Validate() error
}

func (c *Client) enqueue(f validator, e *Entry) (*Entry, Update) {
	var u Update
	if err := f.Validate(); err != nil {
		u.Notice = noticeOf(err)
		return nil, c.finish(u)
	}
	if len(c.queue) >= OutboxCap {
		u.Notice = &Notice{Code: CodeOutboxFull, Message: "too many messages are waiting to be sent"}
		return nil, c.finish(u)
	}
	now := c.now()
	e.At, e.State = now, StateSending
	it := &item{id: e.ClientID, frame: f, entry: e, at: now, persist: true}
	c.saveItem(it) // before anything is sent
	c.queue = append(c.queue, it)
	c.pending = append(c.pending, e)
	c.byClient[e.ClientID] = e
	u.Change |= ChangeTranscript
	c.flush(&u)
	return e, c.finish(u)
}

func noticeOf(err error) *Notice {
	if pe, ok := err.(*Error); ok {
		return &Notice{Code: pe.Code, Message: pe.Error()}
	}
	return &Notice{Code: CodeBadRequest, Message: err.Error()}
}

// SetSession queues session data for the bot (Porthole.setSessionData):
// a JSON object whose keys are merged into the bot's session data (null
// removes one). Updates not yet sent are merged into one.
func (c *Client) SetSession(data RawJSON) Update { return c.setSession(data, "") }

// SetContext queues page context for the bot (Porthole.setContext): a
// JSON object whose keys go into the session data as "page.<key>", next
// to the page's url and title (SetPage), where each platform's adapter
// passes session data on.
func (c *Client) SetContext(data RawJSON) Update { return c.setSession(data, PagePrefix) }

// PagePrefix starts the session data keys of page context.
const PagePrefix = "page."

// SetPage tells the bot that the visitor moved on in a single-page site
// (history.pushState, popstate, hashchange): page.url and page.title,
// when either differs from what it was told last.
func (c *Client) SetPage(p Page) Update {
	if p.URL == c.page.URL && p.Title == c.page.Title {
		return Update{}
	}
	c.page.URL, c.page.Title = p.URL, p.Title
	v := JSONValue{Kind: JSONObject, Fields: []JSONField{
		{"url", JSONValue{Kind: JSONString, Str: p.URL}}, {"title", JSONValue{Kind: JSONString, Str: p.Title}}}}
	return c.setSession(AppendJSONValue(nil, v), PagePrefix)
}

func (c *Client) setSession(data RawJSON, prefix string) Update {
	var u Update
	v, err := ParseJSON(data)
	if err != nil || v.Kind != JSONObject {
		u.Notice = &Notice{Code: CodeBadRequest, Message: "session data must be a JSON object"}
		if prefix != "" {
			u.Notice.Message = "page context must be a JSON object"
		}
		return c.finish(u)
	}
	for i := range v.Fields {
		v.Fields[i].Key = prefix + v.Fields[i].Key
	}
	// Updates queued while offline go out one by one: the server merges
	// them into the session data in order, as it would online.
	f := &Session{ID: c.newID(), Data: AppendJSONValue(nil, v)}
	return c.queueSetting(f.ID, f, true)
}

// Login queues Porthole.login(user, signature, {name, email, phone}), or
// a logout when user is empty. It waits while offline, but is not kept
// across a reload: a page calls login on every load, as sites do with
// Chatlayer's widget. The server checks the signature and answers a
// forged one with an error (a Notice), not a retry loop.
func (c *Client) Login(f Login) Update {
	f.ID = c.newID()
	if f.Validate() == nil { // else queueSetting says why
		c.login = nil
		if f.User != "" {
			l := f
			l.ID = ""
			c.login = &l
		}
	}
	return c.queueSetting(f.ID, &f, false)
}

// queueSetting puts a session or login frame on the outbox, kept in
// Storage when persist is set, and sends it when the socket is up.
func (c *Client) queueSetting(id string, f validator, persist bool) Update {
	var u Update
	if err := f.Validate(); err != nil {
		u.Notice = noticeOf(err)
		return c.finish(u)
	}
	if len(c.queue) >= OutboxCap {
		u.Notice = &Notice{Code: CodeOutboxFull, Message: "too many updates are waiting to be sent"}
		return c.finish(u)
	}
	it := &item{id: id, frame: f, at: c.now(), persist: persist}
	if persist {
		c.saveItem(it)
	}
	c.queue = append(c.queue, it)
	c.flush(&u)
	return c.finish(u)
}

// Retry sends a failed message again with the same client id; the
// server recognises it and retries it instead of storing it twice.
func (c *Client) Retry(clientID string) Update {
	var u Update
	e := c.byClient[clientID]
	if e == nil || !e.CanRetry() || c.findItem(clientID) != nil {
		return c.finish(u)
	}
	var f validator
	if e.postback && e.payload != "" {
		f = &Postback{ID: clientID, Title: e.Body.Text, Payload: e.payload}
	} else {
		f = &Send{ID: clientID, Text: e.Body.Summary()}
	}
	if f.Validate() != nil {
		return c.finish(u)
	}
	e.State, e.Error, e.Detail = StateSending, "", ""
	it := &item{id: clientID, frame: f, entry: e, at: c.now(), persist: e.Seq == 0}
	if it.persist {
		c.saveItem(it)
	}
	c.queue = append(c.queue, it)
	u.Change |= ChangeTranscript
	c.flush(&u)
	return c.finish(u)
}

// flush sends, in order, queued frames not yet sent on this socket, up to
// the first one that waits out a rate limit, then a due read marker.
// Without a conversation, a start goes before the first message (the
// session and login frames queued before it go first, so the bot's
// greeting already knows them), or alone when the panel is open.
func (c *Client) flush(u *Update) {
	if c.conn != ConnOnline {
		return
	}
	now := c.now()
	start := c.conv == "" && c.startGen != c.gen
	for _, it := range c.queue {
		if it.gen == c.gen {
			continue // in flight
		}
		if start && it.entry != nil {
			if !c.start(u, now) {
				break // the messages wait for their conversation
			}
			start = false
		}
		if it.retryAt.After(now) {
			break // keep the typing order
		}
		it.gen, it.retryAt = c.gen, Instant(0)
		u.Send = append(u.Send, it.frame)
	}
	if start && c.open {
		c.start(u, now)
	}
	if !c.readAt.IsZero() && !now.Before(c.readAt) {
		c.readAt = Instant(0)
		if c.seen > c.readSent {
			c.readSent = c.seen
			u.Send = append(u.Send, &Read{Seq: c.seen})
		}
	}
}

// start sends a start frame with a fresh id, unless a rate limit asked
// to wait; it reports whether it went.
func (c *Client) start(u *Update, now Instant) bool {
	if c.startAt.After(now) {
		return false
	}
	c.startID, c.startGen, c.startAt = c.newID(), c.gen, Instant(0)
	u.Send = append(u.Send, &Start{ID: c.startID})
	return true
}

func (c *Client) findItem(id string) *item {
	for _, it := range c.queue {
		if it.id == id {
			return it
		}
	}
	return nil
}

// dropItem takes it out of the queue and of Storage.
func (c *Client) dropItem(it *item) {
	for i, q := range c.queue {
		if q == it {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			break
		}
	}
	if it.persist {
		c.removeStored(it.id)
	}
}

// newID returns a client message id: the time in ms and 64 random bits,
// base 36, like "m3x9k2a1-2kq8zd0c7x1lf". Unique across tabs by its
// random part, and valid for CheckClientID.
func (c *Client) newID() string {
	ms := c.now().UnixMilli()
	if ms < 0 {
		ms = 0
	}
	for i := uint64(0); ; i++ {
		b := make([]byte, 0, 24)
		b = strconv.AppendInt(b, ms, 36)
		b = append(b, '-')
		b = strconv.AppendUint(b, c.random()+i, 36)
		id := string(b)
		if c.byClient[id] == nil && c.findItem(id) == nil && !c.done[id] {
			return id
		}
	}
}
