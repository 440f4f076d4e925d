package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

// Socket limits.
const (
	// sendQueue bounds the replies (acks, errors) waiting for a socket's
	// writer. When it is full the socket's reader waits, so a client that
	// sends without reading is slowed down, and dropped once a write
	// stalls for the write timeout; nobody else is held up.
	sendQueue = 64
	// maxPendingStatus bounds delivery statuses not yet written; more
	// than this many messages changing state unseen means the client is
	// not reading at all.
	maxPendingStatus = 512
	// replayBatch is how many messages one store read fetches.
	replayBatch = 100
	// readBuffer and writeBuffer size a socket's buffers (see
	// smallBuffers): most widget frames fit, and a larger one costs one
	// more read or write call, not a copy.
	readBuffer  = 512
	writeBuffer = 1024
)

// handleWS upgrades GET /v1/ws?bot=ID after checking the bot's allowed
// origins and runs the start of the porthole.v1 session (hello, welcome).
// Then it returns, so that net/http lets go of the request and of the
// stack the handshake grew, and the socket's reader carries on in a
// goroutine of its own until the socket closes.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	botID := r.URL.Query().Get("bot")
	bot := s.bots[botID]
	if bot == nil {
		httpError(w, http.StatusNotFound, widget.CodeBadRequest, "unknown bot; the URL must name a configured bot: /v1/ws?bot=ID")
		return
	}
	if !s.originAllowed(bot, r) {
		s.log.Info("origin refused", "bot", botID, "origin", r.Header.Get("Origin"))
		httpError(w, http.StatusForbidden, widget.CodeForbiddenOrigin, "this site may not embed this bot; add its origin to the bot's origins")
		return
	}
	ip := s.clientIP(r)
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, widget.CodeUpstreamUnavailable, "server is restarting; reconnect in a moment")
		return
	}
	if s.conns >= s.cfg.Limits.MaxConnections {
		s.mu.Unlock()
		s.log.Warn("socket refused: the server is at limits.max_connections", "max_connections", s.cfg.Limits.MaxConnections)
		w.Header().Set("Retry-After", "30")
		httpError(w, http.StatusServiceUnavailable, widget.CodeUpstreamUnavailable, "the server is at its connection ceiling; reconnect later")
		return
	}
	key := limitKey(ip)
	if s.perIP[key] >= s.cfg.Limits.ConnectionsPerIP {
		s.mu.Unlock()
		httpError(w, http.StatusTooManyRequests, widget.CodeRateLimited, "too many connections from this address")
		return
	}
	s.perIP[key]++
	s.conns++
	s.mu.Unlock()

	conn, err := websocket.Accept(smallBuffers{w}, r, &websocket.AcceptOptions{
		Subprotocols:       []string{widget.Protocol},
		InsecureSkipVerify: true, // origins are checked above, per bot
	})
	if err != nil {
		s.releaseIP(ip)
		return // Accept has answered the client
	}
	if conn.Subprotocol() != widget.Protocol {
		conn.Close(websocket.StatusPolicyViolation, "subprotocol "+widget.Protocol+" required")
		s.releaseIP(ip)
		return
	}
	conn.SetReadLimit(widget.MaxFrame)
	so := &socket{srv: s, conn: conn, bot: bot, ip: ip, space: make(chan struct{}, 1)}
	// Not the request's context: net/http cancels that when the handler
	// returns, and the socket outlives it.
	so.ctx, so.cancel = context.WithCancel(context.Background())
	s.sockets.Store(so, struct{}{})
	if !so.start() {
		so.end()
		return
	}
	go so.serve()
}

// smallBuffers hands the WebSocket connection buffers of its own, smaller
// than the 4 KB reader and writer net/http passes on at the hijack, which
// an idle socket would keep for its whole life.
type smallBuffers struct{ http.ResponseWriter }

// Hijack takes the connection from net/http. Bytes the client sent after
// its request (often its first frame) are moved into the new reader's
// buffer, where coder/websocket expects them. net/http has flushed the
// 101 response already.
func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// The socket has its own hello timeout and heartbeat: it must not
	// keep a read or write deadline of its request (net/http's header
	// deadline, or a body deadline), and coder/websocket clears none.
	if err := conn.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	n := brw.Reader.Buffered()
	br := bufio.NewReaderSize(conn, max(readBuffer, n))
	if n > 0 {
		early, _ := brw.Reader.Peek(n)
		br.Reset(io.MultiReader(bytes.NewReader(early), conn))
		if _, err := br.Peek(n); err != nil { // reads only early
			conn.Close()
			return nil, nil, err
		}
	}
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, writeBuffer)), nil
}

