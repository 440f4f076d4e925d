package server

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/widget"
)

// socket is one widget connection. A reader goroutine (serve) handles
// client frames. Writes are done by a writer goroutine that runs only while
// there is something to write: the producers (the reader, bus events)
// leave their work under mu and start one if none runs. One writer at a
// time owns every data write, so a slow client only ever holds up itself.
type socket struct {
	srv  *Server
	conn *websocket.Conn
	// botID is the bot the socket talks to, and joined its config when
	// the socket opened; bot() gives the current one.
	botID  string
	joined *Bot
	// origin is the page's normalised origin ("" for a client that sent
	// none) and self whether it is this server's own: a reload checks
	// them against the bot's new origins (Reload).
	origin string
	self   bool
	ip     string
	// release gives the address's socket slot back (Limiter.Connect).
	release func()

	// visitor is the browser's visitor id, which its token names; a
	// logout replaces it with a fresh one. The reader sets it, under mu
	// once the writer runs (the writer mints the token for welcomes).
	visitor string
	// key is what the socket's conversation is found and created by: the
	// visitor id, or the user key (UserKey) once a verified login said
	// who the visitor is, so that a signed-in user's conversation follows
	// the user rather than the browser. Only the reader uses it.
	key string
	// info is what the latest hello said about the visitor: the start of
	// a conversation, and a login that finds the user's, record it.
	info provider.Visitor
	// conv is the socket's conversation; its ID is "" until one exists,
	// since a hello never creates one (a start, or the first message,
	// does). The reader sets it, under mu once the writer runs; the
	// writer takes it with its work.
	conv Conv
	// held are session and login frames waiting for the conversation;
	// only the reader uses it.
	held *held

	// mu guards the work waiting for the writer and the writer's state.
	// Nobody holds it while writing, so bus events never wait for the
	// client: they only leave a mark.
	mu sync.Mutex
	// live says the socket runs: a writer may start and the heartbeat
	// re-arms. Set once the welcome is queued, cleared when it ends.
	live    bool
	writing bool // a writer runs; it takes all the work before it exits
	writers sync.WaitGroup
	// out holds the replies to the client's frames (acks, errors) in
	// order; space is signalled when a full queue gets room.
	out   []widget.Frame
	space chan struct{}
	// first is the welcome made at the start, to write with a replay of
	// what is stored after firstAfter before anything else.
	first      *widget.Welcome
	firstAfter uint64
	// greet asks for a new welcome and a replay after greetAfter: the
	// client said hello again.
	greet      bool
	greetAfter uint64
	// fetch says the transcript advanced: read the store.
	fetch bool
	// typing is the latest typing state not yet written (a bus.Typing
	// state). Typing is a state, not a stream, so a burst of changes
	// costs one frame, never queue space.
	typing uint8
	// statuses holds delivery states not yet written, one per message
	// (a newer state replaces an older one).
	statuses []*widget.Status
	// sent is the last seq written. The writer sets it; the heartbeat
	// reads it to notice a lost notification (catchUp).
	sent atomic.Uint64

	// ctx ends with the socket; cancel ends it.
	ctx         context.Context
	cancel      context.CancelFunc
	dropped     atomic.Bool
	pinger      *time.Timer // the heartbeat
	unsubscribe func()      // from the conversation's events
}

// bot is the socket's bot as the running configuration has it, so that
// a reload's new look and identity secret apply to open sockets; the
// config it joined with once a reload removed the bot (Reload closes
// the socket then).
func (so *socket) bot() *Bot {
	if b := so.srv.bot(so.botID); b != nil {
		return b
	}
	return so.joined
}

// start waits for the hello, looks the visitor's conversation up,
// subscribes to it if there is one and hands the welcome to a writer. It
// reports false when the socket must end instead.
func (so *socket) start() bool {
	ctx := so.ctx
	hello, ok := so.awaitHello(ctx)
	if !ok {
		return false
	}
	refused, err := so.open(ctx, hello)
	if err != nil {
		so.srv.log.Error("cannot look up conversation", "bot", so.bot().Config.ID, "error", err)
		so.conn.Close(websocket.StatusInternalError, "store unavailable, retry later")
		return false
	}
	if so.conv.ID != "" {
		so.unsubscribe = so.srv.bus.Subscribe(so.conv.ID, so.onEvent)
	}
	welcome, err := so.welcome(ctx, so.visitor, so.conv)
	if err != nil {
		so.conn.Close(websocket.StatusInternalError, "cannot mint visitor token")
		return false
	}
	so.mu.Lock()
	so.first, so.firstAfter = welcome, hello.After
	so.live = true
	so.wakeLocked()
	so.mu.Unlock()
	so.startHeartbeat()
	if refused != nil { // after the welcome: the visitor goes on unsigned
		so.reply(ctx, errorFrame(refused, ""))
	}
	return true
}

