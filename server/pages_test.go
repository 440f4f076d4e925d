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
	doc.Find(".log > li").Each(func(_ int, li *goquery.Selection) {
		c := li.Clone()
		c.Find(".sr, .state").Remove()
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

// TestChatPageWithoutCookies is a page in a third-party frame: the
// browser drops the cookie, and the token carried in forms and links
// keeps the visitor.
func TestChatPageWithoutCookies(t *testing.T) {
	h := newHarness(t, nil)
	b := h.browser(false)
	b.headers.Set("Sec-Fetch-Dest", "iframe")
	b.open("demo?embed=1&host=" + url.QueryEscape("http://localhost:8080"))
	doc := b.send("no cookies here")
	if !b.url.Query().Has("v") || b.url.Query().Get("embed") != "1" || b.url.Query().Get("host") != "http://localhost:8080" {
		t.Fatalf("redirected to %s; want the token, embed=1 and the host carried", b.url)
	}
	doc = b.waitPage("the echo", func(d *goquery.Document) bool { return contains(bubbles(d), "echo: no cookies here") })
	if got := bubbles(doc); got[0] != "no cookies here" {
		t.Fatalf("transcript = %q", got)
	}
	if !doc.Find("body").HasClass("embed") {
		t.Error("embed page lost its layout")
	}
	// The embedded page hands its visitor to the loader that framed it,
	// at the origin it named, one of the bot's.
	if doc.Find("html").AttrOr("data-visitor", "") == "" || doc.Find("html").AttrOr("data-host", "") != "http://localhost:8080" || doc.Find("script").Length() != 1 {
		t.Error("the embedded page does not hand the visitor over")
	}
	// Named by no host, or by one that is not the bot's, it hands over
	// nothing.
	for _, q := range []string{"", "&host=" + url.QueryEscape("https://evil.example")} {
		other := h.browser(false)
		other.headers.Set("Sec-Fetch-Dest", "iframe")
		d := other.open("demo?embed=1" + q)
		if d.Find("html").AttrOr("data-visitor", "") != "" || d.Find("script").Length() != 0 || strings.Contains(d.Find("form.composer").AttrOr("action", ""), "host") {
			t.Errorf("embed=1%s: the page hands its visitor over", q)
		}
	}
	doc = b.send("second")
	if got := bubbles(b.waitPage("second", func(d *goquery.Document) bool { return contains(bubbles(d), "echo: second") })); len(got) != 4 {
		t.Errorf("transcript = %q, want one conversation of 4 messages", got)
	}
	if n := h.conversations("demo"); n != 1 {
		t.Errorf("%d conversations, want 1", n)
	}
}

// TestChatPageVisitorChoice: a token in a link names the visitor in the
// loader's panel (embed=1 in a frame), but never at the top level, so a
// link cannot move someone into a stranger's chat.
func TestChatPageVisitorChoice(t *testing.T) {
	h := newHarness(t, nil)
	stranger := h.browser(true)
	stranger.open("demo")
	stranger.send("stranger's secret")
	strangerURL := stranger.page.Find("form.composer").AttrOr("action", "")
	token := stranger.page.Find("form.composer input[name=v]").AttrOr("value", "")
	if token == "" {
		t.Fatal("no token in the form")
	}

	me := h.browser(true)
	me.open("demo")
	me.send("mine")
	doc := me.open("demo?v=" + url.QueryEscape(token))
	if got := bubbles(doc); contains(got, "stranger's secret") {
		t.Fatalf("a top-level link with another visitor's token showed their chat: %q (action %s)", got, strangerURL)
	}
	me.headers.Set("Sec-Fetch-Dest", "iframe")
	doc = me.open("demo?embed=1&v=" + url.QueryEscape(token))
	if got := bubbles(doc); !contains(got, "stranger's secret") {
		t.Fatalf("the framed hand-over did not continue the token's conversation: %q", got)
	}
	// A fresh browser has no conversation of its own, yet a top-level
	// link's token is not taken either, embedded or not: it would bind
	// the visitor to the link author's conversation (session fixation).
	fresh := h.browser(true)
	for _, q := range []string{"demo?v=", "demo?embed=1&v="} {
		if got := bubbles(fresh.open(q + url.QueryEscape(token))); len(got) != 0 {
			t.Fatalf("a top-level link %s… gave a fresh visitor the token's conversation: %q", q, got)
		}
	}
	fresh.send("my own words")
	if got := bubbles(stranger.open("demo")); contains(got, "my own words") {
		t.Fatalf("the fresh visitor's message landed in the link author's conversation: %q", got)
	}
	// A forged or foreign token is ignored.
	if got := bubbles(fresh.open("acme?v=" + url.QueryEscape(token))); len(got) != 0 {
		t.Fatalf("demo's token opened a conversation with acme: %q", got)
	}
}

func TestChatPageRefusesCrossSitePosts(t *testing.T) {
	h := newHarness(t, nil)
	b := h.browser(true)
	b.open("demo")
	vals := url.Values{"text": {"forged"}}
	b.page.Find("form.composer input[type=hidden]").Each(func(_ int, s *goquery.Selection) {
		vals.Set(s.AttrOr("name", ""), s.AttrOr("value", ""))
	})
	for _, tc := range []struct{ name, origin, site string }{
		{"foreign Origin", "https://evil.example", ""},
		{"null Origin", "null", ""},
		{"null Origin, cross-site fetch", "null", "cross-site"},
		{"same host, other port", "http://127.0.0.1:1", ""},
		{"no Origin, cross-site fetch", "", "cross-site"},
		{"no Origin, same-site fetch", "", "same-site"},
	} {
		req, _ := http.NewRequest(http.MethodPost, h.hs.URL+"/chat/demo", strings.NewReader(vals.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if tc.site != "" {
			req.Header.Set("Sec-Fetch-Site", tc.site)
		}
		resp := b.do(req)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", tc.name, resp.StatusCode)
		}
	}
	// A same-origin post with a token for another visitor is refused too,
	// and what was typed comes back in the composer.
	vals.Set("csrf", "AAAA")
	req, _ := http.NewRequest(http.MethodPost, h.hs.URL+"/chat/demo", strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", h.hs.URL)
	resp := b.do(req)
	doc, _ := goquery.NewDocumentFromReader(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(doc.Find(".error").Text(), "expired") || doc.Find("textarea").Text() != "forged" {
		t.Errorf("bad form token: status %d, error %q, draft %q", resp.StatusCode, doc.Find(".error").Text(), doc.Find("textarea").Text())
	}
	if n := len(h.fp.calls); n != 0 {
		t.Errorf("refused posts sent %d calls upstream", n)
	}
}

func TestChatPageHeaders(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Options) { c.PublicURL = "https://chat.example.com" })
	b := h.browser(true)
	b.open("acme")
	hd := b.resp.Header
	csp := hd.Get("Content-Security-Policy")
	for _, want := range []string{"frame-ancestors https://www.acme.com https://*.acme.org;", "default-src 'none'", "form-action 'self'", "base-uri 'none'", "style-src 'nonce-"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	nonce := b.page.Find("style").AttrOr("nonce", "")
	if nonce == "" || !strings.Contains(csp, "'nonce-"+nonce+"'") {
		t.Errorf("style nonce %q is not the CSP's", nonce)
	}
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
		"Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8",
	} {
		if got := hd.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	cookie := hd.Get("Set-Cookie")
	for _, want := range []string{"porthole_chat=", "Path=/chat/", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("Set-Cookie %q lacks %s", cookie, want)
		}
	}
	// The demo bot (self, loopback) may be framed by its own server and
	// by loopback sites.
	b.open("demo")
	if csp := b.resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'self' http://localhost:*") {
		t.Errorf("demo CSP = %q", csp)
	}
	plain := h.browser(true)
	plain.open("nosuchbot")
	if plain.resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown bot: %d", plain.resp.StatusCode)
	}
}

func TestChatPageCookieNotSecureOnPlainHTTP(t *testing.T) {
	h := newHarness(t, nil)
	b := h.browser(true)
	b.open("demo")
	if c := b.resp.Header.Get("Set-Cookie"); c == "" || strings.Contains(c, "Secure") {
		t.Errorf("Set-Cookie over plain HTTP = %q; want a cookie without Secure, or the browser would drop it", c)
	}
}

func TestChatPageFailedAndRetry(t *testing.T) {
	h := newHarness(t, nil)
	h.fp.setFail(func(m provider.Message, _ int) error {
		if m.Kind == provider.Text {
			return &provider.Error{Reason: provider.ReasonRejected}
		}
		return nil
	})
	b := h.browser(true)
	b.open("demo")
	b.send("doomed")
	doc := b.waitPage("the failure", func(d *goquery.Document) bool { return d.Find(".msg.user.failed").Length() == 1 })
	if st := doc.Find(".failed .state").Text(); !strings.Contains(st, "Not delivered") {
		t.Errorf("failed state = %q", st)
	}
	if doc.Find(".failed .state form button[name=retry]").Length() != 1 {
		t.Fatalf("no retry button:\n%s", b.html())
	}
	h.fp.setFail(nil)
	b.follow(b.submit(".failed .state form", "button", nil))
	doc = b.waitPage("the retry's echo", func(d *goquery.Document) bool { return contains(bubbles(d), "echo: doomed") })
	if doc.Find(".failed").Length() != 0 {
		t.Error("the message still shows failed after a successful retry")
	}
	if got := bubbles(doc); len(got) != 2 {
		t.Errorf("transcript = %q: the retry must not add a message", got)
	}
}

func TestChatPageBadInputKeepsTheDraft(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Options) { c.Limits.Burst, c.Limits.MessagesPerMinute = 1, 1 })
	b := h.browser(true)
	b.open("demo")

	r := b.submit("form.composer", "", url.Values{"text": {"   "}})
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("empty message: %d, want 400", r.StatusCode)
	}
	long := strings.Repeat("é", widget.MaxText+1)
	r = b.submit("form.composer", "", url.Values{"text": {long}})
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("too long: %d, want 400", r.StatusCode)
	}
	b.send("first")
	for _, text := range []string{"second"} {
		vals := url.Values{"text": {text}}
		b.page.Find("form.composer input[type=hidden]").Each(func(_ int, s *goquery.Selection) {
			vals.Set(s.AttrOr("name", ""), s.AttrOr("value", ""))
		})
		req, _ := http.NewRequest(http.MethodPost, h.hs.URL+"/chat/demo", strings.NewReader(vals.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", h.hs.URL)
		resp := b.do(req)
		doc, _ := goquery.NewDocumentFromReader(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("over the rate: %d, want 429", resp.StatusCode)
		}
		if doc.Find("textarea").Text() != text || !strings.Contains(doc.Find(".error[role=alert]").Text(), "too quickly") {
			t.Errorf("rate-limited page: draft %q, error %q", doc.Find("textarea").Text(), doc.Find(".error").Text())
		}
		if doc.Find("textarea[aria-invalid=true][aria-describedby=composer-error]").Length() != 1 {
			t.Error("the composer does not point at its error")
		}
	}
}

func TestChatPageLanguage(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct{ accept, query, want, send string }{
		{"de-CH,fr;q=0.9", "", "de", "Senden"},
		{"es, nl;q=0.5, fr;q=0.8", "", "fr", "Envoyer"},
		{"nl", "lang=en", "en", "Send"},
		{"", "", "en", "Send"},
	} {
		b := h.browser(true)
		b.headers.Set("Accept-Language", tc.accept)
		doc := b.open("demo?" + tc.query)
		if got := doc.Find("html").AttrOr("lang", ""); got != tc.want {
			t.Errorf("Accept-Language %q, query %q: lang %q, want %q", tc.accept, tc.query, got, tc.want)
		}
		if got := doc.Find(".send").Text(); got != tc.send {
			t.Errorf("lang %s: send button %q, want %q", tc.want, got, tc.send)
		}
	}
}

func TestChatPageWaitsForReplies(t *testing.T) {
	h := newHarness(t, nil)
	h.fp.echo = false
	b := h.browser(true)
	b.open("demo")
	doc := b.send("anyone?")
	if r := b.resp.Header.Get("Refresh"); !strings.HasPrefix(r, "2; url=demo?poll=") || !strings.HasSuffix(r, "#end") {
		t.Errorf("Refresh = %q while waiting for a reply", r)
	}
	if doc.Find(".poll [role=status]").Length() != 1 || doc.Find(`.poll a[href*="refresh=off"]`).Length() != 1 {
		t.Errorf("waiting page lacks its status or the stop link:\n%s", b.html())
	}
	// Turned off, it still offers the check link and does not refresh.
	doc = b.open(doc.Find(`.poll a[href*="refresh=off"]`).AttrOr("href", ""))
	if r := b.resp.Header.Get("Refresh"); r != "" {
		t.Errorf("Refresh = %q after the visitor turned it off", r)
	}
	if doc.Find(".poll a").Length() != 1 || doc.Find("form.composer").AttrOr("action", "") != "demo?refresh=off" {
		t.Errorf("refresh=off page: links %d, action %q", doc.Find(".poll a").Length(), doc.Find("form.composer").AttrOr("action", ""))
	}
	// The reply arrives: after the quiet time the page stops refreshing.
	conv := h.conversationOf(t, "demo")
	if err := h.srv.service.Deliver(context.Background(), conv, "r", widget.Text("here")); err != nil {
		t.Fatal(err)
	}
	b.open("demo")
	if b.resp.Header.Get("Refresh") == "" {
		t.Error("the page stopped refreshing right after the first reply; a turn may have more")
	}
}

func TestAwaitingReply(t *testing.T) {
	h := newHarness(t, nil)
	now := time.Now()
	c := Conv{ID: "c", Created: now.Add(-time.Hour)}
	user := func(ago time.Duration, st string, seq uint64) Entry {
		return Entry{Seq: seq, Mine: true, State: st, At: now.Add(-ago)}
	}
	bot := func(ago time.Duration, seq uint64) Entry {
		return Entry{Seq: seq, At: now.Add(-ago)}
	}
	for _, tc := range []struct {
		name string
		c    Conv
		es   []Entry
		want bool
	}{
		{"new conversation, greeting due", Conv{Created: now}, nil, true},
		{"old empty conversation", c, nil, false},
		{"message not yet with the platform", c, []Entry{user(10*time.Minute, widget.StateSent, 1)}, true},
		{"delivered, unanswered", c, []Entry{user(5*time.Second, widget.StateDelivered, 1)}, true},
		{"delivered long ago, unanswered", c, []Entry{user(2*time.Minute, widget.StateDelivered, 1)}, false},
		{"failed", c, []Entry{user(time.Second, widget.StateFailed, 1)}, false},
		{"answered moments ago", c, []Entry{user(5*time.Second, widget.StateDelivered, 1), bot(time.Second, 2)}, true},
		{"answered and quiet", c, []Entry{user(20*time.Second, widget.StateDelivered, 1), bot(10*time.Second, 2)}, false},
	} {
		if got := h.srv.service.AwaitingReply(tc.c, tc.es); got != tc.want {
			t.Errorf("%s: AwaitingReply = %v, want %v", tc.name, got, tc.want)
		}
	}
	h.srv.service.Typing("typing-conv", true)
	if !h.srv.service.AwaitingReply(Conv{ID: "typing-conv", Created: now.Add(-time.Hour)}, nil) {
		t.Error("not waiting while the bot types")
	}
}

func TestChatPageStoreDown(t *testing.T) {
	st := &brokenStore{Store: store.NewMemory()}
	h := newHarness(t, func(_ *Config, o *Options) { o.Store = st })
	b := h.browser(true)
	b.open("demo")
	st.broken = true
	vals := url.Values{"text": {"kept"}}
	b.page.Find("form.composer input[type=hidden]").Each(func(_ int, s *goquery.Selection) {
		vals.Set(s.AttrOr("name", ""), s.AttrOr("value", ""))
	})
	req, _ := http.NewRequest(http.MethodPost, h.hs.URL+"/chat/demo", strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", h.hs.URL)
	resp := b.do(req)
	doc, _ := goquery.NewDocumentFromReader(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || doc.Find("textarea").Text() != "kept" || doc.Find(".error").Length() != 1 {
		t.Errorf("store down: status %d, draft %q, error %q; want 503 with the text kept", resp.StatusCode, doc.Find("textarea").Text(), doc.Find(".error").Text())
	}
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

// TestChatPageKeyRotation: after a new key is put in front of the old
// one, the visitor's cookie, form token and link token still work; once
// the old key is gone they do not, and the post is refused with the text
// kept.
func TestChatPageKeyRotation(t *testing.T) {
	st := store.NewMemory()
	oldKey, newKey := Secret(strings.Repeat("a", 32)), Secret(strings.Repeat("b", 32))
	withKeys := func(keys ...Secret) *harness {
		return newHarness(t, func(c *Config, o *Options) { c.SessionKeys, o.Store = keys, st })
	}
	before := withKeys(oldKey)
	b := before.browser(true)
	b.open("demo")
	b.send("under the old key")
	page := b.page
	jar := b.http.Jar

	after := withKeys(newKey, oldKey)
	b2 := after.browser(true)
	b2.http.Jar = jar
	u := mustParse(after.hs.URL)
	jar.SetCookies(u, jar.Cookies(mustParse(before.hs.URL+"/chat/")))
	doc := b2.open("demo")
	if got := bubbles(doc); len(got) == 0 || got[0] != "under the old key" {
		t.Fatalf("after rotation the cookie lost the visitor: %q", got)
	}
	// A form rendered under the old key still posts.
	b2.page, b2.url = page, mustParse(after.hs.URL+"/chat/demo")
	if r := b2.submit("form.composer", "", url.Values{"text": {"old form"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("a form from before the rotation: %d", r.StatusCode)
	}

	gone := withKeys(newKey)
	b3 := gone.browser(true)
	b3.page, b3.url = page, mustParse(gone.hs.URL+"/chat/demo")
	r := b3.submit("form.composer", "", url.Values{"text": {"too old"}})
	if r.StatusCode != http.StatusForbidden {
		t.Errorf("a form signed with a removed key: %d, want 403", r.StatusCode)
	}
}

// TestChatPageStartLimited: a first message over the conversation start
// limits creates nothing and shows the page again with the reason and
// the text kept; a visitor who has a conversation is not limited.
func TestChatPageStartLimited(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Options) { c.Limits.StartsPerMinute, c.Limits.StartBurst = 1, 1 })
	a := h.browser(true)
	a.open("demo")
	a.send("first of all")
	b := h.browser(true)
	b.open("demo")
	vals := url.Values{"text": {"me too"}}
	b.page.Find("form.composer input[type=hidden]").Each(func(_ int, s *goquery.Selection) {
		vals.Set(s.AttrOr("name", ""), s.AttrOr("value", ""))
	})
	req, _ := http.NewRequest(http.MethodPost, h.hs.URL+"/chat/demo", strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", h.hs.URL)
	resp := b.do(req)
	doc, _ := goquery.NewDocumentFromReader(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("first message over the start limit: %d, Retry-After %q; want 429 with one", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if doc.Find("textarea").Text() != "me too" || !strings.Contains(doc.Find(".error[role=alert]").Text(), "new conversations") {
		t.Errorf("refused page: draft %q, error %q", doc.Find("textarea").Text(), doc.Find(".error").Text())
	}
	if n := h.created(); n != 1 {
		t.Fatalf("%d conversations, want the first visitor's only", n)
	}
	doc = a.send("second")
	if got := bubbles(doc); !contains(got, "second") {
		t.Fatalf("the visitor with a conversation was held up: %q", got)
	}
}
