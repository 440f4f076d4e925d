package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/widget"
)

// freeAddr returns a free loopback address.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// botSaid waits for a bot message whose summary contains text.
func (w *wsc) botSaid(text string) *widget.Msg {
	w.t.Helper()
	return w.until("the bot to say "+text, func(f widget.Frame) bool {
		m, ok := f.(*widget.Msg)
		return ok && m.From == "bot" && strings.Contains(m.Body.Summary()+m.Body.Text, text)
	}).(*widget.Msg)
}

func (w *wsc) status(id string) *widget.Status {
	w.t.Helper()
	return w.until("status of "+id, func(f widget.Frame) bool {
		s, ok := f.(*widget.Status)
		return ok && s.ID == id
	}).(*widget.Status)
}

// who is whom a test socket says hello as: a visitor token, and
// the login of a signed-in user, whose conversation the token alone
// does not open.
type who struct {
	token string
	login *widget.Login
}

// helloAs says hello as v and returns the welcome.
func (w *wsc) helloAs(v who, after uint64) *widget.Welcome {
	w.t.Helper()
	w.send(&widget.Hello{Bot: w.bot, Visitor: v.token, After: after, Locale: "en", TZ: "UTC", Login: v.login})
	return w.until("welcome", func(f widget.Frame) bool { return f.Type() == widget.TypeWelcome }).(*widget.Welcome)
}

// nothingAfter waits d, then replays the conversation after seq over a
// fresh socket (a timed-out read would close this one) and fails on any
// message stored since.
func nothingAfter(t testing.TB, p *proc, bot string, v who, seq uint64, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	c, _, err := dialBot(t, p, bot, "")
	if err != nil {
		t.Fatal(err)
	}
	w := c.helloAs(v, seq)
	if w.Last != seq {
		t.Fatalf("%d message(s) stored after seq %d, want none", w.Last-seq, seq)
	}
	c.c.CloseNow()
}

// chataibotHookSecret is the ChatAIBot webhook secret of the provider tests.
const chataibotHookSecret = "e2e-webhook-secret-0123456789"

