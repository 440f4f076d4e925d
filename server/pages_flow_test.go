package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/server/store"
	"github.com/porthole-chat/porthole/widget"
)

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
		{"ja, nl;q=0.5, fr;q=0.8", "", "fr", "Envoyer"},
		{"es-MX, en;q=0.5", "", "es", "Enviar"},
		{"he-IL", "", "he", "שליחה"},
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
		dir := "ltr"
		if tc.want == "he" {
			dir = "rtl"
		}
		if got := doc.Find("html").AttrOr("dir", ""); got != dir {
			t.Errorf("lang %s: dir %q, want %s", tc.want, got, dir)
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
		if got := h.srv.service.AwaitingReply(t.Context(), tc.c, tc.es); got != tc.want {
			t.Errorf("%s: AwaitingReply = %v, want %v", tc.name, got, tc.want)
		}
	}
	sc, _, err := h.st.Conversation(t.Context(), "demo", "typing-visitor")
	if err != nil {
		t.Fatal(err)
	}
	h.srv.service.Typing(sc.ID, true)
	if !h.srv.service.AwaitingReply(t.Context(), Conv{ID: sc.ID, Created: now.Add(-time.Hour)}, nil) {
		t.Error("not waiting while the bot types")
	}
	h.srv.service.Typing(sc.ID, false)
	if h.srv.service.AwaitingReply(t.Context(), Conv{ID: sc.ID, Created: now.Add(-time.Hour)}, nil) {
		t.Error("still waiting after the bot stopped typing")
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
