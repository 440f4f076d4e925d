package server

import (
	"io"
	"net/http"
	"time"
)

// bodyDeadline gives r's body limits.body_timeout to arrive, from now,
// and clears the deadline once the body has been read to its end. Why:
// net/http has no deadline on a body once the headers are in, so a
// client trickling a byte every few seconds held its connection and a
// file descriptor for as long as it liked; enough of them stopped
// /healthz from answering. The deadline is cleared after the body so
// that net/http's background read, which watches for the client going
// away, does not time out and cancel a handler still storing its work
// (a Chatlayer callback may wait for its turn). Call it where the
// handler is about to read the body, after checks that need no body.
func (s *Server) bodyDeadline(w http.ResponseWriter, r *http.Request) {
	d := time.Duration(s.config().Limits.BodyTimeout)
	if d <= 0 {
		d = DefaultBodyTimeout
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
		return // not a connection net/http serves (tests): nothing to bound
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
}

// deadlineBody clears the connection's read deadline when its body
// reaches its end.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

// Read reads the body, clearing the read deadline at its end.
func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
