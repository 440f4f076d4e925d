package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

// browserClient is a form-submitting HTTP client: with a cookie jar it
// is a top-level page; without one it is a page in a third-party frame,
// whose cookies the browser drops.
type browserClient struct {
	t    *testing.T
	h    *harness
	http *http.Client
	// headers go on every request (Sec-Fetch-Dest, Accept-Language).
	headers http.Header
	// page is the last page loaded and its URL.
	page *goquery.Document
	url  *url.URL
	resp *http.Response
}

func (h *harness) browser(cookies bool) *browserClient {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if cookies {
		c.Jar, _ = cookiejar.New(nil)
	}
	return &browserClient{t: h.t, h: h, http: c, headers: http.Header{}}
}

func (b *browserClient) do(req *http.Request) *http.Response {
	b.t.Helper()
	for k, v := range b.headers {
		req.Header[k] = v
	}
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp
}

// open loads a page (path and query relative to the server) and parses it.
func (b *browserClient) open(rel string) *goquery.Document {
	b.t.Helper()
	u := mustParse(b.h.hs.URL + "/chat/").ResolveReference(mustParse(rel))
	req, _ := http.NewRequest(http.MethodGet, u.String(), nil)
	resp := b.do(req)
	defer resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	b.page, b.url, b.resp = doc, u, resp
	return doc
}

func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// submit sends the form matched by sel on the current page, with its
// hidden fields, the given fields and the clicked button's name=value
// (button is a selector inside the form, or ""), as a same-origin post.
// It returns the response; a 303 is not followed.
func (b *browserClient) submit(sel, button string, fields url.Values) *http.Response {
	b.t.Helper()
	form := b.page.Find(sel).First()
	if form.Length() == 0 {
		b.t.Fatalf("no form %q on the page:\n%s", sel, b.html())
	}
	vals := url.Values{}
	form.Find("input[type=hidden]").Each(func(_ int, s *goquery.Selection) {
		vals.Add(s.AttrOr("name", ""), s.AttrOr("value", ""))
	})
	if button != "" {
		btn := form.Find(button).First()
		if btn.Length() == 0 {
			b.t.Fatalf("no button %q in form %q", button, sel)
		}
		vals.Set(btn.AttrOr("name", ""), btn.AttrOr("value", ""))
	}
	for k, v := range fields {
		vals[k] = v
	}
	action := b.url.ResolveReference(mustParse(form.AttrOr("action", "")))
	req, _ := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.h.hs.URL)
	resp := b.do(req)
	resp.Body.Close()
	return resp
}

// follow loads the page a 303 points at.
func (b *browserClient) follow(resp *http.Response) *goquery.Document {
	b.t.Helper()
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("status %d, want 303", resp.StatusCode)
	}
	loc := b.url.ResolveReference(mustParse(resp.Header.Get("Location")))
	req, _ := http.NewRequest(http.MethodGet, loc.String(), nil)
	r := b.do(req)
	defer r.Body.Close()
	doc, err := goquery.NewDocumentFromReader(r.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	b.page, b.url, b.resp = doc, loc, r
	return doc
}

// send types text into the composer and sends it, then loads the page.
func (b *browserClient) send(text string) *goquery.Document {
	b.t.Helper()
	return b.follow(b.submit("form.composer", "", url.Values{"text": {text}}))
}

func (b *browserClient) html() string {
	h, _ := b.page.Html()
	return h
}

// bubbles returns the text of the transcript's messages, without the
// screen-reader author prefix.
func bubbles(doc *goquery.Document) []string {
	var out []string
	doc.Find(".log > li:not(.day)").Each(func(_ int, li *goquery.Selection) {
		c := li.Clone()
		c.Find(".sr, .state, .at").Remove()
		out = append(out, strings.Join(strings.Fields(c.Text()), " "))
	})
	return out
}