// releaseIP gives back the connection slots, the address's and the
// server's, of a closed socket.
func (s *Server) releaseIP(ip string) {
	key := limitKey(ip)
	s.mu.Lock()
	if s.perIP[key]--; s.perIP[key] <= 0 {
		delete(s.perIP, key)
	}
	s.conns--
	s.mu.Unlock()
}

// socket is one widget connection. A reader goroutine (serve) handles
// client frames. Writes are done by a writer goroutine that runs only while
// there is something to write: the producers (the reader, bus events)
// leave their work under mu and start one if none runs. One writer at a
// time owns every data write, so a slow client only ever holds up itself.
type socket struct {
	srv  *Server
	conn *websocket.Conn
	bot  *Bot
	ip   string

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
	conv store.Conversation
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
		so.srv.log.Error("cannot look up conversation", "bot", so.bot.Config.ID, "error", err)
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
	so.srv.releaseIP(so.ip)
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
		case f.(*widget.Hello).Bot != so.bot.Config.ID:
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
	visitor, ok := so.srv.keys.Visitor(so.bot.Config.ID, h.Visitor)
	if !ok {
		visitor = NewVisitorID()
	}
	so.visitor, so.key = visitor, visitor
	so.info = visitorInfo(visitor, h)
	if h.Login != nil {
		return so.helloLogin(ctx, h.Login)
	}
	conv, found, err := so.srv.service.Open(ctx, so.bot.Config.ID, so.key, so.info)
	if found {
		so.conv = conv
	}
	return nil, err
}

// visitorInfo is what hello h says about visitor, for the providers.
func visitorInfo(visitor string, h *widget.Hello) provider.Visitor {
	return provider.Visitor{ID: visitor, Locale: h.Locale, TZ: h.TZ, PageURL: h.Page.URL, Referrer: h.Page.Referrer}
}

// welcome makes the welcome for conversation c with a fresh token for
// visitor: conversation "" and last 0 when there is none yet.
func (so *socket) welcome(ctx context.Context, visitor string, c store.Conversation) (*widget.Welcome, error) {
	token, err := so.srv.keys.MintVisitor(so.bot.Config.ID, visitor)
	if err != nil {
		return nil, err
	}
	if c.ID != "" {
		if now, err := so.srv.store.Get(ctx, c.ID); err == nil {
			c = now
		}
	}
	return &widget.Welcome{Visitor: token, Conversation: c.ID, Last: c.Last, Widget: so.bot.Config.Widget.Look()}, nil
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

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default: // already signalled
	}
}

// wakeLocked starts a writer for the work just left, unless one runs (it
// takes the work before it exits) or the socket is not live. The caller
// holds so.mu.
func (so *socket) wakeLocked() {
	if so.writing || !so.live {
		return
	}
	so.writing = true
	so.writers.Add(1)
	go so.write()
}

// addStatus records a delivery state for the writer, replacing an older
// state of the same message.
func (so *socket) addStatus(st *widget.Status) {
	so.mu.Lock()
	replaced := false
	for i, old := range so.statuses {
		if old.ID == st.ID {
			so.statuses[i], replaced = st, true
			break
		}
	}
	if !replaced {
		so.statuses = append(so.statuses, st)
	}
	overflow := len(so.statuses) > maxPendingStatus
	if !overflow {
		so.wakeLocked()
	}
	so.mu.Unlock()
	if overflow {
		so.drop()
	}
}

// reply hands a frame answering the client to the writer. When the queue
// is full the reader waits here: the client is sending faster than it
// reads, and only its own socket slows down.
func (so *socket) reply(ctx context.Context, f widget.Frame) {
	for {
		so.mu.Lock()
		if len(so.out) < sendQueue {
			so.out = append(so.out, f)
			so.wakeLocked()
			so.mu.Unlock()
			return
		}
		so.mu.Unlock()
		select {
		case <-so.space:
		case <-ctx.Done():
			return
		}
	}
}

// drop closes a client that does not keep up, once.
func (so *socket) drop() {
	if so.dropped.CompareAndSwap(false, true) {
		so.mu.Lock()
		conv := so.conv.ID
		so.mu.Unlock()
		so.srv.log.Info("dropping slow client", "bot", so.bot.Config.ID, "conversation", conv)
		go so.conn.Close(websocket.StatusTryAgainLater, "client too slow")
	}
}

