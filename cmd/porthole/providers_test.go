package main

import (
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

// nothingAfter waits d, then replays the conversation after seq over a
// fresh socket (a timed-out read would close this one) and fails on any
// message stored since.
func nothingAfter(t testing.TB, p *proc, bot, token string, seq uint64, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	c, _, err := dialBot(t, p, bot, "")
	if err != nil {
		t.Fatal(err)
	}
	w := c.hello(token, seq)
	if w.Last != seq {
		t.Fatalf("%d message(s) stored after seq %d, want none", w.Last-seq, seq)
	}
	c.c.CloseNow()
}

// TestChatAIBotEndToEnd runs the real binary against the ChatAIBot
// emulator with a real WebSocket client.
func TestChatAIBotEndToEnd(t *testing.T) {
	const secret = "e2e-webhook-secret-0123456789"
	emu := chataibottest.NewServer(chataibottest.Options{})
	t.Cleanup(emu.Close)
	addr := freeAddr(t)
	emu.SetCallback("http://"+addr+"/hooks/chataibot/shop", secret)
	data := t.TempDir()
	cfg := filepath.Join(data, "porthole.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`bots:
  - id: shop
    provider: chataibot
    origins: ["self"]
    chataibot:
      base_url: %q
      token: "${CHATAIBOT_TOKEN}"
      bot_key: %q
      webhook_secret: "${CHATAIBOT_HOOK}"
    widget: {title: "Shop", greeting: "Ask us anything"}
`, emu.URL, chataibottest.DefaultBotKey)), 0o600)
	t.Setenv("CHATAIBOT_TOKEN", chataibottest.DefaultToken)
	t.Setenv("CHATAIBOT_HOOK", secret)
	p := launch(t, addr, data, "--config", cfg)
	var responses []string // every HTTP answer, for the secret scan

	c, _, err := dialBot(t, p, "shop", "")
	if err != nil {
		t.Fatal(err)
	}
	w := c.hello("", 0)
	if w.Widget.Greeting != "Ask us anything" {
		t.Fatalf("welcome greeting = %q", w.Widget.Greeting)
	}
	// Session data set before the first message travels with the start.
	c.send(&widget.Session{ID: "s1", Data: widget.RawJSON(`{"plan":"pro"}`)})
	c.ack("s1")
	c.send(&widget.Send{ID: "m1", Text: "hello"})
	c.ack("m1")
	if s := c.status("m1"); s.State != widget.StateDelivered {
		t.Fatalf("status = %+v", s)
	}
	c.botSaid("Your first message was: hello. Your plan: pro")

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
	seqBefore := lastSeq(t, p, "shop", w.Visitor)
	req, _ := http.NewRequest("POST", "http://"+addr+"/hooks/chataibot/shop",
		strings.NewReader(`{"conversation_id":"`+convs[0].ID+`","message_id":"forged","messages":[{"type":"text","data":{"body":"forged"}}]}`))
	req.Header.Set("Authorization", "Bearer wrong-secret")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	responses = append(responses, string(body))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged callback: %d", resp.StatusCode)
	}
	nothingAfter(t, p, "shop", w.Visitor, seqBefore, 300*time.Millisecond)

	// A callback delivered twice shows once.
	emu.DuplicateCallbacks(1)
	c.send(&widget.Send{ID: "m5", Text: "twice?"})
	twice := c.botSaid("You said: twice?")
	nothingAfter(t, p, "shop", w.Visitor, twice.Seq, 500*time.Millisecond)

	// A 429 followed by success delivers once.
	before := emu.Stats().Messages
	emu.FailNext(1, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}})
	c.send(&widget.Send{ID: "m6", Text: "after a 429"})
	c.ack("m6")
	if s := c.status("m6"); s.State != widget.StateDelivered {
		t.Fatalf("after 429: %+v", s)
	}
	c.botSaid("You said: after a 429")
	if got := emu.Stats().Messages - before; got != 1 {
		t.Fatalf("the platform accepted the message %d times", got)
	}

	// The platform down for a while: the visitor sees failed, then
	// delivered once it is back, with the reply.
	emu.FailNext(3, http.StatusServiceUnavailable, nil)
	c.send(&widget.Send{ID: "m7", Text: "are you down?"})
	c.ack("m7")
	if s := c.status("m7"); s.State != widget.StateFailed || s.Error != "upstream_unavailable" {
		t.Fatalf("while down: %+v", s)
	}
	if s := c.status("m7"); s.State != widget.StateDelivered {
		t.Fatalf("once back: %+v", s)
	}
	c.botSaid("You said: are you down?")

	// No token or secret in any frame, HTTP answer or log line.
	scan := append(append(c.frames, responses...), p.log())
	for _, s := range scan {
		for _, secretValue := range []string{chataibottest.DefaultToken, secret} {
			if strings.Contains(s, secretValue) {
				t.Fatalf("a secret leaked: %.200s", s)
			}
		}
	}
}

// lastSeq is the conversation's newest seq, from a welcome.
func lastSeq(t testing.TB, p *proc, bot, token string) uint64 {
	t.Helper()
	c, _, err := dialBot(t, p, bot, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.c.CloseNow()
	return c.hello(token, 0).Last
}
