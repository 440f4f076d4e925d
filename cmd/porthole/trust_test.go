package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/widget"
)

// TestCallbackScopedToBot: a Chatlayer callback authenticated with bot
// alpha's verify token that names a conversation of bot beta (same
// provider) is refused with 403 and stores nothing, counted or not; the
// same message through beta's own hook with beta's token is stored.
func TestCallbackScopedToBot(t *testing.T) {
	emu := chatlayertest.NewServer(chatlayertest.Options{})
	t.Cleanup(emu.Close)
	addr := freeAddr(t)
	emu.SetCallback("http://" + addr + "/hooks/chatlayer/beta")
	data := t.TempDir()
	cfg := filepath.Join(data, "porthole.yaml")
	const alphaVerify = "alpha-verify-token-0123456789"
	os.WriteFile(cfg, []byte(fmt.Sprintf(`bots:
  - id: alpha
    provider: chatlayer
    origins: ["self"]
    chatlayer: {base_url: %[1]q, channel_id: %[2]q, token: "${CHATLAYER_TOKEN}", verify_token: %[3]q, reorder_wait: 300ms}
  - id: beta
    provider: chatlayer
    origins: ["self"]
    chatlayer: {base_url: %[1]q, channel_id: %[2]q, token: "${CHATLAYER_TOKEN}", verify_token: "${CHATLAYER_VERIFY}", reorder_wait: 300ms}
`, emu.URL, chatlayertest.DefaultChannelID, alphaVerify)), 0o600)
	t.Setenv("CHATLAYER_TOKEN", chatlayertest.DefaultToken)
	t.Setenv("CHATLAYER_VERIFY", chatlayertest.DefaultVerifyToken)
	p := launch(t, addr, data, "--config", cfg)

	// Beta's visitor starts a conversation and gets its greeting.
	c, _, err := dialBot(t, p, "beta", "")
	if err != nil {
		t.Fatal(err)
	}
	c.hello("", 0)
	w := c.start("st-1")
	c.until("the greeting", func(f widget.Frame) bool {
		m, ok := f.(*widget.Msg)
		return ok && m.From == "bot"
	})
	c.c.CloseNow()

	hook := func(bot, verify, text string, counter int) int {
		t.Helper()
		body := fmt.Sprintf(`{"verifyToken":%q,"senderId":%q,"message":{"text":%q}`, verify, w.Conversation, text)
		if counter > 0 {
			body += fmt.Sprintf(`,"messageCounter":%d`, counter)
		}
		res, err := http.Post("http://"+p.addr+"/hooks/chatlayer/"+bot, "application/json", strings.NewReader(body+"}"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	// Alpha's token, beta's conversation: refused, counted or not.
	if code := hook("alpha", alphaVerify, "forged with a counter", 50); code != http.StatusForbidden {
		t.Errorf("counted cross-bot callback: %d, want 403", code)
	}
	if code := hook("alpha", alphaVerify, "forged without a counter", 0); code != http.StatusForbidden {
		t.Errorf("uncounted cross-bot callback: %d, want 403", code)
	}
	// Beta's own hook and token: stored (the forged ones would be too,
	// had they got through, so the check below sees them).
	if code := hook("beta", chatlayertest.DefaultVerifyToken, "genuine reply", 0); code != http.StatusOK {
		t.Fatalf("beta's own callback: %d, want 200", code)
	}
	_, ms := replayBot(t, p, "beta", w.Visitor, 0)
	var texts []string
	for _, m := range ms {
		texts = append(texts, m.Body.Text)
	}
	if !has(texts, "genuine reply") {
		t.Fatalf("beta's own callback was not stored: %q", texts)
	}
	if has(texts, "forged") {
		t.Fatalf("a callback with alpha's token wrote into beta's conversation: %q", texts)
	}
	if !strings.Contains(p.log(), "conversation of another bot refused") {
		t.Error("no refusal in the log")
	}
}

// TestChatPageFixationLink: an attacker who has a conversation sends a
// visitor without a cookie a link to the chat page carrying the
// attacker's visitor token, from another site or typed in, plain or
// embedded (embed=1) at the top level. The visitor's browser is not
// bound to the attacker's conversation: it shows none of it, and what
// the visitor writes never lands in it.
func TestChatPageFixationLink(t *testing.T) {
	s := newSite(t)
	// The attacker's conversation, over the widget's socket.
	c, _, err := dialBot(t, s.proxy, "demo", "")
	if err != nil {
		t.Fatal(err)
	}
	c.hello("", 0)
	attacker := c.start("st-1").Visitor
	c.send(&widget.Send{ID: "m1", Text: "attacker's bait"})
	c.ack("m1")
	c.c.CloseNow()

	q := url.QueryEscape(attacker)
	links := []string{s.url + "/chat/demo?v=" + q, s.url + "/chat/demo?embed=1&v=" + q}
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Links</title></head><body>
<a id="plain" href="%s">chat</a> <a id="embed" href="%s">embedded chat</a></body></html>`, links[0], links[1])
	}))
	t.Cleanup(foreign.Close)

	victim := browser(t, 1280, 860)
	for i, how := range []string{"cross-site link", "cross-site link, embed=1", "typed in", "typed in, embed=1"} {
		if i < 2 {
			navigate(t, victim, foreign.URL+"/")
			if err := chromedp.Do(victim, chromedp.Click(chromedp.JSPath(`document.getElementById("`+[]string{"plain", "embed"}[i]+`")`), chromedp.NodeVisible)); err != nil {
				t.Fatal(err)
			}
		} else {
			navigate(t, victim, links[i-2])
		}
		doc := waitDOM(t, victim, mainDoc, "the chat page ("+how+")", func(d *goquery.Document) bool { return d.Find("form.composer textarea").Length() == 1 })
		if has(messages(doc), "bait") {
			t.Fatalf("%s: the visitor sees the attacker's conversation: %q", how, messages(doc))
		}
		if i == 0 {
			typeInto(t, victim, mainDoc, "textarea", "victim's secret")
			clickButton(t, victim, mainDoc, "Send")
			waitDOM(t, victim, mainDoc, "the victim's message", func(d *goquery.Document) bool { return has(messages(d), "victim's secret") })
		}
	}
	// The victim's conversation is the victim's own, by the cookie.
	navigate(t, victim, s.url+"/chat/demo")
	doc := waitDOM(t, victim, mainDoc, "the victim's conversation", func(d *goquery.Document) bool { return has(messages(d), "victim's secret") })
	if has(messages(doc), "bait") {
		t.Fatalf("the victim's cookie names the attacker's conversation: %q", messages(doc))
	}
	// And the attacker reads nothing of it.
	_, ms := replayBot(t, s.proxy, "demo", attacker, 0)
	for _, m := range ms {
		if strings.Contains(m.Body.Text, "victim") {
			t.Fatalf("the victim's message landed in the attacker's conversation: %q", m.Body.Text)
		}
	}
}

// TestHandOverOnlyToHost: a page on the proxy's site (same site, so the
// visitor's chat cookie comes along) that is not one of the bot's origins
// frames the embedded chat page, plain or claiming the real host's
// origin, and receives no visitor token. frame-ancestors would already
// stop it in this browser; the test removes that header from the chat
// page's responses, as a browser without frame-ancestors would ignore
// it, to see that the token itself is addressed to the host only.
// TestFallbackHandOver shows that the real host page still gets it.
func TestHandOverOnlyToHost(t *testing.T) {
	s := newSite(t)
	ctx := browserOneProcess(t, 1280, 860)
	// The visitor has a conversation and its cookie.
	navigate(t, ctx, s.url+"/chat/demo")
	typeInto(t, ctx, mainDoc, "textarea", "hello")
	clickButton(t, ctx, mainDoc, "Send")
	waitDOM(t, ctx, mainDoc, "the message", func(d *goquery.Document) bool { return has(messages(d), "You: hello") })

	chromedp.Listen(ctx, func(ev any) {
		e, ok := ev.(*fetch.EventRequestPaused)
		if !ok {
			return
		}
		go func() {
			var hs []*fetch.HeaderEntry
			for _, h := range e.ResponseHeaders {
				if !strings.EqualFold(h.Name, "Content-Security-Policy") {
					hs = append(hs, h)
				}
			}
			body, err := chromedp.Call(ctx, fetch.GetResponseBody, fetch.GetResponseBodyParams{RequestID: e.RequestID})
			if err == nil {
				_, err = chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: e.RequestID, ResponseCode: e.ResponseStatusCode, ResponseHeaders: hs, Body: body.Body})
			}
			if err != nil {
				t.Logf("cannot rewrite %s: %v", e.Request.URL, err)
			}
		}()
	})
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/chat/demo?*", RequestStage: fetch.RequestStageResponse}}}); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	framer := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Same site</title>
<script>window.got = []; addEventListener("message", function (e) { got.push(e.origin + " " + JSON.stringify(e.data)); });</script></head><body>
<iframe title="plain" src="%[1]s/chat/demo?embed=1"></iframe>
<iframe title="claiming the host" src="%[1]s/chat/demo?embed=1&host=%[2]s"></iframe>
</body></html>`, s.url, url.QueryEscape(s.host.URL))
	})}}
	framer.Start()
	t.Cleanup(framer.Close)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	before := strings.Count(s.proxy.log(), "path=/chat/demo status=200")
	navigate(t, ctx, "http://localhost:"+port+"/")
	// Both frames show the visitor's chat (the cookie came along), and
	// had time to run their script.
	waitDOM(t, ctx, chatFrame, "the chat in the same-site frame", func(d *goquery.Document) bool { return has(messages(d), "You: hello") })
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(s.proxy.log(), "path=/chat/demo status=200") < before+2 {
		if time.Now().After(deadline) {
			t.Fatal("the proxy did not serve both frames")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if got := evalJS[[]string](t, ctx, `window.got`); len(got) != 0 {
		t.Fatalf("a same-site page outside the bot's origins received the hand-over: %q", got)
	}
}
