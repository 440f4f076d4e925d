package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

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
