package widget

import (
	"strconv"
)

// This file is the widget's brain: everything the browser program decides
// without touching the DOM or the network. The wasm layer owns a real
// WebSocket, the DOM, localStorage and one timer; it feeds every event
// into a Client and carries out the Update it gets back:
//
//	apply(u):  for each f in u.Send: socket.send(Encode(f))
//	           if u.Hangup: socket.close()        (onclose still follows)
//	           if u.Dial:   open a new socket to /v1/ws?bot=ID
//	           rearm the one timer: after u.Wake call apply(c.Tick()) (0: no timer)
//	           re-render what u.Change names; announce u.New; show u.Notice
//
//	start:          apply(c.Start())
//	socket open:    apply(c.Opened(page))
//	socket message: apply(c.Receive(data))
//	socket close:   apply(c.Closed(code))        (also when new WebSocket throws: 1006)
//	"online"/"offline" events: apply(c.SetNetwork(navigator.onLine))
//	visibilitychange, panel open/close: apply(c.SetOpen(open, !document.hidden))
//	                (opening the panel is intent: it starts the conversation)
//	"storage" event for a key of this bot: apply(c.Sync())
//	composer, buttons, API: SendText, Postback, SetSession, Retry, SetLook, SetLanguage
//
// Events of a socket other than the current one (closed after Hangup or
// Stop, replaced since) must be dropped by the wasm layer. At start it
// calls SetOpen(false, !document.hidden) and SetNetwork(navigator.onLine)
// before Start; a Client assumes a visible tab and a network until told.
//
// A Client is not safe for concurrent use: the browser calls it from its
// one event loop.

// Entry states beyond the status frame's StateDelivered and StateFailed.
const (
	// StateSending: typed, not yet acknowledged by the server (queued
	// while offline, in flight, or waiting out a rate limit).
	StateSending = "sending"
	// StateSent: durable on the server, not yet handed to the bot.
	StateSent = "sent"
)

// KindUnsupported is the body kind of an entry whose msg frame this
// widget could not read (a newer server's body kind, say). The renderer
// shows TextUnsupported in its place; the seq still counts, so the
// transcript stays contiguous.
const KindUnsupported = "unsupported"

// CodeOutboxFull is the Notice code when OutboxCap messages are already
// waiting to be sent; the new one is refused rather than dropping an old one.
const CodeOutboxFull = "outbox_full"

// Tunables of the client.
const (
	OutboxCap        = 50            // messages and session updates waiting to be sent
	OutboxMaxAge     = 7 * 24 * Hour // older stored outbox items are dropped on load
	TypingTimeout    = 30 * Second   // typing indicator without news hides itself
	HandshakeTimeout = 15 * Second   // dial to open, and open to welcome
	StableAfter      = 10 * Second   // a connection this old resets the backoff
	BannerDelay      = 1500 * Millisecond
	FirstBannerDelay = 4 * Second // the first connection of a page gets longer
	ReadDelay        = 500 * Millisecond
	BackoffBase      = 500 * Millisecond
	BackoffCap       = 30 * Second
	PolicyBackoff    = 5 * Second // base after a policy or protocol close
)

// WebSocket close codes the backoff distinguishes.
const (
	CloseNormal         = 1000
	CloseGoingAway      = 1001
	CloseProtocolError  = 1002
	CloseUnsupported    = 1003
	CloseAbnormal       = 1006 // no close frame: network loss, refused upgrade
	CloseInvalidData    = 1007
	ClosePolicy         = 1008
	CloseTooBig         = 1009
	CloseServiceRestart = 1012
	CloseTryAgainLater  = 1013
)

// DefaultCaps are the message kinds this widget renders, sent in hello.
var DefaultCaps = []string{"text", "quick_replies", "buttons", "carousel", "media"}

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

// ClientOptions configure a Client.
type ClientOptions struct {
	Bot     string  // bot id, as in data-bot
	Storage Storage // localStorage; nil keeps everything in memory
	// Locale and TZ go into hello (navigator.language, the
	// Intl time zone); SetLanguage overrides Locale.
	Locale string
	TZ     string
	// Languages are the page's <html lang> followed by
	// navigator.languages, used to pick the built-in texts.
	Languages []string
	Now       func() Instant // required in the browser: Date.now()
	Random    func() uint64  // default a generator seeded by the clock; pass crypto.getRandomValues
}

