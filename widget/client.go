package widget

import (
	"strconv"
)

// The Client is the widget's brain: everything the browser program decides
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
	// FrameLang is the language the server picked for the loader's
	// frame: the one to start in, unless the page or the bot says
	// otherwise.
	FrameLang string
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
	// Texts: fetch the built-in texts of this language (the server's
	// texts asset) and hand them, or the failure, to TextsLoaded.
	Texts string
}

// Notice is an error frame or a local refusal, for the UI.
type Notice struct {
	_       noCompare
	Code    string // CodeRateLimited, CodeTooLarge, CodeOutboxFull, ...
	Message string // the server's English detail, for logs and the error event
	ID      string // the client message it concerns, if any
}

type snapshot struct {
	_      noCompare
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

	// texts: the built-in texts of the language shown ("" until the
	// first are here); asked is the language being fetched, failed the
	// last one that could not be (asked for again after the next welcome).
	frameLang string
	builtin   JSONValue
	shown     string
	asked     string
	failed    string

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
		frameLang: o.FrameLang,
		byClient:  make(map[string]*Entry), done: make(map[string]bool),
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
	c.wantTexts(&u)
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
