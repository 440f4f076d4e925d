package server

import (
	"context"
	"errors"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/widget"
)

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
	traceReply(ctx, f)
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
		so.srv.log.Info("dropping slow client", "bot", so.bot().Config.ID, "conversation", conv)
		go so.conn.Close(websocket.StatusTryAgainLater, "client too slow")
	}
}

// work is what a writer takes from the socket in one round.
type work struct {
	conv     Conv   // as it was when the work was taken
	visitor  string // likewise, for the welcome's token
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
	es, err := so.srv.service.Transcript(ctx, conv, from, int(upTo-from))
	if err != nil {
		so.srv.log.Error("replay read failed", "conversation", conv, "error", err)
		return err
	}
	newest := -1
	for i, e := range es {
		if e.Mine && e.ClientID != "" {
			newest = i
		}
	}
	for i, e := range es {
		if !e.Mine || e.ClientID == "" {
			continue
		}
		var st *widget.Status
		switch {
		case e.State == widget.StateFailed:
			st = &widget.Status{ID: e.ClientID, State: widget.StateFailed, Error: e.Reason}
		case e.State == widget.StateDelivered && i == newest:
			st = &widget.Status{ID: e.ClientID, State: widget.StateDelivered}
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
		es, err := so.srv.service.Transcript(ctx, conv, so.sent.Load(), replayBatch)
		if err != nil {
			so.srv.log.Error("replay read failed", "conversation", conv, "error", err)
			return err
		}
		for _, e := range es {
			if e.bad {
				so.srv.log.Error("stored body does not decode", "conversation", conv, "seq", e.Seq)
			}
			f := &widget.Msg{Seq: e.Seq, ID: e.ID, From: "bot", ClientID: e.ClientID, At: e.At.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Body: e.Body}
			if e.Mine {
				f.From = "user"
			}
			if err := so.writeFrame(ctx, f); err != nil {
				return err
			}
			if e.State == widget.StateFailed {
				if err := so.writeFrame(ctx, &widget.Status{ID: e.ClientID, State: widget.StateFailed, Error: e.Reason}); err != nil {
					return err
				}
			}
			so.sent.Store(e.Seq)
		}
		if len(es) < replayBatch {
			return nil
		}
	}
}

// writeFrame writes one frame; a client that has not taken it within the
// write timeout is not reading and is dropped.
func (so *socket) writeFrame(ctx context.Context, f widget.Frame) error {
	ctx, cancel := context.WithTimeout(ctx, so.srv.opts.WriteTimeout)
	defer cancel()
	_, span := so.traceWrite(ctx, f)
	err := so.conn.Write(ctx, websocket.MessageText, widget.Encode(f))
	endSpan(span, "write_failed", err)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		so.drop()
	}
	return err
}
