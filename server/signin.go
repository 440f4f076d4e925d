package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/porthole-chat/porthole/widget"
)

// UserKey is the store key of a signed-in user's conversation with a
// bot: "user-" and 32 hex characters of the SHA-256 of the user id, so
// that the key has one length whatever the id (an e-mail address, say)
// and never names it. It can never be a visitor id (32 bare hex
// characters), so no visitor token opens a user's conversation: only a
// login signed for that user does.
func UserKey(user string) string {
	sum := sha256.Sum256([]byte(user))
	return "user-" + hex.EncodeToString(sum[:16])
}

// login handles a verified Porthole.login on the socket. The socket's
// conversation becomes the user's (switchUser), and the contact is
// stored for the providers; before there is a conversation the login is
// held for the start, which creates the conversation under the user's
// key. A bad signature changes nothing and gets an error frame.
func (so *socket) login(ctx context.Context, f *widget.Login) {
	secret := so.bot().Config.IdentitySecret.Reveal()
	if err := VerifyLogin(secret, f); err != nil {
		so.reply(ctx, errorFrame(err, f.ID))
		return
	}
	if key := UserKey(f.User); key != so.key {
		if err := so.switchUser(ctx, key); err != nil {
			so.srv.log.Error("cannot look up the user's conversation", "bot", so.bot().Config.ID, "error", err)
			so.reply(ctx, &widget.ErrorFrame{Code: widget.CodeInternal, Message: "the login could not be applied; try again", ID: f.ID, RetryMS: 1000})
			return
		}
	}
	if so.conv.ID == "" {
		so.hold(ctx, f.ID, f)
		return
	}
	if err := so.srv.service.Login(ctx, so.conv.ID, secret, f); err != nil {
		so.reply(ctx, so.storeError(err, f.ID))
		return
	}
	so.reply(ctx, &widget.Ack{ID: f.ID})
}

// helloLogin applies the login a hello carries (the page's latest, sent
// with every hello), before the socket is live: the socket's key is the
// user's, its conversation the user's, or the visitor's own one adopted
// as in switchUser; with none, the login is held for the start. A login
// that does not verify is returned as refused and changes nothing: the
// socket goes on as the visitor's.
func (so *socket) helloLogin(ctx context.Context, l *widget.Login) (refused, err error) {
	svc, bot, secret := so.srv.service, so.bot().Config.ID, so.bot().Config.IdentitySecret.Reveal()
	if err := VerifyLogin(secret, l); err != nil {
		c, found, err2 := so.find(ctx, so.key)
		if found {
			so.conv = c
		}
		return err, err2
	}
	key := UserKey(l.User)
	c, found, err := so.find(ctx, key)
	if err != nil {
		return nil, err
	}
	if !found {
		own, mine, err := so.find(ctx, so.key)
		if err != nil {
			return nil, err
		}
		if mine {
			if c, _, err = svc.Rebind(ctx, own.ID, key); err != nil {
				return nil, err
			}
			found = true
		}
	}
	so.key = key
	if !found {
		so.held = &held{login: l}
		return nil, nil
	}
	so.conv = c
	if err := svc.Login(ctx, c.ID, secret, l); err != nil {
		so.srv.log.Warn("cannot record the contact of a signed-in visitor", "bot", bot, "conversation", c.ID, "error", err)
	}
	return nil, nil
}

// switchUser makes key (a user's) the socket's key. When the user has a
// conversation, the socket shows it: the same user on a phone and a
// laptop sees one conversation. When the user has none, a conversation
// the visitor began before signing in becomes the user's (the visitor
// who asked the bot something, then signed in, keeps the thread), but
// another user's never does: a second user signing in on the same
// browser starts with nothing of the first one's.
func (so *socket) switchUser(ctx context.Context, key string) error {
	c, found, err := so.find(ctx, key)
	if err != nil {
		return err
	}
	anonymous := so.key == so.visitor
	if !found && anonymous && so.conv.ID != "" {
		var moved bool
		c, moved, err = so.srv.service.Rebind(ctx, so.conv.ID, key)
		if err != nil {
			return err
		}
		if moved {
			so.key = key
			so.mu.Lock()
			so.conv = c
			so.mu.Unlock()
			return nil
		}
		found = true // the user's other device started one meanwhile
	}
	so.unheld(false)
	so.key = key
	switch {
	case found && c.ID == so.conv.ID: // already shown
	case found:
		so.detach()
		so.attach(c, 0)
	case so.conv.ID != "": // another user's: show nothing
		so.detach()
		so.rewelcome()
	}
	return nil
}

// logout handles Porthole.logout: the browser becomes a fresh visitor.
// The conversation the old visitor id finds, if any, is unbound (no key
// finds it any more), so that the old visitor token, the one a logout
// is meant to end, opens nothing wherever it was copied to; a signed-in
// user's conversation stays the user's, for the next login. The socket
// leaves its conversation and gets a welcome with a token for the new
// visitor and no conversation, which makes the widget drop the
// transcript it shows.
func (so *socket) logout(ctx context.Context, id string) {
	svc := so.srv.service
	old, found, err := svc.Find(ctx, so.bot().Config.ID, so.visitor)
	if found {
		_, _, err = svc.Rebind(ctx, old.ID, "")
	}
	if err != nil {
		so.srv.log.Error("cannot end the visitor's conversation", "bot", so.bot().Config.ID, "error", err)
		so.reply(ctx, &widget.ErrorFrame{Code: widget.CodeInternal, Message: "the logout could not be applied; try again", ID: id, RetryMS: 1000})
		return
	}
	fresh := NewVisitorID()
	so.unheld(true)
	so.key = fresh
	so.info.ID = fresh
	so.detach()
	so.mu.Lock()
	so.visitor = fresh
	so.mu.Unlock()
	so.rewelcome()
	so.reply(ctx, &widget.Ack{ID: id})
}

// unheld drops a login the socket held for the identity it leaves: a
// later login replaces it, answered with the start as a later login
// replaces an earlier one. A logout (answer set) acknowledges at once
// every login it replaced, since after it nothing may start under them.
func (so *socket) unheld(answer bool) {
	h := so.held
	if h == nil {
		return
	}
	if h.login != nil {
		if h.login.ID != "" { // "": a hello's, which nobody waits for
			h.replaced = append(h.replaced, h.login.ID)
		}
		h.login = nil
	}
	if answer {
		for _, id := range h.replaced {
			so.reply(so.ctx, &widget.Ack{ID: id})
		}
		h.replaced = nil
	}
}

// detach leaves the socket's conversation: no more of its events.
func (so *socket) detach() {
	if so.unsubscribe != nil {
		so.unsubscribe()
		so.unsubscribe = nil
	}
	so.mu.Lock()
	so.conv = Conv{}
	so.mu.Unlock()
}

// rewelcome asks the writer for a new welcome of what the socket has
// now, with everything from the start.
func (so *socket) rewelcome() {
	so.mu.Lock()
	so.greet, so.greetAfter = true, 0
	so.wakeLocked()
	so.mu.Unlock()
}
