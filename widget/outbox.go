package widget

import (
	"strconv"
)

// The Client's persistent state in Storage, under StorageKey(bot, name).
// Every value tolerates garbage: whatever does not parse is ignored and
// the Client starts clean, it never panics.
//
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
