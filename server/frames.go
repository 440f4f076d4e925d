package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/coder/websocket"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/widget"
)

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
		if f.Bot != so.bot().Config.ID {
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
		ctx, end := so.traceSend(ctx, f.ID, "text")
		so.post(ctx, f.ID, Inbound{ClientID: f.ID, Text: f.Text})
		end()
	case *widget.Postback:
		ctx, end := so.traceSend(ctx, f.ID, "postback")
		so.postback(ctx, f)
		end()
	case *widget.Session:
		if !so.allow(ctx, f.ID) {
			return
		}
		if so.conv.ID == "" {
			so.hold(ctx, f.ID, f)
			return
		}
		if err := svc.SetSession(ctx, so.bot().Config.ID, so.conv.ID, f.Data); err != nil {
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
		err := svc.SetSession(ctx, so.bot().Config.ID, conv, data)
		for _, id := range h.sessionIDs {
			answer(err, id)
		}
	}
	if h.login != nil {
		if err := svc.Login(ctx, conv, so.bot().Config.IdentitySecret.Reveal(), h.login); err != nil || h.login.ID != "" {
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
		so.srv.log.Info("postback refused: the bot did not offer it", "bot", so.bot().Config.ID, "conversation", so.conv.ID)
		so.reply(ctx, errorFrame(ErrNotOffered, f.ID))
		return
	}
	so.save(ctx, f.ID, in)
}

// save stores a visitor message on the socket's conversation and
// acknowledges it.
func (so *socket) save(ctx context.Context, id string, in Inbound) {
	in.Bot = so.botID
	m, err := so.srv.service.Post(ctx, so.conv.ID, in)
	if err != nil {
		so.reply(ctx, so.storeError(err, id))
		return
	}
	so.reply(ctx, &widget.Ack{ID: id, Seq: m.Seq})
	if m.State == widget.StateDelivered {
		so.reply(ctx, &widget.Status{ID: id, State: widget.StateDelivered})
	}
}

func (so *socket) allow(ctx context.Context, id string) bool {
	ok, wait := so.srv.limits.Allow(ctx, so.visitor, so.ip)
	if !ok {
		so.srv.metrics.limit(LimitMessages)
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