// waitPage reloads the page until pred holds.
func (b *browserClient) waitPage(what string, pred func(*goquery.Document) bool) *goquery.Document {
	b.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	rel := b.url.String()
	for {
		doc := b.open(rel)
		if pred(doc) {
			return doc
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out waiting for %s; page:\n%v", what, bubbles(doc))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (h *harness) conversations(bot string) int {
	h.t.Helper()
	n := 0
	h.fp.mu.Lock()
	defer h.fp.mu.Unlock()
	seen := map[string]bool{}
	for _, c := range h.fp.calls {
		if !seen[c.Conversation] && c.Bot == bot {
			seen[c.Conversation] = true
			n++
		}
	}
	return n
}

func TestChatPageConversation(t *testing.T) {
	h := newHarness(t, nil)
	b := h.browser(true)
	doc := b.open("demo")
	if b.resp.StatusCode != 200 {
		t.Fatalf("GET /chat/demo: %d", b.resp.StatusCode)
	}
	if got := doc.Find(".log > li").Length(); got != 0 {
		t.Fatalf("a new visitor sees %d messages", got)
	}
	if got := doc.Find(".greeting").Text(); got != "Hi! Ask me anything, or pick a topic." {
		t.Errorf("greeting = %q", got)
	}
	if h.conversations("demo") != 0 {
		t.Fatal("GET created a conversation upstream; only the first message should")
	}
	if doc.Find("form.composer textarea[name=text][required]").Length() != 1 || doc.Find("form.composer input[name=csrf]").AttrOr("value", "") == "" {
		t.Fatalf("no composer with a form token:\n%s", b.html())
	}

	doc = b.send("hello page")
	if loc := b.url; loc.Fragment != "end" || loc.Query().Has("v") {
		t.Errorf("redirected to %s; want the page at #end, without a token while the cookie works", loc)
	}
	doc = b.waitPage("the echo", func(d *goquery.Document) bool { return contains(bubbles(d), "echo: hello page") })
	got := bubbles(doc)
	if got[0] != "hello page" {
		t.Errorf("transcript = %q", got)
	}
	if st := doc.Find(".log > li.user .state").Text(); !strings.Contains(st, "Delivered") {
		t.Errorf("state of the visitor's message = %q, want Delivered", st)
	}
	if sr := doc.Find(".log > li.user .sr").First().Text(); sr != "You: " {
		t.Errorf("screen-reader prefix = %q", sr)
	}
	if h.conversations("demo") != 1 {
		t.Errorf("%d conversations upstream, want 1", h.conversations("demo"))
	}
	// The greeting (Start) went up before the text, in order.
	h.fp.mu.Lock()
	kinds := []provider.Kind{}
	for _, c := range h.fp.calls {
		kinds = append(kinds, c.Kind)
	}
	h.fp.mu.Unlock()
	if len(kinds) != 2 || kinds[0] != provider.Start || kinds[1] != provider.Text {
		t.Errorf("upstream calls = %v, want start then text", kinds)
	}
}

// TestChatPageDoubleSubmit: the same form sent twice (a double click, a
// resubmitted post) stores and sends its message once; a second message
// from the same rendering is a new message.
func TestChatPageDoubleSubmit(t *testing.T) {
	h := newHarness(t, nil)
	h.fp.echo = false
	b := h.browser(true)
	b.open("demo")
	for range 2 {
		if r := b.submit("form.composer", "", url.Values{"text": {"once"}}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("post: %d", r.StatusCode)
		}
	}
	b.submit("form.composer", "", url.Values{"text": {"twice"}})
	doc := b.open("demo")
	if got := bubbles(doc); len(got) != 2 || got[0] != "once" || got[1] != "twice" {
		t.Fatalf("transcript = %q, want [once twice]", got)
	}
	// Calls go upstream in order per conversation and after the redirect:
	// once "twice" is there, "once" has gone as often as it ever will.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := map[string]int{}
		h.fp.mu.Lock()
		for _, c := range h.fp.calls {
			n[c.Text]++
		}
		h.fp.mu.Unlock()
		if n["twice"] > 0 {
			if n["once"] != 1 {
				t.Errorf("\"once\" went upstream %d times", n["once"])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing reached upstream: %v", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestChatPagePostbacks clicks a quick reply, a button and a card's
// button: the payload goes upstream from the stored message, never from
// the form, and a forged reference does nothing.
func TestChatPagePostbacks(t *testing.T) {
	h := newHarness(t, nil)
	h.fp.echo = false
	b := h.browser(true)
	b.open("demo")
	b.send("start")
	conv := h.conversationOf(t, "demo")
	err := h.srv.service.Deliver(t.Context(), conv, "k1",
		widget.Body{Kind: widget.KindCarousel, Cards: []widget.Card{
			{Title: "A", Buttons: []widget.Button{{Type: widget.ButtonPostback, Title: "Pick A", Payload: "card-a"}}},
			{Title: "B", Buttons: []widget.Button{{Type: widget.ButtonURL, Title: "Site", URL: "https://example.com"}, {Type: widget.ButtonPostback, Title: "Pick B", Payload: "card-b"}}},
		}},
		widget.Body{Kind: widget.KindButtons, Text: "Choose", Buttons: []widget.Button{{Type: widget.ButtonPostback, Title: "Yes", Payload: "btn-yes"}}},
		widget.Body{Kind: widget.KindText, Text: "Or quickly:", QuickReplies: []widget.QuickReply{{Title: "Fast", Payload: "qr-fast"}, {Title: "Slow", Payload: "qr-slow"}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	doc := b.open("demo")
	if n := doc.Find("form.quick button").Length(); n != 2 {
		t.Fatalf("%d quick replies shown, want 2", n)
	}
	click := func(form, button, wantTitle, wantPayload string) {
		t.Helper()
		b.follow(b.submit(form, button, nil))
		last := h.lastCall()
		if last.Kind != provider.Postback || last.Text != wantTitle || last.Payload != wantPayload {
			t.Fatalf("upstream got %+v, want postback %q/%q", last, wantTitle, wantPayload)
		}
	}
	click("form.quick", "button:nth-of-type(2)", "Slow", "qr-slow")
	click("#m2 .card:nth-of-type(1) .buttons", "button", "Pick A", "card-a")
	click("#m2 .card:nth-of-type(2) .buttons", "button", "Pick B", "card-b")
	click("#m3 .buttons", "button", "Yes", "btn-yes")

	// Quick replies of an older message are gone.
	if n := b.page.Find("form.quick").Length(); n != 0 {
		t.Errorf("quick replies still offered after the visitor answered")
	}
	before := len(h.fp.calls)
	for _, forged := range []string{"2.q.5", "2.b.0", "1.q.0", "999.q.0", "x", "3.c.1.0"} {
		r := b.submit("form.composer", "", url.Values{"pb": {forged}, "text": {""}})
		if r.StatusCode != http.StatusSeeOther {
			t.Errorf("forged ref %q: status %d, want a quiet 303", forged, r.StatusCode)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if after := len(h.fp.calls); after != before {
		t.Errorf("forged references sent %d messages upstream", after-before)
	}
}

func (h *harness) conversationOf(t *testing.T, bot string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		h.fp.mu.Lock()
		for _, c := range h.fp.calls {
			if c.Bot == bot {
				h.fp.mu.Unlock()
				return c.Conversation
			}
		}
		h.fp.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no conversation reached upstream")
	return ""
}

// lastCall waits for the upstream calls to settle and returns the last.
func (h *harness) lastCall() provider.Message {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	n := -1
	for time.Now().Before(deadline) {
		h.fp.mu.Lock()
		cur := len(h.fp.calls)
		h.fp.mu.Unlock()
		if cur == n {
			break
		}
		n = cur
		time.Sleep(30 * time.Millisecond)
	}
	h.fp.mu.Lock()
	defer h.fp.mu.Unlock()
	return h.fp.calls[len(h.fp.calls)-1]
}

// brokenStore fails every call once broken is set.
type brokenStore struct {
	store.Store
	broken bool
}

var errBroken = errors.New("disk on fire")

func (s *brokenStore) Conversation(ctx context.Context, bot, visitor string) (store.Conversation, bool, error) {
	if s.broken {
		return store.Conversation{}, false, errBroken
	}
	return s.Store.Conversation(ctx, bot, visitor)
}

func (s *brokenStore) Find(ctx context.Context, bot, visitor string) (store.Conversation, error) {
	if s.broken {
		return store.Conversation{}, errBroken
	}
	return s.Store.Find(ctx, bot, visitor)
}
