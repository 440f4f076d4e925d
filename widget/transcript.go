package widget

// The transcript: the entries the widget shows, what the visitor has
// seen of them, and the bookkeeping that keeps them in seq order.

// Entry states beyond the status frame's StateDelivered and StateFailed.
const (
	// StateSending: typed, not yet acknowledged by the server (queued
	// while offline, in flight, or waiting out a rate limit).
	StateSending = "sending"
	// StateSent: durable on the server, not yet handed to the bot.
	StateSent = "sent"
)

// Entry is one message of the transcript as the widget shows it.
type Entry struct {
	Seq      uint64  // 0 while the server has not stored it
	ID       string  // server message id, once the msg frame arrived
	ClientID string  // the visitor's message id (user messages)
	From     string  // "user", "bot" or "system"
	At       Instant // when this widget first showed it (typed or received)
	// Stamp is the server's time of the message (RFC 3339, UTC), kept as
	// text: the renderer hands it to the browser's Date when it shows
	// times, and parsing it here would cost widget.wasm for nothing.
	Stamp string
	Body  Body // a postback shows as a text body with its title
	// State is StateSending, StateSent, StateDelivered or StateFailed
	// for the visitor's messages, "" for others.
	State string
	// Error is the reason code when failed: the status frame's reason
	// (upstream_unavailable, ...) or the error frame's code
	// (bad_request, too_large) when the server refused it. While
	// sending, it is the code of a refusal the client retries by itself
	// (rate_limited, internal: not stored), so the visitor sees why the
	// message is still on its way.
	Error  string
	Detail string // the server's message for a refused one

	payload  string // a postback's payload, kept for a retry
	postback bool
}

// Mine reports whether the visitor wrote e.
func (e *Entry) Mine() bool { return e.From == "user" }

// CanRetry reports whether the UI offers retry: failed on the way to the
// bot, as opposed to refused by the server as invalid or too large.
func (e *Entry) CanRetry() bool {
	return e.State == StateFailed && e.Error != CodeBadRequest && e.Error != CodeTooLarge
}

// Entries returns the transcript in display order: stored messages by
// seq, then the visitor's pending ones in the order typed.
func (c *Client) Entries() []*Entry {
	out := make([]*Entry, 0, len(c.confirmed)+len(c.pending))
	out = append(out, c.confirmed...)
	return append(out, c.pending...)
}

// Entry returns the entry of a client message id, or nil.
func (c *Client) Entry(clientID string) *Entry { return c.byClient[clientID] }

// QuickReplies returns the quick replies to show and the entry they
// belong to: those of the latest message, when it is the bot's and the
// visitor has sent nothing since.
func (c *Client) QuickReplies() (*Entry, []QuickReply) {
	if len(c.pending) > 0 || len(c.confirmed) == 0 {
		return nil, nil
	}
	e := c.confirmed[len(c.confirmed)-1]
	if e.From == "user" || len(e.Body.QuickReplies) == 0 {
		return nil, nil
	}
	return e, e.Body.QuickReplies
}

// ShowState reports whether the renderer shows e's delivery state: while
// sending or failed, and for the visitor's latest message until someone
// answers it.
func (c *Client) ShowState(e *Entry) bool {
	if !e.Mine() {
		return false
	}
	if e.State == StateSending || e.State == StateFailed {
		return true
	}
	if n := len(c.pending); n > 0 {
		return c.pending[n-1] == e
	}
	if n := len(c.confirmed); n > 0 {
		return c.confirmed[n-1] == e
	}
	return false
}

// Divider returns the seq of the first message that was unread when the
// panel last opened (show "New messages" above it), or 0.
func (c *Client) Divider() uint64 { return c.divider }

// SetOpen records whether the panel is open and the tab visible. Both:
// everything shown counts as seen, the unread count drops to 0 and the
// server gets a read frame. Opening the panel or showing the tab while
// disconnected dials at once. An open panel is intent: once welcomed
// without a conversation, the Client sends start.
func (c *Client) SetOpen(open, visible bool) Update {
	var u Update
	was := c.open && c.visible
	wasOpen, wasVisible := c.open, c.visible
	c.open, c.visible = open, visible
	if open && visible && !was {
		c.divider = c.firstUnread()
		c.markSeen(true)
		u.Change |= ChangeTranscript
	}
	if (open && !wasOpen) || (visible && !wasVisible) {
		c.wakeUp(&u)
	}
	c.flush(&u)
	return c.finish(u)
}