// work is what a writer takes from the socket in one round.
type work struct {
	conv     store.Conversation // as it was when the work was taken
	visitor  string             // likewise, for the welcome's token
	greet    bool
	after    uint64
	first    *widget.Welcome
	reply    widget.Frame
	fetch    bool
	typing   uint8
	statuses []*widget.Status
}

// takeLocked moves the waiting work to the writer: the first welcome on
// its own, then everything pending but one reply at a time, so the
// reader's queue drains as frames are written. It reports false when
// there is nothing. The caller holds so.mu.
func (so *socket) takeLocked() (w work, ok bool) {
	if so.first != nil { // alone, so a hello meanwhile gets its own welcome
		w = work{conv: so.conv, visitor: so.visitor, greet: true, first: so.first, after: so.firstAfter}
		so.first = nil
		return w, true
	}
	w = work{conv: so.conv, visitor: so.visitor, greet: so.greet, after: so.greetAfter, fetch: so.fetch, typing: so.typing, statuses: so.statuses}
	so.greet, so.fetch, so.typing, so.statuses = false, false, 0, nil
	if len(so.out) > 0 {
		if len(so.out) == sendQueue {
			signal(so.space)
		}
		w.reply = so.out[0]
		so.out[0] = nil
		if so.out = so.out[1:]; len(so.out) == 0 {
			so.out = nil // an idle socket keeps no queue
		}
	}
	ok = w.greet || w.reply != nil || w.fetch || w.typing != 0 || w.statuses != nil
	return w, ok
}

// write runs while the socket has work: it is the only goroutine that
// writes data frames, and it ends when nothing is left, so an idle
// socket has no writer. A failed write ends the socket.
func (so *socket) write() {
	defer so.writers.Done()
	for {
		so.mu.Lock()
		w, ok := so.takeLocked()
		if !ok {
			so.writing = false
		}
		so.mu.Unlock()
		if !ok {
			return
		}
		if err := so.do(so.ctx, w); err != nil {
			so.cancel() // the socket ends; writing stays set, so no writer starts
			return
		}
	}
}

