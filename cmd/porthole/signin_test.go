package main

import (
	"context"
	"strings"
	"testing"

	"github.com/porthole-chat/porthole/widget"
)

// signinSite is a site whose demo bot signs users in with identitySecret.
func signinSite(t *testing.T) *site {
	t.Helper()
	t.Setenv("IDENTITY_SECRET", identitySecret)
	return newSiteConfig(t, func(cfg string) string {
		return strings.Replace(cfg, "    provider: demo\n", "    provider: demo\n    identity_secret: \"${IDENTITY_SECRET}\"\n", 1)
	})
}

// shows reports whether the panel's transcript shows a visitor message
// with text.
func shows(t *testing.T, ctx context.Context, text string) bool {
	t.Helper()
	return count(t, ctx, ".msg.user", text) > 0
}

// TestWidgetSignInFollowsTheUser is issue 12's browser test: user A
// signs in, chats and logs out; user B signs in on the same browser and
// sees none of A's messages; A signs in on a second browser and sees A's
// conversation (and none of B's).
func TestWidgetSignInFollowsTheUser(t *testing.T) {
	s := signinSite(t)
	shared := browser(t, 1280, 860)

	navigate(t, shared, s.host.URL+"/account?user=ann")
	click(t, shared, ".launcher")
	waitJS(t, shared, "the composer", in(".composer textarea"))
	typeMessage(t, shared, "ann's order is 4471")
	waitJS(t, shared, "ann's message, stored", `Array.from(`+shadow+`.querySelectorAll(".msg.user")).some(function(m){return m.textContent.indexOf("4471") >= 0 && !m.querySelector(".state.sending")})`)
	// A reload keeps ann's conversation: it is hers, wherever she signs in.
	navigate(t, shared, s.host.URL+"/account?user=ann")
	click(t, shared, ".launcher")
	waitJS(t, shared, "ann's conversation after a reload", `Array.from(`+shadow+`.querySelectorAll(".msg.user")).some(function(m){return m.textContent.indexOf("4471") >= 0})`)

	// Ann logs out: the panel forgets her conversation at once.
	evalJS[any](t, shared, `Porthole.logout(), null`)
	waitJS(t, shared, "the transcript dropped by the logout", `!Array.from(`+shadow+`.querySelectorAll(".msg.user")).some(function(m){return m.textContent.indexOf("4471") >= 0})`)

	// Bea signs in on the same browser: nothing of ann's, now or later.
	navigate(t, shared, s.host.URL+"/account?user=bea")
	click(t, shared, ".launcher")
	waitJS(t, shared, "the composer", in(".composer textarea"))
	typeMessage(t, shared, "bea asks about returns")
	waitJS(t, shared, "bea's message", `Array.from(`+shadow+`.querySelectorAll(".msg.user")).some(function(m){return m.textContent.indexOf("returns") >= 0 && !m.querySelector(".state.sending")})`)
	if shows(t, shared, "4471") {
		t.Fatal("bea's panel shows ann's message")
	}
	navigate(t, shared, s.host.URL+"/account?user=bea")
	click(t, shared, ".launcher")
	waitJS(t, shared, "bea's conversation after a reload", `Array.from(`+shadow+`.querySelectorAll(".msg.user")).some(function(m){return m.textContent.indexOf("returns") >= 0})`)
	if shows(t, shared, "4471") {
		t.Fatal("bea's panel shows ann's message after a reload")
	}
	if st := storage(t, shared); strings.Contains(st, "4471") {
		t.Fatalf("the shared browser's storage still holds ann's message: %s", st)
	}

	// Ann on her own laptop, a browser that never saw her: her
	// conversation, none of bea's.
	laptop := browser(t, 1280, 860)
	navigate(t, laptop, s.host.URL+"/account?user=ann")
	click(t, laptop, ".launcher")
	waitJS(t, laptop, "ann's conversation on her laptop", `Array.from(`+shadow+`.querySelectorAll(".msg.user")).some(function(m){return m.textContent.indexOf("4471") >= 0})`)
	if shows(t, laptop, "returns") {
		t.Fatal("ann's laptop shows bea's message")
	}
	typeMessage(t, laptop, "ann again from the laptop")
	waitJS(t, laptop, "ann's second message", `Array.from(`+shadow+`.querySelectorAll(".msg.user")).some(function(m){return m.textContent.indexOf("laptop") >= 0 && !m.querySelector(".state.sending")})`)
}

// TestLogoutRevokesTheVisitorToken is finding 8's "a stolen visitor
// token cannot be revoked", against the real binary: a copy of a
// visitor's token opens the visitor's conversation until the visitor
// logs out, and nothing of it afterwards; the browser that logged out
// carries on as a fresh visitor with a new token.
func TestLogoutRevokesTheVisitorToken(t *testing.T) {
	p := start(t, t.TempDir())
	victim, _, err := dial(t, p, "")
	if err != nil {
		t.Fatal(err)
	}
	victim.hello("", 0)
	w := victim.start("st-1")
	victim.send(&widget.Send{ID: "m1", Text: "my address is 12 Harbour Lane"})
	victim.ack("m1")
	stolen := w.Visitor

	thief, _, err := dial(t, p, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := thief.hello(stolen, 0); got.Conversation != w.Conversation {
		t.Fatalf("before the logout the copied token opens %q, want %q (the scenario needs a working copy)", got.Conversation, w.Conversation)
	}

	victim.send(&widget.Login{ID: "out"})
	fresh := victim.until("the welcome of the fresh visitor", func(f widget.Frame) bool {
		ww, ok := f.(*widget.Welcome)
		return ok && ww.Conversation == ""
	}).(*widget.Welcome)
	victim.ack("out")
	if fresh.Visitor == "" || fresh.Visitor == stolen {
		t.Fatal("the logout did not hand out a new token")
	}

	later, _, err := dial(t, p, "")
	if err != nil {
		t.Fatal(err)
	}
	got := later.hello(stolen, 0)
	if got.Conversation != "" || got.Last != 0 {
		t.Fatalf("after the logout the copied token opens %+v", got)
	}
	// What it starts now is a new, empty conversation.
	again := later.start("st-2")
	if again.Conversation == w.Conversation || again.Last > 2 {
		t.Fatalf("the revoked token started %+v, the victim's was %s", again, w.Conversation)
	}
	later.botTurn() // the new conversation's greeting, after any replay
	for _, f := range later.frames {
		if strings.Contains(f, "Harbour") {
			t.Fatalf("the revoked token was sent the victim's message: %s", f)
		}
	}
}
