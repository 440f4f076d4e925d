package widget

import (
	"strconv"
)

// The Client's persistent state in Storage, under StorageKey(bot, name).
// Every value tolerates garbage: whatever does not parse is ignored and
// the Client starts clean, it never panics.

// Storage is the host page's localStorage: shared by every tab of one
// site, so two tabs see one visitor, one outbox and one read marker.
// Implementations must not panic; a failing Set (quota, private mode) is
// silently ignored and the widget keeps working from memory.
type Storage interface {
	Get(key string) (string, bool)
	Set(key, value string)
	Remove(key string)
}

// Storage item names; StorageKey makes the full key.
const (
	KeyVisitor = "visitor" // the visitor token from the latest welcome
	KeyOutbox  = "outbox"  // JSON array of send/postback/session frames with "at" (unix ms)
	KeySeen    = "seen"    // "<seq>:<conversation>": newest message the visitor has seen
	KeyUnread  = "unread"  // decimal unread count, for the loader's badge before the wasm runs
	KeyLogout  = "logout"  // changes at each logout, so that the browser's other tabs start afresh too
)

// StorageKey returns the localStorage key of item name for bot:
// "porthole:<bot>:<name>".
func StorageKey(bot, name string) string { return "porthole:" + bot + ":" + name }

// MemoryStorage is a Storage in memory: for tests, and for browsers where
// localStorage is unavailable. The zero value is ready to use.
type MemoryStorage struct{ m map[string]string }

func (s *MemoryStorage) Get(key string) (string, bool) {
	v, ok := s.m[key]
	return v, ok
}

func (s *MemoryStorage) Set(key, value string) {
	if s.m == nil {
		s.m = make(map[string]string)
	}
	s.m[key] = value
}

func (s *MemoryStorage) Remove(key string) { delete(s.m, key) }

func (c *Client) key(name string) string { return StorageKey(c.bot, name) }

// WatchesKey reports whether a "storage" event for key concerns this
// Client, so that the wasm layer calls Sync: one of its keys, or ""
// (localStorage.clear()).
func (c *Client) WatchesKey(key string) bool {
	return key == "" || HasPrefix(key, StorageKey(c.bot, ""))
}

func (c *Client) loadUnread() int {
	if s, ok := c.get(KeyUnread); ok {
		if n, ok := parseUint(s); ok && n > 0 && n < 1e6 {
			return int(n)
		}
	}
	return 0
}

func (c *Client) get(name string) (string, bool) { return c.store.Get(c.key(name)) }

// Sync re-reads what other tabs of the site may have changed in Storage:
// the read marker (a tab showing the panel clears the others' badge) and
// the outbox (a message another tab could not send, this one sends).
// Call it on the "storage" event.
func (c *Client) Sync() Update {
	var u Update
	if mark, _ := c.get(KeyLogout); mark != c.logout {
		// Another tab logged out: this one's socket speaks for the
		// visitor that ended. Drop what it shows and say hello again
		// with the new visitor's token, at once.
		c.logout = mark
		c.resetTranscript()
		c.conv, c.last, c.welcomed = "", 0, false
		u.Change |= ChangeTranscript
		if c.conn != ConnIdle && !c.stopped {
			u.Hangup = c.conn != ConnWaiting
			c.dial(&u)
		}
	}
	if seq, conv := c.loadSeen(); seq > c.seen && (conv == c.seenConv || c.seenConv == "") {
		c.seen, c.seenConv = seq, conv
		c.storedUnread, c.savedUnread = c.loadUnread(), c.loadUnread()
	}
	for _, it := range c.loadOutbox() {
		if c.adopt(it) {
			u.Change |= ChangeTranscript
		}
	}
	c.flush(&u)
	return c.finish(u)
}

// adopt takes a stored outbox item unless it is known already.
func (c *Client) adopt(it *item) bool {
	if c.done[it.id] || c.findItem(it.id) != nil || c.byClient[it.id] != nil {
		return false
	}
	switch f := it.frame.(type) {
	case *Send:
		it.entry = &Entry{ClientID: it.id, From: "user", At: it.at, Body: Text(f.Text), State: StateSending}
	case *Postback:
		it.entry = &Entry{ClientID: it.id, From: "user", At: it.at, Body: Text(f.Title), State: StateSending, payload: f.Payload, postback: true}
	}
	c.queue = append(c.queue, it)
	if it.entry != nil {
		c.pending = append(c.pending, it.entry)
		c.byClient[it.id] = it.entry
	}
	return true
}