// markSeen moves the read marker to the newest message; the read frame
// goes at once or, while messages stream in, after ReadDelay.
func (c *Client) markSeen(now bool) {
	if n := len(c.confirmed); n > 0 && c.confirmed[n-1].Seq > c.seen {
		c.seen, c.seenConv = c.confirmed[n-1].Seq, c.conv
		c.saveSeen()
	}
	if c.storedUnread != 0 {
		c.storedUnread = 0
	}
	if c.seen > c.readSent {
		if now {
			c.readAt = c.now()
		} else if c.readAt.IsZero() {
			c.readAt = c.now().Add(ReadDelay)
		}
	}
}

// Unread returns how many bot messages the visitor has not seen. Until
// the replay after the page load is complete, the count stored by the
// previous page stands in, so the badge never blinks to 0.
func (c *Client) Unread() int {
	if c.open && c.visible {
		return 0
	}
	n := 0
	for i := len(c.confirmed) - 1; i >= 0 && c.confirmed[i].Seq > c.seen; i-- {
		if c.confirmed[i].From != "user" {
			n++
		}
	}
	if !c.synced() && c.storedUnread > n {
		return c.storedUnread
	}
	return n
}

// synced reports whether the transcript holds everything the latest
// welcome announced.
func (c *Client) synced() bool { return c.welcomed && c.contigSeq() >= c.last }

func (c *Client) firstUnread() uint64 {
	var first uint64
	for i := len(c.confirmed) - 1; i >= 0 && c.confirmed[i].Seq > c.seen; i-- {
		if c.confirmed[i].From != "user" {
			first = c.confirmed[i].Seq
		}
	}
	return first
}

func (c *Client) contigSeq() uint64 { return uint64(c.contig) }

// search returns the index of the first confirmed entry with Seq >= seq.
func (c *Client) search(seq uint64) int {
	lo, hi := 0, len(c.confirmed)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.confirmed[m].Seq < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (c *Client) bySeq(seq uint64) *Entry {
	if i := c.search(seq); i < len(c.confirmed) && c.confirmed[i].Seq == seq {
		return c.confirmed[i]
	}
	return nil
}

// insert places e by its seq (not held yet) and advances contig.
func (c *Client) insert(e *Entry) {
	i := c.search(e.Seq)
	c.confirmed = append(c.confirmed, nil)
	copy(c.confirmed[i+1:], c.confirmed[i:])
	c.confirmed[i] = e
	for c.contig < len(c.confirmed) && c.confirmed[c.contig].Seq == uint64(c.contig+1) {
		c.contig++
	}
}

func (c *Client) removePending(e *Entry) {
	for i, p := range c.pending {
		if p == e {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return
		}
	}
}

// resetTranscript forgets every confirmed entry; the visitor's pending
// ones stay and go out again.
func (c *Client) resetTranscript() {
	for _, e := range c.confirmed {
		if e.ClientID != "" && c.byClient[e.ClientID] == e {
			delete(c.byClient, e.ClientID)
		}
	}
	c.confirmed, c.contig = nil, 0
	c.helloAfter, c.gapAsked = 0, 0
	c.readSent, c.divider = 0, 0
}

// PlainText returns the conversation as the visitor keeps a copy of it
// (the panel's "save conversation"): the bot's name, then each message
// of the visitor and of the bot with its time, as AppendPlain writes it.
func (c *Client) PlainText(bot string) string {
	b := append([]byte(bot), "\n\n"...)
	you := c.Texts().Get(TextYou)
	for _, e := range c.Entries() {
		switch e.From {
		case "user":
			b = AppendPlain(b, e.Stamp, you, e.Body.Summary())
		case "bot":
			b = AppendPlain(b, e.Stamp, bot, e.Body.Summary())
		}
	}
	return string(b)
}

// AppendPlain appends one message to a plain-text transcript: its time
// (stamp, RFC 3339 in UTC, to the minute; none while the server has not
// stored it), who wrote it and its text, the text's further lines
// indented. The widget and the chat page write the same lines.
func AppendPlain(b []byte, stamp, who, text string) []byte {
	if len(stamp) >= 16 {
		b = append(b, '[')
		b = append(b, stamp[:10]...)
		b = append(b, ' ')
		b = append(b, stamp[11:16]...)
		b = append(b, " UTC] "...)
	}
	b = append(b, who...)
	b = append(b, ": "...)
	for i := 0; i < len(text); i++ {
		b = append(b, text[i])
		if text[i] == '\n' {
			b = append(b, "  "...)
		}
	}
	return append(b, '\n')
}
