package widget

// The connection: dialling, the hello handshake, reconnecting with
// backoff, and the state and banner the UI shows for it.

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

// ConnState is the state of the connection.
type ConnState uint8

const (
	ConnIdle       ConnState = iota // not started, or stopped
	ConnConnecting                  // socket being opened
	ConnHandshake                   // socket open, hello sent, no welcome yet
	ConnOnline                      // welcomed: frames flow
	ConnWaiting                     // closed; a new dial is scheduled
)

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