// serve reads the client's frames until the socket closes, then ends it.
// It runs on a fresh goroutine, whose small stack is what an idle socket
// keeps while it waits for the next frame.
func (so *socket) serve() {
	so.read(so.ctx)
	so.end()
}

// end cancels the socket, waits for its writer and lets go of the rest.
func (so *socket) end() {
	so.cancel()
	so.mu.Lock()
	so.live = false
	so.mu.Unlock()
	so.writers.Wait()
	if so.pinger != nil {
		so.pinger.Stop()
	}
	if so.unsubscribe != nil {
		so.unsubscribe()
	}
	so.conn.CloseNow()
	so.srv.sockets.Delete(so)
	so.srv.releaseSocket(so.release)
}

// awaitHello reads until a valid hello arrives or the hello timeout ends.
// Invalid frames meanwhile get error frames, written directly since the
// writer is not running yet.
func (so *socket) awaitHello(ctx context.Context) (*widget.Hello, bool) {
	// The timer closes the socket with a status the client can read; a
	// cancelled read context would drop the connection without one.
	timeout := so.srv.opts.HelloTimeout
	timer := time.AfterFunc(timeout, func() {
		so.conn.Close(websocket.StatusPolicyViolation, "hello expected within "+timeout.String())
	})
	defer timer.Stop()
	for {
		_, data, err := so.conn.Read(ctx)
		if err != nil {
			return nil, false
		}
		f, err := widget.Decode(data)
		var problem *widget.ErrorFrame
		switch {
		case err != nil:
			problem = errorFrame(err, "")
		case f.Type() != widget.TypeHello:
			problem = &widget.ErrorFrame{Code: widget.CodeBadRequest, Message: "the first frame must be hello"}
		case f.(*widget.Hello).Bot != so.bot().Config.ID:
			problem = &widget.ErrorFrame{Code: widget.CodeBadRequest, Message: "hello.bot must match the bot in the URL"}
		default:
			return f.(*widget.Hello), true
		}
		if so.writeFrame(ctx, problem) != nil {
			return nil, false
		}
	}
}

// open resolves the visitor from the token (a bad one starts a fresh
// visitor: the token still minted for it is what its conversation will
// be keyed to) and looks its conversation up, or, when the hello carries
// a verified login, the user's (helloLogin). It creates nothing. refused
// is a hello login that did not verify, for an error frame after the
// welcome.
func (so *socket) open(ctx context.Context, h *widget.Hello) (refused, err error) {
	visitor, ok := so.srv.keys.Visitor(so.bot().Config.ID, h.Visitor)
	if !ok {
		visitor = NewVisitorID()
		so.srv.metrics.visitorStarted(so.botID)
	}
	so.visitor, so.key = visitor, visitor
	so.info = visitorInfo(visitor, h)
	if h.Login != nil {
		return so.helloLogin(ctx, h.Login)
	}
	conv, found, err := so.find(ctx, so.key)
	if found {
		so.conv = conv
	}
	return nil, err
}

// find looks up the conversation key finds (Service.Open without
// Create), recording what the hello said about the visitor.
func (so *socket) find(ctx context.Context, key string) (Conv, bool, error) {
	c, found, _, err := so.srv.service.Open(ctx, Opening{Bot: so.bot().Config.ID, Key: key, Visitor: so.info})
	return c, found, err
}

// visitorInfo is what hello h says about visitor, for the providers.
func visitorInfo(visitor string, h *widget.Hello) provider.Visitor {
	return provider.Visitor{ID: visitor, Locale: h.Locale, TZ: h.TZ, PageURL: h.Page.URL, Referrer: h.Page.Referrer}
}

// welcome makes the welcome for conversation c with a fresh token for
// visitor: conversation "" and last 0 when there is none yet.
func (so *socket) welcome(ctx context.Context, visitor string, c Conv) (*widget.Welcome, error) {
	token, err := so.srv.keys.MintVisitor(so.bot().Config.ID, visitor)
	if err != nil {
		return nil, err
	}
	if c.ID != "" {
		if now, err := so.srv.service.Get(ctx, c.ID); err == nil {
			c = now
		}
	}
	return &widget.Welcome{Visitor: token, Conversation: c.ID, Last: c.Last, Widget: so.bot().Config.Widget.Look()}, nil
}