// do writes one round of work: a welcome and its replay first, then the
// reply, then messages stored meanwhile, and only then the typing state
// and delivery statuses, so that neither goes ahead of the message it is
// about.
func (so *socket) do(ctx context.Context, w work) error {
	conv := w.conv.ID
	if w.greet {
		welcome := w.first
		if welcome == nil {
			var err error
			if welcome, err = so.welcome(ctx, w.visitor, w.conv); err != nil {
				return err
			}
		}
		if err := so.writeFrame(ctx, welcome); err != nil {
			return err
		}
		so.sent.Store(w.after)
		if w.after > welcome.Last {
			so.sent.Store(0) // the client knows a different transcript: send it all
		}
		if err := so.states(ctx, conv, so.sent.Load()); err != nil {
			return err
		}
		if err := so.flush(ctx, conv); err != nil {
			return err
		}
	}
	if w.reply != nil {
		if err := so.writeFrame(ctx, w.reply); err != nil {
			return err
		}
	}
	if w.fetch || w.typing != 0 || w.statuses != nil {
		if err := so.flush(ctx, conv); err != nil {
			return err
		}
	}
	if w.typing != 0 {
		if err := so.writeFrame(ctx, &widget.Typing{On: w.typing == bus.TypingOn}); err != nil {
			return err
		}
	}
	for _, st := range w.statuses {
		if err := so.writeFrame(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

// recentStates is how many of the messages a reconnecting widget already
// holds are read again for delivery states that changed while it was away.
const recentStates = 50

// states writes the delivery states of the visitor's messages among the
// last recentStates up to seq, which the widget already holds: one that
// failed while the widget was away shows failed with its retry button,
// and the newest one shows delivered if it was.
func (so *socket) states(ctx context.Context, conv string, upTo uint64) error {
	if upTo == 0 || conv == "" {
		return nil
	}
	from := upTo - min(upTo, recentStates)
	ms, err := so.srv.store.Read(ctx, conv, from, int(upTo-from))
	if err != nil {
		so.srv.log.Error("replay read failed", "conversation", conv, "error", err)
		return err
	}
	newest := -1
	for i, m := range ms {
		if m.From == store.FromUser && m.ClientID != "" {
			newest = i
		}
	}
	for i, m := range ms {
		if m.From != store.FromUser || m.ClientID == "" {
			continue
		}
		var st *widget.Status
		switch {
		case m.State == store.Failed:
			st = &widget.Status{ID: m.ClientID, State: widget.StateFailed, Error: m.Reason}
		case m.State == store.Delivered && i == newest:
			st = &widget.Status{ID: m.ClientID, State: widget.StateDelivered}
		}
		if st != nil {
			if err := so.writeFrame(ctx, st); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush writes every stored message of conv after so.sent, then a
// failed status for each failed user message among them, so a reloaded
// widget shows its retry button.
func (so *socket) flush(ctx context.Context, conv string) error {
	if conv == "" {
		return nil
	}
	for {
		ms, err := so.srv.store.Read(ctx, conv, so.sent.Load(), replayBatch)
		if err != nil {
			so.srv.log.Error("replay read failed", "conversation", conv, "error", err)
			return err
		}
		for _, m := range ms {
			body, err := widget.DecodeBody(m.Body)
			if err != nil {
				so.srv.log.Error("stored body does not decode", "conversation", conv, "seq", m.Seq, "error", err)
				body = widget.Text("[this message could not be shown]")
			}
			f := &widget.Msg{Seq: m.Seq, ID: m.ID, From: string(m.From), At: m.At.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Body: body}
			if m.From == store.FromUser {
				f.ClientID = m.ClientID
			}
			if err := so.writeFrame(ctx, f); err != nil {
				return err
			}
			if m.State == store.Failed {
				if err := so.writeFrame(ctx, &widget.Status{ID: m.ClientID, State: widget.StateFailed, Error: m.Reason}); err != nil {
					return err
				}
			}
			so.sent.Store(m.Seq)
		}
		if len(ms) < replayBatch {
			return nil
		}
	}
}

// writeFrame writes one frame; a client that has not taken it within the
// write timeout is not reading and is dropped.
func (so *socket) writeFrame(ctx context.Context, f widget.Frame) error {
	ctx, cancel := context.WithTimeout(ctx, so.srv.opts.WriteTimeout)
	defer cancel()
	err := so.conn.Write(ctx, websocket.MessageText, widget.Encode(f))
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		so.drop()
	}
	return err
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

// read handles client frames until the socket closes. A malformed or
// unexpected frame gets an error frame; the socket stays open.
func (so *socket) read(ctx context.Context) {
	for {
		typ, data, err := so.conn.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			so.reply(ctx, &widget.ErrorFrame{Code: widget.CodeBadRequest, Message: "frames must be JSON text"})
			continue
		}
		f, err := widget.Decode(data)
		if err != nil {
			so.reply(ctx, errorFrame(err, ""))
			continue
		}
		so.handle(ctx, f)
	}
}

func (so *socket) handle(ctx context.Context, f widget.Frame) {
	svc := so.srv.service
	switch f := f.(type) {
	case *widget.Hello:
		if f.Bot != so.bot.Config.ID {
			so.reply(ctx, &widget.ErrorFrame{Code: widget.CodeBadRequest, Message: "hello.bot must match the bot in the URL"})
			return
		}
		if so.conv.ID == "" && so.lookup(ctx, f) {
			return // another tab started it meanwhile: attached and welcomed
		}
		so.mu.Lock()
		if !so.greet { // else one is pending; the client will see it
			so.greet, so.greetAfter = true, f.After
			so.wakeLocked()
		}
		so.mu.Unlock()
	case *widget.Start:
		if so.conv.ID == "" { // else a no-op: the client has its welcome
			so.begin(ctx, f.ID)
		}
	case *widget.Send:
		so.post(ctx, f.ID, Inbound{ClientID: f.ID, Text: f.Text})
	case *widget.Postback:
		so.postback(ctx, f)
	case *widget.Session:
		if !so.allow(ctx, f.ID) {
			return
		}
		if so.conv.ID == "" {
			so.hold(ctx, f.ID, f)
			return
		}
		if err := svc.SetSession(ctx, so.conv.ID, f.Data); err != nil {
			so.reply(ctx, so.storeError(err, f.ID))
			return
		}
		so.reply(ctx, &widget.Ack{ID: f.ID})
	case *widget.Login:
		if !so.allow(ctx, f.ID) {
			return
		}
		if f.User == "" {
			so.logout(ctx, f.ID)
		} else {
			so.login(ctx, f)
		}
	case *widget.Read:
		if so.conv.ID == "" {
			return // nothing to have read
		}
		if err := svc.MarkRead(ctx, so.conv.ID, f.Seq); err != nil {
			so.srv.log.Warn("cannot record read marker", "conversation", so.conv.ID, "error", err)
		}
	default:
		so.reply(ctx, &widget.ErrorFrame{Code: widget.CodeBadRequest, Message: f.Type() + " is a server frame; a client may send hello, start, send, postback, session, login and read"})
	}
}

// lookup looks the conversation up again for a repeated hello on a
// socket that has none, and attaches the socket to it if another tab
// started it meanwhile. It reports whether it did.
func (so *socket) lookup(ctx context.Context, h *widget.Hello) bool {
	so.info = visitorInfo(so.visitor, h)
	c, found, err := so.srv.service.Open(ctx, so.bot.Config.ID, so.key, so.info)
	if err != nil {
		so.srv.log.Warn("cannot look up conversation", "bot", so.bot.Config.ID, "error", err)
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
	c, wait, err := so.srv.startConversation(ctx, so.bot, so.ip, so.key, so.info, func(c store.Conversation) {
		answers = so.applyHeld(ctx, c.ID)
	})
	switch {
	case wait > 0:
		so.reply(ctx, &widget.ErrorFrame{Code: widget.CodeRateLimited, Message: "too many new conversations from this network; wait a moment", ID: id, RetryMS: max(wait.Milliseconds(), 1)})
		return false
	case err != nil:
		so.srv.log.Error("cannot start conversation", "bot", so.bot.Config.ID, "error", err)
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
func (so *socket) attach(c store.Conversation, after uint64) {
	so.unsubscribe = so.srv.bus.Subscribe(c.ID, so.onEvent)
	so.mu.Lock()
	so.conv = c
	so.greet, so.greetAfter = true, after
	so.wakeLocked()
	so.mu.Unlock()
}

// held are the session and login frames a socket got before its
// conversation existed. They create nothing: they wait, bounded, for the
// start, which applies them before the bot is asked to greet (so that
// the platform's first call carries the session data and the verified
// contact) and only then answers them. They go with the socket
// unanswered when it closes first: the widget still has them queued and
// sends them again on its next socket.
type held struct {
	session    map[string]json.RawMessage // merged in order; a null removes its key when applied
	sessionIDs []string
	login      *widget.Login // the latest: a later login replaces an earlier one
	replaced   []string      // the ids of the logins it replaced, answered with it
}

// maxHeld bounds the frames a socket holds before its conversation: the
// widget's whole outbox.
const maxHeld = widget.OutboxCap

// hold keeps a session or login frame (its id) for the start. Session
// data is merged as it arrives, so what is held stays within
// widget.MaxSessionData; a frame that would not fit, or one too many, is
// refused at once with an error that says so.
func (so *socket) hold(ctx context.Context, id string, f widget.Frame) {
	h := so.held
	if h == nil {
		h = &held{}
		so.held = h
	}
	n := len(h.sessionIDs) + len(h.replaced)
	if h.login != nil {
		n++
	}
	if n >= maxHeld {
		so.reply(ctx, &widget.ErrorFrame{Code: widget.CodeTooLarge, Message: fmt.Sprintf("%d settings already wait for the conversation to start; start it before sending more", maxHeld), ID: id})
		return
	}
	switch f := f.(type) {
	case *widget.Session:
		var add map[string]json.RawMessage
		if err := json.Unmarshal(f.Data, &add); err != nil {
			so.reply(ctx, errorFrame(&widget.Error{Code: widget.CodeBadRequest, Field: "data", Message: "must be a JSON object"}, id))
			return
		}
		stripped := provider.StripReserved(add)
		merged := maps.Clone(h.session)
		if merged == nil {
			merged = map[string]json.RawMessage{}
		}
		maps.Copy(merged, add)
		if out, _ := json.Marshal(merged); len(out) > widget.MaxSessionData {
			so.reply(ctx, errorFrame(&widget.Error{Code: widget.CodeTooLarge, Field: "data", Message: fmt.Sprintf("session data would grow past %d bytes; remove keys by setting them to null", widget.MaxSessionData)}, id))
			return
		}
		h.session = merged
		if len(stripped) > 0 {
			// Answered now, as SetSession would: the rest is held.
			so.reply(ctx, errorFrame(reservedError(stripped), id))
			return
		}
		h.sessionIDs = append(h.sessionIDs, id)
	case *widget.Login:
		if h.login != nil && h.login.ID != "" { // "": a hello's, which nobody waits for
			h.replaced = append(h.replaced, h.login.ID)
		}
		h.login = f
	}
}

// applyHeld applies the held settings to conv (the login's signature is
// verified here, as for one on a socket with a conversation) and returns
// their answers: an ack, or the error frame a frame would have got.
func (so *socket) applyHeld(ctx context.Context, conv string) []widget.Frame {
	h := so.held
	so.held = nil
	if h == nil {
		return nil
	}
	svc := so.srv.service
	var out []widget.Frame
	answer := func(err error, id string) {
		if err != nil {
			out = append(out, so.storeError(err, id))
		} else {
			out = append(out, &widget.Ack{ID: id})
		}
	}
	if h.session != nil { // held frames whose identity keys were refused have no ids here
		data, _ := json.Marshal(h.session)
		err := svc.SetSession(ctx, conv, data)
		for _, id := range h.sessionIDs {
			answer(err, id)
		}
	}
	if h.login != nil {
		if err := svc.Login(ctx, conv, so.bot.Config.IdentitySecret.Reveal(), h.login); err != nil || h.login.ID != "" {
			answer(err, h.login.ID)
		}
		for _, id := range h.replaced {
			answer(nil, id)
		}
	}
	return out
}

// post stores a visitor message and acknowledges it, starting the
// conversation first when the socket has none (the first message
// creates it). No ack is given for what was not stored: the client
// keeps it in its outbox and retries.
func (so *socket) post(ctx context.Context, id string, in Inbound) {
	if so.conv.ID == "" && !so.begin(ctx, id) {
		return
	}
	if !so.allow(ctx, id) {
		return
	}
	so.save(ctx, id, in)
}

// postback posts a button or quick-reply click when a bot message of the
// socket's conversation offered it (Service.Offered), as the chat page
// requires of its clicks. Anything else is answered bad_request, stores
// nothing and reaches no platform; a click before the conversation
// exists cannot have been offered, and starts nothing either.
func (so *socket) postback(ctx context.Context, f *widget.Postback) {
	in := Inbound{ClientID: f.ID, Text: f.Title, Payload: f.Payload}
	if so.conv.ID == "" {
		so.reply(ctx, errorFrame(ErrNotOffered, f.ID))
		return
	}
	if !so.allow(ctx, f.ID) {
		return
	}
	ok, err := so.srv.service.Offered(ctx, so.conv.ID, in)
	if err != nil {
		so.reply(ctx, so.storeError(err, f.ID))
		return
	}
	if !ok {
		so.srv.log.Info("postback refused: the bot did not offer it", "bot", so.bot.Config.ID, "conversation", so.conv.ID)
		so.reply(ctx, errorFrame(ErrNotOffered, f.ID))
		return
	}
	so.save(ctx, f.ID, in)
}

// save stores a visitor message on the socket's conversation and
// acknowledges it.
func (so *socket) save(ctx context.Context, id string, in Inbound) {
	m, err := so.srv.service.Post(ctx, so.conv.ID, in)
	if err != nil {
		so.reply(ctx, so.storeError(err, id))
		return
	}
	so.reply(ctx, &widget.Ack{ID: id, Seq: m.Seq})
	if m.State == store.Delivered {
		so.reply(ctx, &widget.Status{ID: id, State: widget.StateDelivered})
	}
}

func (so *socket) allow(ctx context.Context, id string) bool {
	ok, wait := so.srv.limits.allow(so.visitor, so.ip)
	if !ok {
		so.reply(ctx, &widget.ErrorFrame{Code: widget.CodeRateLimited, Message: "too many messages; wait a moment", ID: id, RetryMS: max(wait.Milliseconds(), 1)})
	}
	return ok
}

func (so *socket) storeError(err error, id string) *widget.ErrorFrame {
	var we *widget.Error
	if errors.As(err, &we) {
		return errorFrame(err, id)
	}
	so.srv.log.Error("cannot store message", "conversation", so.conv.ID, "error", err)
	return &widget.ErrorFrame{Code: widget.CodeInternal, Message: "the message could not be stored; it was not sent, try again", ID: id, RetryMS: 1000}
}

// errorFrame turns a decoding or validation error into an error frame.
func errorFrame(err error, id string) *widget.ErrorFrame {
	var we *widget.Error
	if errors.As(err, &we) {
		return &widget.ErrorFrame{Code: we.Code, Message: we.Error(), ID: id}
	}
	return &widget.ErrorFrame{Code: widget.CodeBadRequest, Message: err.Error(), ID: id}
}
