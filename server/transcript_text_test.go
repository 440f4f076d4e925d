package server

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// TestChatPageTranscriptText: each of two visitors downloads, through the
// page's "save conversation" link, a text file with their own messages
// and the bot's replies to them, never the other's; a visitor without a
// conversation gets 404.
func TestChatPageTranscriptText(t *testing.T) {
	h := newHarness(t, nil)
	ann, bob := h.browser(true), h.browser(true)
	for _, v := range []struct {
		b    *browserClient
		text string
	}{{ann, "ann's secret"}, {bob, "bob's question"}} {
		v.b.open("demo")
		v.b.send(v.text)
		v.b.waitPage("the echo", func(d *goquery.Document) bool { return contains(bubbles(d), "echo: "+v.text) })
	}
	get := func(b *browserClient, href string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, b.url.ResolveReference(mustParse(href)).String(), nil)
		resp := b.do(req)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(body)
	}
	for _, v := range []struct {
		b          *browserClient
		own, other string
	}{{ann, "ann's secret", "bob's question"}, {bob, "bob's question", "ann's secret"}} {
		doc := v.b.open("demo")
		href, ok := doc.Find("a.save[download]").Attr("href")
		if !ok {
			t.Fatalf("no save link on the page:\n%s", v.b.html())
		}
		status, hdr, body := get(v.b, href)
		if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") ||
			!strings.HasPrefix(hdr.Get("Content-Disposition"), "attachment;") {
			t.Fatalf("GET %s: %d %v", href, status, hdr)
		}
		if !strings.Contains(body, "You: "+v.own) || !strings.Contains(body, ": echo: "+v.own) {
			t.Errorf("transcript lacks the visitor's own messages:\n%s", body)
		}
		if strings.Contains(body, v.other) {
			t.Errorf("transcript holds another visitor's message %q:\n%s", v.other, body)
		}
		if !strings.Contains(body, " UTC] You: ") {
			t.Errorf("transcript lines carry no time:\n%s", body)
		}
	}
	// A stranger (no cookie) and a link token outside the panel get nothing.
	stranger := h.browser(true)
	stranger.open("demo")
	if status, _, body := get(stranger, "demo/transcript.txt"); status != 404 || strings.Contains(body, "secret") {
		t.Errorf("a visitor without a conversation: %d %q", status, body)
	}
	token := ann.page.Find("input[name=v]").AttrOr("value", "")
	if token == "" {
		t.Fatal("no visitor token on ann's page")
	}
	if status, _, body := get(stranger, "demo/transcript.txt?v="+token); status != 404 || strings.Contains(body, "secret") {
		t.Errorf("a top-level link with another visitor's token: %d %q", status, body)
	}
}