// The outbox is a JSON array of the client frames not yet acknowledged,
// as they go on the wire, each with an extra "at" member (unix ms, when
// the visitor typed it):
//
//	[{"type":"send","id":"m3x9k2a1-2kq8zd0c7x1lf","text":"hello","at":1763726400123},
//	 {"type":"session","id":"…","data":{"plan":"pro"},"at":…}]
//
// Tabs share it, so every change is a read-modify-write of one item by
// id: a tab never overwrites what another tab added.

// maxStoredItems bounds the stored outbox: each tab queues at most
// OutboxCap, several tabs together a little more.
const maxStoredItems = 2 * OutboxCap

func (c *Client) loadOutbox() []*item {
	s, ok := c.get(KeyOutbox)
	if !ok || s == "" {
		return nil
	}
	v, err := ParseJSON([]byte(s))
	if err != nil || v.Kind != JSONArray {
		return nil
	}
	now := c.now()
	out := make([]*item, 0, len(v.Items))
	for _, iv := range v.Items {
		if len(out) == maxStoredItems {
			break
		}
		it := decodeItem(iv, now)
		if it == nil || now.Sub(it.at) > OutboxMaxAge {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || o.id == it.id
		}
		if !dup {
			out = append(out, it)
		}
	}
	return out
}

// decodeItem reads one stored frame, validated as the server would, or
// returns nil.
func decodeItem(v JSONValue, now Instant) *item {
	if v.Kind != JSONObject {
		return nil
	}
	r := reader{v: v}
	var f validator
	var id string
	switch r.str("type") {
	case TypeSend:
		s := new(Send)
		s.read(&r)
		f, id = s, s.ID
	case TypePostback:
		p := new(Postback)
		p.read(&r)
		f, id = p, p.ID
	case TypeSession:
		s := new(Session)
		s.read(&r)
		f, id = s, s.ID
	default:
		return nil
	}
	ms := r.int("at")
	if r.err != nil || f.Validate() != nil {
		return nil
	}
	at := now
	if ms > 0 {
		at = Instant(ms)
	}
	return &item{id: id, frame: f, at: at, persist: true}
}

func appendItem(b []byte, it *item) []byte {
	b = it.frame.AppendJSON(b)
	b = b[:len(b)-1] // the closing brace
	b = append(b, `,"at":`...)
	b = strconv.AppendInt(b, it.at.UnixMilli(), 10)
	return append(b, '}')
}

func (c *Client) saveOutbox(items []*item) {
	if len(items) == 0 {
		c.store.Remove(c.key(KeyOutbox))
		return
	}
	b := make([]byte, 0, 128*len(items))
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendItem(b, it)
	}
	b = append(b, ']')
	c.store.Set(c.key(KeyOutbox), string(b))
}

// saveItem adds it to the stored outbox, or replaces the stored item of
// the same id, keeping whatever other tabs stored.
func (c *Client) saveItem(it *item) {
	items := c.loadOutbox()
	replaced := false
	for i, o := range items {
		if o.id == it.id {
			items[i], replaced = it, true
		}
	}
	if !replaced {
		if len(items) >= maxStoredItems {
			items = items[1:] // only when tabs together queued this many
		}
		items = append(items, it)
	}
	c.saveOutbox(items)
}

// removeStored takes the item id out of the stored outbox.
func (c *Client) removeStored(id string) {
	items := c.loadOutbox()
	for i, o := range items {
		if o.id == id {
			c.saveOutbox(append(items[:i], items[i+1:]...))
			return
		}
	}
}

// The read marker: "<seq>:<conversation>".

func (c *Client) loadSeen() (uint64, string) {
	s, ok := c.get(KeySeen)
	if !ok {
		return 0, ""
	}
	num, conv, _ := Cut(s, ":")
	seq, ok := parseUint(num)
	if !ok {
		return 0, ""
	}
	return seq, conv
}

func (c *Client) saveSeen() {
	c.store.Set(c.key(KeySeen), strconv.FormatUint(c.seen, 10)+":"+c.seenConv)
}