// onEvent runs on the bus's goroutine: it never blocks.
func (so *socket) onEvent(ev bus.Event) {
	switch {
	case ev.Seq > 0:
		so.mu.Lock()
		so.fetch = true
		so.wakeLocked()
		so.mu.Unlock()
	case ev.Typing != bus.TypingNone:
		so.mu.Lock()
		so.typing = ev.Typing
		so.wakeLocked()
		so.mu.Unlock()
	case ev.Status.ClientID != "":
		so.addStatus(&widget.Status{ID: ev.Status.ClientID, State: ev.Status.State, Error: ev.Status.Reason})
	}
}

// startHeartbeat pings the client every ping interval; a client that
// does not answer within the interval is gone (a sleeping laptop, a dead
// mobile link) and the socket is cancelled. It is a timer rather than a
// goroutine, so an idle socket keeps no stack for it: each ping runs on
// the timer's own short-lived goroutine.
func (so *socket) startHeartbeat() {
	interval := so.srv.opts.PingInterval
	// Armed by Reset only once assigned, since the callback re-arms it.
	so.pinger = time.AfterFunc(math.MaxInt64, func() {
		ctx, cancel := context.WithTimeout(so.ctx, interval)
		err := so.conn.Ping(ctx)
		cancel()
		if err != nil {
			so.cancel()
			return
		}
		so.catchUp()
		so.mu.Lock()
		if so.live { // else end has stopped the timer for good
			so.pinger.Reset(interval)
		}
		so.mu.Unlock()
	})
	so.pinger.Reset(interval)
}

// catchUp runs on each heartbeat: when the store holds messages of the
// socket's conversation that were not written, an event was lost (a bus
// between processes dropped it, say), and the writer fetches them now.
// A lost notification so costs at most one heartbeat of latency.
func (so *socket) catchUp() {
	so.mu.Lock()
	conv := so.conv.ID
	so.mu.Unlock()
	if conv == "" {
		return
	}
	c, err := so.srv.service.Get(so.ctx, conv)
	if err != nil || c.Last <= so.sent.Load() {
		return
	}
	so.mu.Lock()
	so.fetch = true
	so.wakeLocked()
	so.mu.Unlock()
}

// lookup looks the conversation up again for a repeated hello on a
// socket that has none, and attaches the socket to it if another tab
// started it meanwhile. It reports whether it did.
func (so *socket) lookup(ctx context.Context, h *widget.Hello) bool {
	so.info = visitorInfo(so.visitor, h)
	c, found, err := so.find(ctx, so.key)
	if err != nil {
		so.srv.log.Warn("cannot look up conversation", "bot", so.bot().Config.ID, "error", err)
	}
	if !found {
		return false
	}
	so.attach(c, h.After)
	return true
}

// begin starts the socket's conversation for the start or first message
// id, or finds the one another tab started. The settings it held are
// applied before the bot is asked to greet, and answered once the
// socket has its conversation; the socket then subscribes and gets a new
// welcome with the replay after 0, as for a repeated hello. A start the
// limits refuse creates nothing and is answered rate_limited with
// retry_ms; a store failure internal with retry_ms. The held settings
// wait on either way. It reports whether the socket has a conversation.
func (so *socket) begin(ctx context.Context, id string) bool {
	var answers []widget.Frame
	c, wait, err := so.srv.startConversation(ctx, so.bot(), so.ip, so.key, so.info, func(c Conv) {
		answers = so.applyHeld(ctx, c.ID)
	})
	switch {
	case wait > 0:
		so.reply(ctx, &widget.ErrorFrame{Code: widget.CodeRateLimited, Message: "too many new conversations from this network; wait a moment", ID: id, RetryMS: max(wait.Milliseconds(), 1)})
		return false
	case err != nil:
		so.srv.log.Error("cannot start conversation", "bot", so.bot().Config.ID, "error", err)
		so.reply(ctx, &widget.ErrorFrame{Code: widget.CodeInternal, Message: "the conversation could not be started; try again", ID: id, RetryMS: 1000})
		return false
	}
	so.attach(c, 0)
	for _, f := range answers {
		so.reply(ctx, f)
	}
	return true
}

// attach makes c the socket's conversation: it subscribes to its events,
// then asks the writer for a new welcome and the replay after after.
func (so *socket) attach(c Conv, after uint64) {
	so.unsubscribe = so.srv.bus.Subscribe(c.ID, so.onEvent)
	so.mu.Lock()
	so.conv = c
	so.greet, so.greetAfter = true, after
	so.wakeLocked()
	so.mu.Unlock()
}
