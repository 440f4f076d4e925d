package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/porthole-chat/porthole/widget"
)

const testIdentitySecret = "identity-secret-0123456789"

// signinHarness is a harness whose bot acme signs users in.
func signinHarness(t *testing.T) *harness {
	return newHarness(t, func(c *Config, _ *Options) {
		for i := range c.Bots {
			if c.Bots[i].ID == "acme" {
				c.Bots[i].IdentitySecret = testIdentitySecret
			}
		}
	})
}

func signUser(user string) string {
	m := hmac.New(sha256.New, []byte(testIdentitySecret))
	m.Write([]byte(user))
	return hex.EncodeToString(m.Sum(nil))
}

// login sends a signed login for user and waits for its ack: on a
// socket with a conversation, since one without holds the login for the
// start (sendLogin).
func (c *client) login(id, user string) {
	c.t.Helper()
	c.sendLogin(id, user)
	c.ack(id)
}

func (c *client) sendLogin(id, user string) {
	c.t.Helper()
	c.send(&widget.Login{ID: id, User: user, Signature: signUser(user)})
}

// welcomeOf waits for a welcome naming conversation conv ("" for none).
func (c *client) welcomeOf(conv string) *widget.Welcome {
	c.t.Helper()
	return c.waitFor("a welcome of conversation "+conv, func(f widget.Frame) bool {
		w, ok := f.(*widget.Welcome)
		return ok && w.Conversation == conv
	}).(*widget.Welcome)
}

// textsUntil reads until a msg with text last arrives and returns the
// texts of every msg frame the client holds, in order, joined by "|".
// (A read that times out would close the socket, so a test waits for a
// message it knows comes after the ones it checks.)
func (c *client) textsUntil(last string) string {
	c.t.Helper()
	c.msgWith("message "+last, func(m *widget.Msg) bool { return m.Body.Text == last })
	var out []string
	for _, f := range c.seen {
		if m, ok := f.(*widget.Msg); ok {
			out = append(out, m.Body.Text)
		}
	}
	return strings.Join(append(out, last), "|")
}

// TestSignedInConversationFollowsTheUser: a conversation begun before a
// login becomes the user's; a logout starts a fresh visitor whose old
// token opens nothing; a second user on the same browser starts with
// nothing of the first one's; the first user on another device sees
// the first user's conversation.
func TestSignedInConversationFollowsTheUser(t *testing.T) {
	h := signinHarness(t)
	laptop := h.connect("acme")
	w := laptop.open("", 0)
	conv, oldToken := w.Conversation, w.Visitor
	laptop.send(&widget.Send{ID: "m1", Text: "before signing in"})
	laptop.ack("m1")
	laptop.login("l1", "ann")
	laptop.send(&widget.Send{ID: "m2", Text: "ann's secret"})
	if a := laptop.ack("m2"); a.Seq == 0 {
		t.Fatal("no seq")
	}
	if got, err := h.st.Find(t.Context(), "acme", UserKey("ann")); err != nil || got.ID != conv {
		t.Fatalf("the conversation begun before the login is not ann's: %+v, %v", got, err)
	}

	laptop.send(&widget.Login{ID: "out"})
	fresh := laptop.welcomeOf("")
	laptop.ack("out")
	laptop.seen = nil // what ann's socket got before; bea's starts here
	if fresh.Visitor == "" || fresh.Visitor == oldToken {
		t.Fatalf("logout kept the visitor token")
	}
	if v, ok := h.srv.keys.Visitor("acme", fresh.Visitor); !ok || v == "" {
		t.Fatal("the new token names no visitor")
	} else if old, _ := h.srv.keys.Visitor("acme", oldToken); old == v {
		t.Fatal("logout kept the visitor id")
	}

	// The old token, wherever it was copied to, opens nothing.
	thief := h.connect("acme")
	if w := thief.hello(oldToken, 0); w.Conversation != "" {
		t.Fatalf("the token a logout ended still opens conversation %s", w.Conversation)
	}

	// Bea signs in on the same browser: nothing of ann's.
	laptop.sendLogin("l2", "bea")
	laptop.send(&widget.Send{ID: "b1", Text: "bea here"})
	laptop.ack("l2")
	laptop.ack("b1")
	bw := laptop.waitFor("bea's welcome", func(f widget.Frame) bool {
		w, ok := f.(*widget.Welcome)
		return ok && w.Conversation != ""
	}).(*widget.Welcome)
	if bw.Conversation == conv {
		t.Fatal("bea got ann's conversation")
	}
	if got := laptop.textsUntil("echo: bea here"); strings.Contains(got, "ann's secret") || strings.Contains(got, "before signing in") {
		t.Fatalf("bea's socket was sent ann's messages: %s", got)
	}

	// Ann on her phone, a browser that never saw her: her conversation.
	phone := h.connect("acme")
	phone.hello("", 0)
	phone.login("l3", "ann")
	pw := phone.welcomeOf(conv)
	if pw.Last < 2 {
		t.Fatalf("ann's phone welcome = %+v", pw)
	}
	got := phone.textsUntil("echo: ann's secret")
	if !strings.Contains(got, "ann's secret") || !strings.Contains(got, "before signing in") || strings.Contains(got, "bea here") {
		t.Fatalf("ann's phone got %q", got)
	}
	// And what she writes there reaches the same conversation.
	phone.send(&widget.Send{ID: "p1", Text: "from the phone"})
	if a := phone.ack("p1"); a.Seq <= pw.Last {
		t.Fatalf("ack %+v", a)
	}
}