// Change names the parts of the UI an Update affects.
type Change uint8

const (
	ChangeTranscript Change = 1 << iota // Entries, entry states, QuickReplies, Divider
	ChangeTyping                        // Typing
	ChangeUnread                        // Unread (fire the "unread" event)
	ChangeConnection                    // Online, Banner
	ChangeLook                          // Look, Texts
)

// Update is what the wasm layer must do after a call into the Client.
type Update struct {
	// Send are frames to write on the socket, in order. They are only
	// ever set while the socket is open and welcomed.
	Send []Frame
	// Change names what to re-render.
	Change Change
	// New are messages from the server seen for the first time, in seq
	// order: announce the bot's in the live region and fire "message".
	// The history replayed when the page loads is not new, nor is the
	// echo of a message this Client showed already.
	New []*Entry
	// Notice is a problem to surface (the "error" event, a toast); its
	// Code maps to a text with Texts.Error.
	Notice *Notice
	// Dial: open a new socket now.
	Dial bool
	// Hangup: close the current socket (it did not open or welcome in
	// time, or Stop was called); Closed follows from its close event.
	Hangup bool
	// Wake: call Tick after this long, replacing any earlier timer;
	// 0 means no timer is needed.
	Wake Span
}

// Notice is an error frame or a local refusal, for the UI.
type Notice struct {
	Code    string // CodeRateLimited, CodeTooLarge, CodeOutboxFull, ...
	Message string // the server's English detail, for logs and the error event
	ID      string // the client message it concerns, if any
}

// ConnState is the state of the connection.
type ConnState uint8