// chataibotBinary runs the binary with bot "shop" on the ChatAIBot
// emulator, with an identity secret and extra lines of bot settings.
func chataibotBinary(t *testing.T, extra string) (*proc, *chataibottest.Server) {
	t.Helper()
	emu := chataibottest.NewServer(chataibottest.Options{})
	t.Cleanup(emu.Close)
	addr := freeAddr(t)
	emu.SetCallback("http://"+addr+"/hooks/chataibot/shop", chataibotHookSecret)
	data := t.TempDir()
	cfg := filepath.Join(data, "porthole.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`bots:
  - id: shop
    provider: chataibot
    origins: ["self"]
    identity_secret: "${IDENTITY_SECRET}"
    chataibot:
      base_url: %q
      token: "${CHATAIBOT_TOKEN}"
      bot_key: %q
      webhook_secret: "${CHATAIBOT_HOOK}"
`, emu.URL, chataibottest.DefaultBotKey)+extra), 0o600)
	t.Setenv("CHATAIBOT_TOKEN", chataibottest.DefaultToken)
	t.Setenv("CHATAIBOT_HOOK", chataibotHookSecret)
	t.Setenv("IDENTITY_SECRET", identitySecret)
	return launch(t, addr, data, "--config", cfg), emu
}

// TestChatAIBotEndToEnd runs the real binary against the ChatAIBot
// emulator with a real WebSocket client.
func TestChatAIBotEndToEnd(t *testing.T) {
	p, emu := chataibotBinary(t, `    widget: {title: "Shop", greeting: "Ask us anything"}
`)
	addr := p.addr
	var responses []string // every HTTP answer, for the secret scan

	c, _, err := dialBot(t, p, "shop", "")
	if err != nil {
		t.Fatal(err)
	}
	w := c.hello("", 0)
	if w.Widget.Greeting != "Ask us anything" || w.Conversation != "" {
		t.Fatalf("welcome = %+v, want the greeting and no conversation", w)
	}
	// Session data and a login sent before the first message wait for
	// the conversation, and travel with ChatAIBot's start call.
	c.send(&widget.Session{ID: "s1", Data: widget.RawJSON(`{"plan":"pro"}`)})
	ann := &widget.Login{User: "user-42", Signature: sign("user-42"), Name: "Ann Lee", Email: "ann@example.com"}
	c.send(&widget.Login{ID: "l1", User: ann.User, Signature: ann.Signature, Name: ann.Name, Email: ann.Email})
	c.send(&widget.Send{ID: "m1", Text: "hello"})
	c.ack("s1")
	c.ack("l1")
	c.ack("m1")
	if s := c.status("m1"); s.State != widget.StateDelivered {
		t.Fatalf("status = %+v", s)
	}
	c.botSaid("Your first message was: hello. Your plan: pro")
	if convs := emu.Conversations(); len(convs) != 1 {
		t.Fatalf("upstream conversations: %d, want 1", len(convs))
	} else if contact, _ := convs[0].Variables["contact"].(map[string]any); contact["name"] != "Ann Lee" || contact["email"] != "ann@example.com" {
		t.Fatalf("the start call's variables = %v, want the login's contact", convs[0].Variables)
	}

	// A carousel, then a button click.
	c.send(&widget.Send{ID: "m2", Text: "carousel"})
	car := c.until("a carousel", func(f widget.Frame) bool {
		m, ok := f.(*widget.Msg)
		return ok && m.Body.Kind == widget.KindCarousel
	}).(*widget.Msg)
	if len(car.Body.Cards) != 2 || car.Body.Cards[0].Buttons[0].Type != widget.ButtonPostback {
		t.Fatalf("carousel = %+v", car.Body)
	}
	c.send(&widget.Send{ID: "m3", Text: "buttons"})
	btn := c.until("buttons", func(f widget.Frame) bool {
		m, ok := f.(*widget.Msg)
		return ok && m.Body.Kind == widget.KindButtons
	}).(*widget.Msg).Body.Buttons[0]
	c.send(&widget.Postback{ID: "m4", Title: btn.Title, Payload: btn.Payload})
	c.ack("m4")
	c.botSaid("You said: " + btn.Title)

	// A callback with a wrong secret, for the visitor's real upstream
	// conversation, gets 401 and reaches nobody.
	convs := emu.Conversations()
	if len(convs) != 1 {
		t.Fatalf("upstream conversations: %d, want 1", len(convs))
	}
	seqBefore := lastSeq(t, p, "shop", who{w.Visitor, ann})
	req, _ := http.NewRequest("POST", "http://"+addr+"/hooks/chataibot/shop",
		strings.NewReader(`{"conversation_id":"`+convs[0].ID+`","message_id":"forged","messages":[{"type":"text","data":{"body":"forged"}}]}`))
	req.Header.Set("Authorization", "Bearer wrong-secret")
	responses = append(responses, refused(t, req))
	nothingAfter(t, p, "shop", who{w.Visitor, ann}, seqBefore, 300*time.Millisecond)

	// A callback delivered twice shows once.
	emu.DuplicateCallbacks(1)
	c.send(&widget.Send{ID: "m5", Text: "twice?"})
	twice := c.botSaid("You said: twice?")
	nothingAfter(t, p, "shop", who{w.Visitor, ann}, twice.Seq, 500*time.Millisecond)

	upstreamFaults(t, c, emu.FailNext, func() int { return emu.Stats().Messages })

	// No token or secret in any frame, HTTP answer or log line.
	scan := append(append(c.frames, responses...), p.log())
	for _, s := range scan {
		for _, secretValue := range []string{chataibottest.DefaultToken, chataibotHookSecret} {
			if strings.Contains(s, secretValue) {
				t.Fatalf("a secret leaked: %.200s", s)
			}
		}
	}
}

// identitySecret is the bots' identity_secret in the provider tests.
const identitySecret = "e2e-identity-secret-0123456789"

// sign is what the host site's backend computes for Porthole.login.
func sign(user string) string {
	m := hmac.New(sha256.New, []byte(identitySecret))
	m.Write([]byte(user))
	return hex.EncodeToString(m.Sum(nil))
}

// lastSeq is the conversation's newest seq, from a welcome.
func lastSeq(t testing.TB, p *proc, bot string, v who) uint64 {
	t.Helper()
	c, _, err := dialBot(t, p, bot, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.c.CloseNow()
	return c.helloAs(v, 0).Last
}

// TestChatlayerEndToEnd runs the real binary against the Chatlayer
// emulator (V1 webhook channel) with a real WebSocket client.
func TestChatlayerEndToEnd(t *testing.T) {
	p, emu := chatlayerBinary(t)
	addr := p.addr
	var responses []string

	c, _, err := dialBot(t, p, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	c.hello("", 0)
	// Session data and a login before the start wait for it, and go
	// with the introMessage.
	c.send(&widget.Session{ID: "s1", Data: widget.RawJSON(`{"plan":"pro"}`)})
	ann := &widget.Login{User: "user-42", Signature: sign("user-42"), Name: "Ann Lee"}
	c.send(&widget.Login{ID: "l1", User: ann.User, Signature: ann.Signature, Name: ann.Name})
	w := c.start("st-1")
	c.ack("s1")
	c.ack("l1")
	// The greeting: Porthole sent introMessage, the bot spoke first.
	greet := c.until("the greeting", func(f widget.Frame) bool {
		m, ok := f.(*widget.Msg)
		return ok && m.From == "bot" && len(m.Body.QuickReplies) > 0
	}).(*widget.Msg)
	var intros []chatlayertest.Request
	for _, q := range emu.Requests() {
		if q.Kind == "intro" {
			intros = append(intros, q)
		}
	}
	if len(intros) != 1 || intros[0].UserID != w.Conversation {
		t.Fatalf("introMessages: %+v, want one for %s", intros, w.Conversation)
	}
	var intro struct {
		User        struct{ FirstName string } `json:"user"`
		SessionData map[string]string          `json:"sessionData"`
	}
	if err := json.Unmarshal(intros[0].Body, &intro); err != nil || intro.SessionData["plan"] != "pro" ||
		intro.SessionData["externalId"] != "user-42" || intro.User.FirstName != "Ann" {
		t.Fatalf("introMessage body %s (%v), want the session data and the login", intros[0].Body, err)
	}

	// Session data goes with the next message.
	c.send(&widget.Send{ID: "m1", Text: "carousel"})
	c.ack("m1")
	if s := c.status("m1"); s.State != widget.StateDelivered {
		t.Fatalf("status = %+v", s)
	}
	car := c.until("a carousel", func(f widget.Frame) bool {
		m, ok := f.(*widget.Msg)
		return ok && m.Body.Kind == widget.KindCarousel
	}).(*widget.Msg)
	c.botSaid("Your plan is pro.")

	// A quick reply of the greeting and a carousel button are postbacks
	// whose payloads go back untouched.
	qr := greet.Body.QuickReplies[0]
	c.send(&widget.Postback{ID: "m2", Title: qr.Title, Payload: qr.Payload})
	c.ack("m2")
	c.botSaid("You clicked " + qr.Title + ".")
	var pb *widget.Button
	for _, card := range car.Body.Cards {
		for i, b := range card.Buttons {
			if b.Type == widget.ButtonPostback && pb == nil {
				pb = &card.Buttons[i]
			}
		}
	}
	if pb == nil {
		t.Fatalf("no postback button in the carousel: %+v", car.Body)
	}
	c.send(&widget.Postback{ID: "m3", Title: pb.Title, Payload: pb.Payload})
	c.botSaid("You clicked " + pb.Title + ".")

	// A callback with a wrong verify token, for this very conversation,
	// gets 401 and reaches nobody.
	idle(t, emu)
	seqBefore := lastSeq(t, p, "acme", who{w.Visitor, ann})
	req, _ := http.NewRequest("POST", "http://"+addr+"/hooks/chatlayer/acme",
		strings.NewReader(`{"senderId":"`+w.Conversation+`","message":{"text":"forged"},"messageCounter":999,"verifyToken":"wrong"}`))
	responses = append(responses, refused(t, req))
	nothingAfter(t, p, "acme", who{w.Visitor, ann}, seqBefore, 300*time.Millisecond)

	// A retried (duplicated) callback shows once.
	emu.DuplicateCallbacks(1)
	c.send(&widget.Send{ID: "m4", Text: "twice?"})
	c.botSaid("You said: twice?")
	idle(t, emu)
	time.Sleep(300 * time.Millisecond) // a wrong second copy would be stored by now
	if n := countStored(t, p, "acme", who{w.Visitor, ann}, "You said: twice?"); n != 1 {
		t.Fatalf("the duplicated callback was stored %d times", n)
	}

	upstreamFaults(t, c, emu.FailNext, func() int { return emu.Accepted(w.Conversation) })

	for _, s := range append(append(c.frames, responses...), p.log()) {
		for _, v := range []string{chatlayertest.DefaultToken, chatlayertest.DefaultVerifyToken, "emu-token-secret"} {
			if strings.Contains(s, v) {
				t.Fatalf("a secret leaked: %.200s", s)
			}
		}
	}
}

// idle waits until the Chatlayer emulator has no callback in flight.
func idle(t testing.TB, emu *chatlayertest.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := emu.WaitIdle(ctx); err != nil {
		t.Fatalf("emulator not idle: %v", err)
	}
}

// countStored replays the whole conversation over a fresh socket and
// counts the messages whose text contains text.
func countStored(t testing.TB, p *proc, bot string, v who, text string) int {
	t.Helper()
	c, _, err := dialBot(t, p, bot, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.c.CloseNow()
	w := c.helloAs(v, 0)
	n := 0
	for seq := uint64(0); seq < w.Last; {
		m := c.until("replay", func(f widget.Frame) bool { return f.Type() == widget.TypeMsg }).(*widget.Msg)
		seq = m.Seq
		if strings.Contains(m.Body.Text, text) {
			n++
		}
	}
	return n
}

// upstreamFaults checks, against a platform's emulator, that a 429 then
// success delivers the message once, and that a platform down for three
// attempts shows the visitor "failed", then "delivered" with the reply.
// failNext injects faults; accepted counts the messages the platform took.
func upstreamFaults(t testing.TB, c *wsc, failNext func(n, status int, h http.Header), accepted func() int) {
	t.Helper()
	before := accepted()
	failNext(1, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}})
	c.send(&widget.Send{ID: "f429", Text: "after a 429"})
	c.ack("f429")
	if s := c.status("f429"); s.State != widget.StateDelivered {
		t.Fatalf("after 429: %+v", s)
	}
	c.botSaid("You said: after a 429")
	if got := accepted() - before; got != 1 {
		t.Fatalf("the platform accepted the message %d times", got)
	}

	failNext(3, http.StatusServiceUnavailable, nil)
	c.send(&widget.Send{ID: "fdown", Text: "are you down?"})
	c.ack("fdown")
	if s := c.status("fdown"); s.State != widget.StateFailed || s.Error != "upstream_unavailable" {
		t.Fatalf("while down: %+v", s)
	}
	if s := c.status("fdown"); s.State != widget.StateDelivered {
		t.Fatalf("once back: %+v", s)
	}
	c.botSaid("You said: are you down?")
}

// refused posts a forged callback, asserts the 401 and returns the
// answer's body for the secret scan.
func refused(t testing.TB, req *http.Request) string {
	t.Helper()
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged callback: %d %s", resp.StatusCode, body)
	}
	return string(body)
}

// TestChatlayerSessionDataAtOnce: with session_dialogstate, session data
// the page sets reaches Chatlayer at once, through its asynchronous
// endpoint, before the visitor writes anything: the bot's first answer
// knows it. Identity keys from the page stay out of it.
func TestChatlayerSessionDataAtOnce(t *testing.T) {
	p, emu := chatlayerBinary(t, "bot_id: "+chatlayertest.DefaultBotID, "session_dialogstate: porthole-session")
	c, _, err := dialBot(t, p, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	c.hello("", 0)
	w := c.start("st-1")
	c.until("the greeting", func(f widget.Frame) bool {
		m, ok := f.(*widget.Msg)
		return ok && m.From == "bot"
	})
	c.send(&widget.Session{ID: "s1", Data: widget.RawJSON(`{"plan":"gold","email":"forged@example.com"}`)})
	c.refusedWith("s1", "email")
	waitFor(t, "the session data with Chatlayer", 10*time.Second, func() bool {
		return string(emu.SessionData(w.Conversation)["plan"]) == `"gold"`
	})
	if n := emu.Accepted(w.Conversation); n != 1 {
		t.Fatalf("Chatlayer took %d messages, want only the introMessage: the data went without one", n)
	}
	if ds := emu.Dialogstates(w.Conversation); len(ds) != 1 || ds[0] != "porthole-session" {
		t.Fatalf("dialog states triggered: %v", ds)
	}
	if _, ok := emu.SessionData(w.Conversation)["email"]; ok {
		t.Fatal("an identity key from the page reached Chatlayer")
	}
	c.send(&widget.Send{ID: "m1", Text: "hi"})
	c.botSaid("Your plan is gold.")
	for _, s := range append(c.frames, p.log()) {
		if strings.Contains(s, chatlayertest.DefaultToken) || strings.Contains(s, "emu-token-secret") {
			t.Fatalf("a secret leaked: %.200s", s)
		}
	}
}