// TestLoginFindsTheUsersConversationOverAnAnonymousOne: a visitor who
// chatted anonymously and then signs in as a user who already has a
// conversation sees the user's; the anonymous one is left, and a logout
// unbinds it too.
func TestLoginFindsTheUsersConversationOverAnAnonymousOne(t *testing.T) {
	h := signinHarness(t)
	first := h.connect("acme")
	first.hello("", 0)
	first.sendLogin("l1", "cid")
	first.send(&widget.Send{ID: "c1", Text: "cid's first"})
	first.ack("l1")
	first.ack("c1")
	cids := first.welcomeOf(h.findConv(t, UserKey("cid")))

	other := h.connect("acme")
	w := other.open("", 0)
	other.send(&widget.Send{ID: "a1", Text: "anonymous"})
	other.ack("a1")
	other.login("l2", "cid")
	if got := other.welcomeOf(cids.Conversation); got == nil {
		t.Fatal("no welcome")
	}
	other.textsUntil("echo: cid's first")
	other.send(&widget.Login{ID: "out"})
	other.welcomeOf("")
	other.ack("out")
	thief := h.connect("acme")
	if got := thief.hello(w.Visitor, 0); got.Conversation != "" {
		t.Fatalf("the anonymous conversation is still open to the old token: %s", got.Conversation)
	}
}

// TestForgedLoginSwitchesNothing: a login with a bad signature leaves the
// socket on its conversation and gives no other.
func TestForgedLoginSwitchesNothing(t *testing.T) {
	h := signinHarness(t)
	victim := h.connect("acme")
	victim.hello("", 0)
	victim.sendLogin("l1", "dan")
	victim.send(&widget.Send{ID: "d1", Text: "dan's"})
	victim.ack("d1")

	attacker := h.connect("acme")
	w := attacker.open("", 0)
	attacker.send(&widget.Login{ID: "l2", User: "dan", Signature: signUser("eve")})
	e := attacker.waitFor("error", isType(widget.TypeError)).(*widget.ErrorFrame)
	if e.Code != widget.CodeUnauthorized || e.ID != "l2" {
		t.Fatalf("forged login: %+v", e)
	}
	attacker.send(&widget.Send{ID: "e1", Text: "eve"})
	if got := attacker.textsUntil("echo: eve"); strings.Contains(got, "dan's") {
		t.Fatalf("a forged login showed dan's messages: %q", got)
	}
	for _, f := range attacker.seen {
		if ww, ok := f.(*widget.Welcome); ok && ww.Conversation != w.Conversation {
			t.Fatalf("a forged login switched the socket to %s", ww.Conversation)
		}
	}
}

func (h *harness) findConv(t *testing.T, key string) string {
	t.Helper()
	c, err := h.st.Find(t.Context(), "acme", key)
	if err != nil {
		t.Fatalf("Find(%s): %v", key, err)
	}
	return c.ID
}

// TestHelloLoginFindsTheUsersConversation: a hello that carries the
// page's login opens the user's conversation at once (a widget that
// reconnects), the token alone does not, and a hello with a forged login
// is answered with an error after the welcome and opens nothing of the
// user's.
func TestHelloLoginFindsTheUsersConversation(t *testing.T) {
	h := signinHarness(t)
	c := h.connect("acme")
	c.hello("", 0)
	c.sendLogin("l1", "fay")
	c.send(&widget.Send{ID: "f1", Text: "fay's first"})
	c.ack("f1")
	w := c.welcomeOf(h.findConv(t, UserKey("fay")))
	c.textsUntil("echo: fay's first")

	fay := &widget.Login{User: "fay", Signature: signUser("fay")}
	again := h.connect("acme")
	again.send(&widget.Hello{Bot: "acme", Visitor: w.Visitor, Login: fay})
	if got := again.waitFor("welcome", isType(widget.TypeWelcome)).(*widget.Welcome); got.Conversation != w.Conversation || got.Last < 2 {
		t.Fatalf("hello with fay's login = %+v, want her conversation %s", got, w.Conversation)
	}
	again.textsUntil("echo: fay's first")
	again.send(&widget.Send{ID: "f2", Text: "fay again"})
	again.ack("f2")

	tokenOnly := h.connect("acme")
	if got := tokenOnly.hello(w.Visitor, 0); got.Conversation != "" {
		t.Fatalf("the token alone opened the signed-in conversation %s", got.Conversation)
	}

	forged := h.connect("acme")
	forged.send(&widget.Hello{Bot: "acme", Visitor: w.Visitor, Login: &widget.Login{User: "fay", Signature: signUser("eve")}})
	if got := forged.waitFor("welcome", isType(widget.TypeWelcome)).(*widget.Welcome); got.Conversation != "" {
		t.Fatalf("a forged hello login opened %s", got.Conversation)
	}
	if e := forged.waitFor("error", isType(widget.TypeError)).(*widget.ErrorFrame); e.Code != widget.CodeUnauthorized || e.ID != "" {
		t.Fatalf("forged hello login: %+v", e)
	}

	// A new browser whose first hello carries the login of a user with no
	// conversation: nothing is created until the start, which creates it
	// under the user.
	gus := h.connect("acme")
	gw := gus.helloWith(&widget.Login{User: "gus", Signature: signUser("gus")})
	if gw.Conversation != "" {
		t.Fatalf("gus's hello = %+v", gw)
	}
	started := gus.start("st-g")
	if got := h.findConv(t, UserKey("gus")); got != started.Conversation {
		t.Fatalf("gus's start made %s, the user key finds %s", started.Conversation, got)
	}
}

func (c *client) helloWith(l *widget.Login) *widget.Welcome {
	c.t.Helper()
	c.send(&widget.Hello{Bot: c.bot, Login: l})
	return c.waitFor("welcome", isType(widget.TypeWelcome)).(*widget.Welcome)
}