const (
	ConnIdle       ConnState = iota // not started, or stopped
	ConnConnecting                  // socket being opened
	ConnHandshake                   // socket open, hello sent, no welcome yet
	ConnOnline                      // welcomed: frames flow
	ConnWaiting                     // closed; a new dial is scheduled
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

// item is a frame waiting in the outbox until its ack.
type item struct {
	id      string
	frame   Frame  // *Send, *Postback or *Session
	entry   *Entry // nil for a session update
	at      Instant
	retryAt Instant // rate limited: not before this
	gen     int     // socket generation it was sent on; 0: never
	persist bool    // kept in Storage (a retry of a stored message is not)
}

type snapshot struct {
	unread int
	banner string
	online bool
	typing bool
}

// Client is the state machine of one widget: connection, outbox,
// transcript, typing, unread count and look.
type Client struct {
	bot    string
	store  Storage
	now    func() Instant
	random func() uint64
	locale string
	tz     string
	langs  []string
	lang   string // SetLanguage

	// connection
	conn       ConnState
	stopped    bool
	gen        int // bumped by each Opened
	attempt    int
	redialAt   Instant
	deadline   Instant // of ConnConnecting and ConnHandshake
	welcomedAt Instant
	bannerAt   Instant // the reconnecting banner shows from then on
	offline    bool    // navigator.onLine == false
	page       Page
	helloAfter uint64
	gapAsked   uint64 // contiguous seq a hello last asked to replay after

	// server side
	welcomed bool   // a welcome arrived on this page
	conv     string // "" while the visitor has no conversation
	logout   string // KeyLogout as this tab last knew it
	login    *Login // the page's latest login, sent with every hello; nil: none or logged out
	// A start frame creates the conversation once the visitor shows
	// intent: the panel is open or a message waits. It goes once per
	// socket (startGen is the generation it went on), or again at
	// startAt after a rate_limited refusal of the one named startID.
	startID     string
	startGen    int
	startAt     Instant
	last        uint64 // Last of the latest welcome
	historyMark uint64 // messages up to this seq are the page-load history
	serverLook  Look
	pageLook    Look

	// transcript: confirmed by seq, then pending in typing order
	confirmed []*Entry
	contig    int // confirmed[:contig] hold seqs 1..contig
	pending   []*Entry
	byClient  map[string]*Entry

	queue []*item
	done  map[string]bool // acked here: never adopt them again from Storage

	typing      bool
	typingUntil Instant

	open, visible bool
	seen          uint64
	seenConv      string
	readSent      uint64
	readAt        Instant
	divider       uint64
	storedUnread  int // persisted count, shown until the replay is complete
	savedUnread   int

	snap snapshot
}

// NewClient makes a Client for o.Bot and loads what Storage holds for it:
// the outbox (shown at once as sending), the read marker, the unread
// count and the last look.
func NewClient(o ClientOptions) *Client {
	c := &Client{
		bot: o.Bot, store: o.Storage, now: o.Now, random: o.Random,
		locale: o.Locale, tz: o.TZ, langs: o.Languages,
		byClient: make(map[string]*Entry), done: make(map[string]bool),
		visible: true,
	}
	if c.store == nil {
		c.store = new(MemoryStorage)
	}
	if c.now == nil {
		c.now = stoppedClock
	}
	if c.random == nil {
		c.random = newSplitMix(uint64(c.now()))
	}
	c.seen, c.seenConv = c.loadSeen()
	c.logout, _ = c.get(KeyLogout)
	c.storedUnread = c.loadUnread()
	c.savedUnread = c.storedUnread
	for _, it := range c.loadOutbox() {
		c.adopt(it)
	}
	c.snap = snapshot{unread: c.Unread(), banner: c.Banner(), typing: false}
	return c
}

// stoppedClock is the clock of a Client made without Now: the widget
// avoids package time, so the browser passes Date.now and tests their
// own clock; without one, time stands still.
func stoppedClock() Instant { return 1 }

func newSplitMix(seed uint64) func() uint64 {
	return func() uint64 {
		seed += 0x9e3779b97f4a7c15
		z := seed
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
}

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

// Connection.

// Start begins connecting; call it once the widget is loaded.
func (c *Client) Start() Update {
	var u Update
	c.stopped = false
	if c.conn == ConnIdle {
		c.dial(&u)
		c.bannerAt = c.now().Add(FirstBannerDelay)
	}
	return c.finish(u)
}

// Stop ends the connection for good (Porthole.destroy): the socket is
// hung up and never redialled. Start resumes.
func (c *Client) Stop() Update {
	var u Update
	c.stopped = true
	switch c.conn {
	case ConnConnecting, ConnHandshake, ConnOnline:
		u.Hangup = true
	}
	c.conn = ConnIdle
	c.typing = false
	return c.finish(u)
}

func (c *Client) dial(u *Update) {
	c.conn = ConnConnecting
	c.deadline = c.now().Add(HandshakeTimeout)
	c.redialAt = Instant(0)
	u.Dial = true
}

// Opened is called when the socket opens; the Update sends hello. page
// describes the host page now (it changes in single-page apps).
func (c *Client) Opened(page Page) Update {
	var u Update
	if c.stopped {
		u.Hangup = true
		return c.finish(u)
	}
	c.gen++
	c.conn = ConnHandshake
	c.deadline = c.now().Add(HandshakeTimeout)
	c.page = page
	u.Send = append(u.Send, c.hello())
	return c.finish(u)
}

// hello asks for everything after the highest contiguous seq held.
func (c *Client) hello() *Hello {
	visitor, _ := c.get(KeyVisitor)
	if len(visitor) > 1024 {
		visitor = ""
	}
	locale := c.locale
	if c.lang != "" {
		locale = c.lang
	}
	if len(locale) > 35 {
		locale = ""
	}
	tz := c.tz
	if len(tz) > 64 {
		tz = ""
	}
	p := c.page
	if len(p.URL) > MaxURL {
		p.URL = ""
	}
	if len(p.Referrer) > MaxURL {
		p.Referrer = ""
	}
	p.Title = clip(p.Title, MaxTitle)
	c.helloAfter = c.contigSeq()
	c.gapAsked = c.helloAfter
	return &Hello{Bot: c.bot, Visitor: visitor, After: c.helloAfter, Locale: locale, TZ: tz, Page: p, Caps: DefaultCaps, Login: c.login}
}

// clip cuts s to at most max characters, on a character boundary.
func clip(s string, max int) string {
	n := 0
	for i := range s {
		if n == max {
			return s[:i]
		}
		n++
	}
	return s
}

// Closed is called when the socket closes (or could not be created,
// with CloseAbnormal). It schedules the next dial with backoff: see
// Backoff. Nothing is lost: unacknowledged frames stay in the outbox.
func (c *Client) Closed(code int) Update {
	var u Update
	if c.stopped || c.conn == ConnIdle || c.conn == ConnWaiting {
		return c.finish(u)
	}
	now := c.now()
	if c.conn == ConnOnline && now.Sub(c.welcomedAt) >= StableAfter {
		c.attempt = 0
	}
	d := Backoff(c.attempt, code, c.random())
	c.attempt++
	c.conn = ConnWaiting
	c.redialAt = now.Add(d)
	c.deadline = Instant(0)
	c.typing = false
	if c.bannerAt.IsZero() {
		c.bannerAt = now.Add(BannerDelay)
	}
	return c.finish(u)
}

// SetNetwork records navigator.onLine; coming back online dials at once.
func (c *Client) SetNetwork(online bool) Update {
	var u Update
	c.offline = !online
	if online {
		c.wakeUp(&u)
	}
	return c.finish(u)
}

// wakeUp makes a scheduled dial immediate.
func (c *Client) wakeUp(u *Update) {
	if c.conn == ConnWaiting && !c.stopped {
		c.dial(u)
	}
}

// Backoff is the delay before reconnect attempt number attempt (0 for
// the first after a stable connection), with full jitter from r:
// uniform in [0, min(BackoffCap, BackoffBase·2^attempt)). A service
// restart (1012) or going away (1001) redials within [100 ms, 1 s) the
// first time, so widgets catch up at once yet spread over a second; a
// policy or protocol close (1002, 1003, 1007, 1008, 1009) waits
// [half, all) of min(BackoffCap, PolicyBackoff·2^attempt), as it is
// likely to happen again.
func Backoff(attempt, code int, r uint64) Span {
	if attempt < 0 {
		attempt = 0
	}
	switch code {
	case CloseServiceRestart, CloseGoingAway:
		if attempt == 0 {
			return 100*Millisecond + Span(r%uint64(900*Millisecond))
		}
	case ClosePolicy, CloseUnsupported, CloseProtocolError, CloseInvalidData, CloseTooBig:
		ceil := backoffCeiling(PolicyBackoff, attempt)
		half := ceil / 2
		return half + Span(r%uint64(ceil-half))
	}
	return Span(r % uint64(backoffCeiling(BackoffBase, attempt)))
}

func backoffCeiling(base Span, attempt int) Span {
	d := base
	for i := 0; i < attempt && d < BackoffCap; i++ {
		d *= 2
	}
	return min(d, BackoffCap)
}

// Tick runs what is due: a scheduled dial, a handshake timeout, a
// rate-limited message's resend, a read marker, the typing indicator's
// expiry and the reconnecting banner.
func (c *Client) Tick() Update {
	var u Update
	now := c.now()
	if c.typing && !now.Before(c.typingUntil) {
		c.typing = false
	}
	switch c.conn {
	case ConnWaiting:
		if !now.Before(c.redialAt) && !c.stopped {
			c.dial(&u)
		}
	case ConnConnecting, ConnHandshake:
		if !c.deadline.IsZero() && !now.Before(c.deadline) {
			c.deadline = Instant(0) // once; Closed follows
			u.Hangup = true
		}
	case ConnOnline:
		c.flush(&u)
	}
	return c.finish(u)
}

// Server frames.

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

// Visitor actions.

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
func (c *Client) SetSession(data RawJSON) Update {
	var u Update
	v, err := ParseJSON(data)
	if err != nil || v.Kind != JSONObject {
		u.Notice = &Notice{Code: CodeBadRequest, Message: "session data must be a JSON object"}
		return c.finish(u)
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

// SetLook sets the page's look options (Porthole.init); they override
// the bot's configured look field by field, texts key by key.
func (c *Client) SetLook(page Look) Update {
	c.pageLook = page
	return c.finish(Update{Change: ChangeLook})
}

// SetLanguage picks the texts' language and the locale sent in the next
// hello (Porthole.setLanguage); "" returns to the automatic choice.
func (c *Client) SetLanguage(lang string) Update {
	c.lang = lang
	return c.finish(Update{Change: ChangeLook})
}

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

// finish derives the changes of computed state and the next wake-up.
func (c *Client) finish(u Update) Update {
	now := c.now()
	s := snapshot{unread: c.Unread(), banner: c.banner(now), online: c.conn == ConnOnline, typing: c.typing}
	if s.unread != c.snap.unread {
		u.Change |= ChangeUnread
	}
	if s.banner != c.snap.banner || s.online != c.snap.online {
		u.Change |= ChangeConnection
	}
	if s.typing != c.snap.typing {
		u.Change |= ChangeTyping
	}
	c.snap = s
	if (c.synced() || s.unread == 0) && s.unread != c.savedUnread {
		c.savedUnread = s.unread
		if s.unread == 0 {
			c.store.Remove(c.key(KeyUnread))
		} else {
			c.store.Set(c.key(KeyUnread), strconv.Itoa(s.unread))
		}
	}
	u.Wake = c.wake(now)
	return u
}

func (c *Client) wake(now Instant) Span {
	var t Instant
	at := func(x Instant) {
		if !x.IsZero() && (t.IsZero() || x.Before(t)) {
			t = x
		}
	}
	if c.typing {
		at(c.typingUntil)
	}
	switch c.conn {
	case ConnWaiting:
		at(c.redialAt)
	case ConnConnecting, ConnHandshake:
		at(c.deadline)
	case ConnOnline:
		at(c.readAt)
		if c.startAt.After(now) {
			at(c.startAt)
		}
		for _, it := range c.queue {
			if it.gen != c.gen && it.retryAt.After(now) {
				at(it.retryAt)
				break
			}
		}
	}
	if c.conn != ConnOnline && c.bannerAt.After(now) {
		at(c.bannerAt)
	}
	if t.IsZero() {
		return 0
	}
	return max(t.Sub(now), Millisecond)
}

// Reading the state.

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

// Typing reports whether the bot is typing.
func (c *Client) Typing() bool { return c.typing }

// Online reports whether the widget is connected and welcomed.
func (c *Client) Online() bool { return c.conn == ConnOnline }

// Conn returns the connection state.
func (c *Client) Conn() ConnState { return c.conn }

// Banner returns the text key of the connection banner to show
// (TextOffline, TextReconnecting) or "" for none. The reconnecting
// banner waits BannerDelay, so a quick reconnect never flashes it.
func (c *Client) Banner() string { return c.banner(c.now()) }

func (c *Client) banner(now Instant) string {
	if c.conn == ConnOnline || c.conn == ConnIdle {
		return ""
	}
	if c.offline {
		return TextOffline
	}
	if c.bannerAt.IsZero() || now.Before(c.bannerAt) {
		return ""
	}
	return TextReconnecting
}

// Look returns the bot's look with the page's options on top.
func (c *Client) Look() Look { return MergeLook(c.serverLook, c.pageLook) }

// Language returns the language of the texts: SetLanguage's, else the
// look's locale, else the page's and the browser's languages, else en.
func (c *Client) Language() string {
	configured := c.lang
	if configured == "" {
		configured = c.Look().Locale
	}
	var page string
	var browser []string
	if len(c.langs) > 0 {
		page, browser = c.langs[0], c.langs[1:]
	}
	return PickLanguage(configured, page, browser...)
}

// Texts returns the UI texts in Language with the look's overrides.
func (c *Client) Texts() Texts { return NewTexts(c.Language(), c.Look().Texts) }

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

// MergeLook returns base with every non-empty field of over on top;
// texts are merged key by key.
func MergeLook(base, over Look) Look {
	pick := func(a, b string) string {
		if b != "" {
			return b
		}
		return a
	}
	out := Look{
		Title: pick(base.Title, over.Title), Subtitle: pick(base.Subtitle, over.Subtitle),
		Icon: pick(base.Icon, over.Icon), Position: pick(base.Position, over.Position),
		BrandColor: pick(base.BrandColor, over.BrandColor), Greeting: pick(base.Greeting, over.Greeting),
		Locale: pick(base.Locale, over.Locale), Texts: base.Texts,
	}
	if len(over.Texts) > 0 {
		out.Texts = make(map[string]string, len(base.Texts)+len(over.Texts))
		for k, v := range base.Texts {
			out.Texts[k] = v
		}
		for k, v := range over.Texts {
			out.Texts[k] = v
		}
	}
	return out
}

// Transcript bookkeeping.

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
