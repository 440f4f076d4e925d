package server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"

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
	bot := s.bot(botID)
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
	if s.conns >= s.config().Limits.MaxConnections {
		s.mu.Unlock()
		s.metrics.limit(LimitMaxConnections)
		s.log.Warn("socket refused: the server is at limits.max_connections", "max_connections", s.config().Limits.MaxConnections)
		w.Header().Set("Retry-After", "30")
		httpError(w, http.StatusServiceUnavailable, widget.CodeUpstreamUnavailable, "the server is at its connection ceiling; reconnect later")
		return
	}
	s.conns++
	s.mu.Unlock()
	// The address's sockets are counted by the limiter, over every
	// process on Redis; the server's ceiling above is this process's.
	ok, release := s.limits.Connect(r.Context(), ip)
	if !ok {
		s.metrics.limit(LimitConnectionsPerIP)
		s.releaseSocket(nil)
		httpError(w, http.StatusTooManyRequests, widget.CodeRateLimited, "too many connections from this address")
		return
	}

	conn, err := websocket.Accept(smallBuffers{w}, r, &websocket.AcceptOptions{
		Subprotocols:       []string{widget.Protocol},
		InsecureSkipVerify: true, // origins are checked above, per bot
	})
	if err != nil {
		s.releaseSocket(release)
		return // Accept has answered the client
	}
	if conn.Subprotocol() != widget.Protocol {
		conn.Close(websocket.StatusPolicyViolation, "subprotocol "+widget.Protocol+" required")
		s.releaseSocket(release)
		return
	}
	conn.SetReadLimit(widget.MaxFrame)
	so := &socket{srv: s, conn: conn, botID: botID, joined: bot, ip: ip, release: release, space: make(chan struct{}, 1)}
	so.origin, so.self = s.socketOrigin(r)
	// Not the request's context: net/http cancels that when the handler
	// returns, and the socket outlives it.
	so.ctx, so.cancel = context.WithCancel(context.Background())
	s.sockets.Store(so, struct{}{})
	// A reload between the origin check above and now has not seen this
	// socket: check it against the running configuration again.
	if reason := s.refusal(so, s.now()); reason != "" {
		so.conn.Close(CloseOriginRefused, reason)
		so.end()
		return
	}
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

// releaseSocket gives back the connection slots of a closed socket: the
// address's (release, from Limiter.Connect; nil for none) and the
// server's.
func (s *Server) releaseSocket(release func()) {
	if release != nil {
		release()
	}
	s.mu.Lock()
	s.conns--
	s.mu.Unlock()
}
