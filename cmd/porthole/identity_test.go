package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/widget"
)

// These tests reproduce finding 1 of issue 12 against the real binary:
// a page claimed any identity to the platform through setSessionData,
// and a hand-written postback frame sent any nextDialogstateId and
// sessionDataToSet to Chatlayer. They assert on the emulators' records.

// chatlayerBinary runs the binary with bot "acme" on the Chatlayer
// emulator (V1), with an identity secret.
func chatlayerBinary(t *testing.T, settings ...string) (*proc, *chatlayertest.Server) {
	t.Helper()
	emu := chatlayertest.NewServer(chatlayertest.Options{})
	t.Cleanup(emu.Close)
	addr := freeAddr(t)
	emu.SetCallback("http://" + addr + "/hooks/chatlayer/acme")
	data := t.TempDir()
	cfg := filepath.Join(data, "porthole.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`bots:
  - id: acme
    provider: chatlayer
    origins: ["self"]
    identity_secret: "${IDENTITY_SECRET}"
    chatlayer:
      base_url: %q
      channel_id: %q
      token: "${CHATLAYER_TOKEN}"
      verify_token: "${CHATLAYER_VERIFY}"
      reorder_wait: 300ms
%s`, emu.URL, chatlayertest.DefaultChannelID, indent(settings))), 0o600)
	t.Setenv("CHATLAYER_TOKEN", chatlayertest.DefaultToken)
	t.Setenv("CHATLAYER_VERIFY", chatlayertest.DefaultVerifyToken)
	t.Setenv("IDENTITY_SECRET", identitySecret)
	return launch(t, addr, data, "--config", cfg), emu
}

// indent writes settings as lines of the chatlayer block.
func indent(settings []string) string {
	var b strings.Builder
	for _, s := range settings {
		b.WriteString("      " + s + "\n")
	}
	return b.String()
}

// refusedWith waits for the error frame answering id and checks that it
// is bad_request and names each of names.
func (w *wsc) refusedWith(id string, names ...string) *widget.ErrorFrame {
	w.t.Helper()
	e := w.until("the error answering "+id, func(f widget.Frame) bool {
		e, ok := f.(*widget.ErrorFrame)
		return ok && e.ID == id
	}).(*widget.ErrorFrame)
	if e.Code != widget.CodeBadRequest {
		w.t.Fatalf("%s answered %+v, want bad_request", id, e)
	}
	for _, n := range names {
		if !strings.Contains(e.Message, n) {
			w.t.Fatalf("%s answered %q, want it to name %s", id, e.Message, n)
		}
	}
	return e
}

// chatlayerCall is what the Chatlayer emulator recorded of one accepted
// V1 message call.
type chatlayerCall struct {
	Kind        string
	User        map[string]string          `json:"user"`
	SessionData map[string]json.RawMessage `json:"sessionData"`
	Message     struct {
		PostbackMessage *struct {
			Title             string `json:"title"`
			NextDialogstateID string `json:"nextDialogstateId"`
			SessionDataToSet  []struct {
				Key string `json:"key"`
			} `json:"sessionDataToSet"`
			Payload string `json:"payload"`
		} `json:"postbackMessage"`
	} `json:"message"`
	raw string
}

// chatlayerCalls returns the accepted calls for conversation conv.
func chatlayerCalls(t *testing.T, emu *chatlayertest.Server, conv string) []chatlayerCall {
	t.Helper()
	var out []chatlayerCall
	for _, r := range emu.Requests() {
		if r.UserID != conv || r.Status != 200 {
			continue
		}
		var c chatlayerCall
		if err := json.Unmarshal(r.Body, &c); err != nil {
			t.Fatalf("recorded body %s: %v", r.Body, err)
		}
		c.Kind, c.raw = r.Kind, string(r.Body)
		out = append(out, c)
	}
	return out
}

// TestChatlayerIdentityFromLoginOnly: setSessionData({externalId:
// "admin", email: …}) is refused by name and never reaches Chatlayer,
// without a login and beside a signed one, before and after the start;
// the rest of the data still goes, and the login's identity wins.
func TestChatlayerIdentityFromLoginOnly(t *testing.T) {
	p, emu := chatlayerBinary(t)

	// No login: the page claims to be the admin.
	c, _, err := dialBot(t, p, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	c.hello("", 0)
	c.send(&widget.Session{ID: "s1", Data: widget.RawJSON(`{"externalId":"admin","email":"boss@example.com","plan":"pro"}`)})
	c.refusedWith("s1", "externalId", "email")
	w := c.start("st-1")
	c.send(&widget.Session{ID: "s2", Data: widget.RawJSON(`{"EMAIL":"boss@example.com","firstName":"Admin","user.externalId":"admin","team":"red"}`)})
	c.refusedWith("s2", "EMAIL", "firstName", "user.externalId")
	c.send(&widget.Send{ID: "m1", Text: "anyone there"}) // the socket stays open
	c.ack("m1")
	c.botSaid("You said: anyone there")
	idle(t, emu)
	calls := chatlayerCalls(t, emu, w.Conversation)
	if len(calls) != 2 || calls[0].Kind != "intro" || calls[1].Kind != "text" {
		t.Fatalf("calls = %+v, want the intro and the text", calls)
	}
	for _, call := range calls {
		for k := range call.SessionData {
			if provider.IsReserved(k) {
				t.Errorf("%s call carried the page's identity key %s: %s", call.Kind, k, call.raw)
			}
		}
		if call.User["firstName"] != "" || call.User["lastName"] != "" || strings.Contains(call.raw, "admin") || strings.Contains(call.raw, "boss@") {
			t.Errorf("%s call carried a claimed identity: %s", call.Kind, call.raw)
		}
	}
	if string(calls[1].SessionData["plan"]) != `"pro"` || string(calls[1].SessionData["team"]) != `"red"` {
		t.Errorf("the rest of the session data did not go: %s", calls[1].raw)
	}

	// A signed login, and beside it the same claim: the login wins.
	c2, _, err := dialBot(t, p, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	c2.hello("", 0)
	c2.send(&widget.Login{ID: "l1", User: "user-42", Signature: sign("user-42"), Name: "Ann Lee", Email: "ann@example.com"})
	c2.send(&widget.Session{ID: "s1", Data: widget.RawJSON(`{"externalId":"admin","email":"boss@example.com"}`)})
	c2.refusedWith("s1", "externalId", "email")
	w2 := c2.start("st-2")
	c2.ack("l1")
	c2.send(&widget.Session{ID: "s2", Data: widget.RawJSON(`{"externalid":"admin","lastName":"Admin"}`)})
	c2.refusedWith("s2", "externalid", "lastName")
	c2.send(&widget.Send{ID: "m1", Text: "who am I"})
	c2.ack("m1")
	c2.botSaid("You said: who am I")
	idle(t, emu)
	calls = chatlayerCalls(t, emu, w2.Conversation)
	if len(calls) != 2 {
		t.Fatalf("calls = %+v, want the intro and the text", calls)
	}
	for _, call := range calls {
		if string(call.SessionData["externalId"]) != `"user-42"` || string(call.SessionData["email"]) != `"ann@example.com"` ||
			call.User["firstName"] != "Ann" || call.User["lastName"] != "Lee" {
			t.Errorf("%s call: %s, want the signed user's identity", call.Kind, call.raw)
		}
		if strings.Contains(call.raw, "admin") || strings.Contains(call.raw, "boss@") || strings.Contains(call.raw, "Admin") {
			t.Errorf("%s call carried the claimed identity: %s", call.Kind, call.raw)
		}
	}
}

// TestChatlayerForgedPostbacks: a hand-written postback frame, with a
// payload of the bot's JSON kind naming any nextDialogstateId and
// session data, or a genuine title with another payload, is refused with
// an error frame, stores nothing and reaches nothing upstream; a click on
// a button the bot sent still works, and so does its retry.
func TestChatlayerForgedPostbacks(t *testing.T) {
	p, emu := chatlayerBinary(t)

	// Before the conversation exists, a forged click starts nothing.
	c0, _, err := dialBot(t, p, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	c0.hello("", 0)
	c0.raw([]byte(`{"type":"postback","id":"f0","title":"Admin","payload":"{\"nextDialogstateId\":\"admin-panel\"}"}`))
	c0.refusedWith("f0", "postback")
	if n := len(emu.Requests()); n != 0 {
		t.Fatalf("a forged click before the start made %d platform call(s)", n)
	}

	c, _, err := dialBot(t, p, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	c.hello("", 0)
	w := c.start("st-1")
	greet := c.until("the greeting", func(f widget.Frame) bool {
		m, ok := f.(*widget.Msg)
		return ok && m.From == "bot" && len(m.Body.QuickReplies) > 0
	}).(*widget.Msg)
	qr := greet.Body.QuickReplies[0]
	if !strings.Contains(qr.Payload, "nextDialogstateId") {
		t.Fatalf("the greeting's quick reply %+v has no JSON payload", qr)
	}
	idle(t, emu)
	for i, payload := range []string{
		`{"nextDialogstateId":"admin-panel","parameters":[{"key":"externalId","value":"admin"},{"key":"role","value":"admin"}]}`,
		`{"nextDialogstateId":"admin-panel","sessionDataToSet":[{"key":"role","value":"admin"}]}`,
		`{"title":"Dutch","params":[{"key":"role","value":"admin"}],"nextDialogstateId":"admin-panel","type":"button"}`,
		strings.Replace(qr.Payload, "emu-", "admin-panel-", 1), // the genuine title, another dialog state
	} {
		title := "Admin"
		if i == 3 {
			title = qr.Title
		}
		frame, _ := json.Marshal(map[string]string{"type": "postback", "id": fmt.Sprintf("f%d", i+1), "title": title, "payload": payload})
		c.raw(frame)
		c.refusedWith(fmt.Sprintf("f%d", i+1), "postback")
	}

	// The genuine click, then the widget's retry of it.
	c.send(&widget.Postback{ID: "g1", Title: qr.Title, Payload: qr.Payload})
	seq := c.ack("g1")
	c.botSaid("You clicked " + qr.Title + ".")
	c.send(&widget.Postback{ID: "g1", Title: qr.Title, Payload: qr.Payload})
	if again := c.ack("g1"); again != seq {
		t.Fatalf("the retried click got seq %d, want the stored %d", again, seq)
	}
	idle(t, emu)

	var clicks []chatlayerCall
	for _, call := range chatlayerCalls(t, emu, w.Conversation) {
		if strings.Contains(call.raw, "admin") {
			t.Errorf("a forged click reached Chatlayer: %s", call.raw)
		}
		if call.Kind == "postback" {
			clicks = append(clicks, call)
		}
	}
	if len(clicks) != 1 || clicks[0].Message.PostbackMessage == nil || clicks[0].Message.PostbackMessage.Title != qr.Title ||
		!strings.HasPrefix(clicks[0].Message.PostbackMessage.NextDialogstateID, "emu-") {
		t.Fatalf("postbacks upstream = %+v, want the one genuine click", clicks)
	}
	if n := countStored(t, p, "acme", who{token: w.Visitor}, "Admin"); n != 0 {
		t.Fatalf("%d forged click(s) stored", n)
	}
}

// TestChatAIBotIdentityFromLoginOnly: ChatAIBot's variables.contact
// comes from a signed login only; identity keys in setSessionData are
// refused by name and reach neither variables.contact nor
// variables.conversation; a forged click reaches nothing.
func TestChatAIBotIdentityFromLoginOnly(t *testing.T) {
	p, emu := chataibotBinary(t, "")

	claimed := func(v map[string]any) bool {
		b, _ := json.Marshal(v)
		return strings.Contains(string(b), "admin") || strings.Contains(string(b), "boss@")
	}
	// No login.
	c, _, err := dialBot(t, p, "shop", "")
	if err != nil {
		t.Fatal(err)
	}
	c.hello("", 0)
	c.send(&widget.Session{ID: "s1", Data: widget.RawJSON(`{"name":"admin","email":"boss@example.com","contact":{"email":"boss@example.com"},"plan":"pro"}`)})
	c.refusedWith("s1", "name", "email", "contact")
	c.send(&widget.Send{ID: "m1", Text: "hello"})
	c.ack("m1")
	c.botSaid("Your first message was: hello")
	convs := emu.Conversations()
	if len(convs) != 1 {
		t.Fatalf("upstream conversations: %d, want 1", len(convs))
	}
	first := convs[0]
	if first.Variables["contact"] != nil || claimed(first.Variables) {
		t.Fatalf("the start call's variables = %v, want no contact and no claimed identity", first.Variables)
	}
	if conv, _ := first.Variables["conversation"].(map[string]any); conv["plan"] != "pro" {
		t.Fatalf("the start call's variables = %v, want the plan", first.Variables)
	}
	// A forged click reaches nothing.
	c.raw([]byte(`{"type":"postback","id":"f1","title":"Admin","payload":"admin-menu"}`))
	c.refusedWith("f1", "postback")
	c.send(&widget.Send{ID: "m2", Text: "still here"})
	c.ack("m2")
	c.botSaid("You said: still here")
	if got, _ := emu.Conversation(first.ID); strings.Contains(strings.Join(got.Messages, "|"), "Admin") || strings.Contains(strings.Join(got.Messages, "|"), "admin-menu") {
		t.Fatalf("a forged click reached ChatAIBot: %q", got.Messages)
	}

	// A signed login beside the claim: the login's contact only.
	c2, _, err := dialBot(t, p, "shop", "")
	if err != nil {
		t.Fatal(err)
	}
	c2.hello("", 0)
	c2.send(&widget.Login{ID: "l1", User: "user-7", Signature: sign("user-7"), Name: "Bo Ek", Email: "bo@example.com"})
	c2.send(&widget.Session{ID: "s1", Data: widget.RawJSON(`{"email":"boss@example.com","Phone":"000"}`)})
	c2.refusedWith("s1", "email", "Phone")
	c2.send(&widget.Send{ID: "m1", Text: "hi"})
	c2.ack("l1")
	c2.ack("m1")
	c2.botSaid("Your first message was: hi")
	for _, cv := range emu.Conversations() {
		if cv.ID == first.ID {
			continue
		}
		contact, _ := cv.Variables["contact"].(map[string]any)
		if contact["email"] != "bo@example.com" || contact["name"] != "Bo Ek" || contact["phone"] != nil || claimed(cv.Variables) {
			t.Fatalf("the signed visitor's variables = %v, want the login's contact only", cv.Variables)
		}
		return
	}
	t.Fatal("the signed visitor's conversation did not reach ChatAIBot")
}
