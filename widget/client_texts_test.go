package widget

import (
	"slices"
	"testing"
)

// TestClientTextsFlow: the widget starts in the frame's language, asks
// the server for that language's built-in texts and shows them;
// setLanguage asks for another language and keeps the texts on screen,
// in one language, until its texts are here.
func TestClientTextsFlow(t *testing.T) {
	c := NewClient(ClientOptions{Bot: "acme", Languages: []string{"en", "en-US"}, FrameLang: "ar"})
	if c.Language() != "ar" {
		t.Fatalf("language %s, want the frame's ar before the page's en", c.Language())
	}
	// Before the texts are here (the widget waits for them): keys, and
	// the page's overrides.
	u := c.SetLook(Look{Texts: map[string]string{"ar.close": "أغلق"}})
	if u.Texts != "ar" {
		t.Fatalf("no fetch of the frame's language: %+v", u)
	}
	tx := c.Texts()
	if tx.Lang() != "ar" || tx.Dir() != "rtl" || tx.Get(TextRetry) != TextRetry || tx.Get(TextClose) != "أغلق" {
		t.Fatalf("before the texts: %s %q %q", tx.Lang(), tx.Get(TextRetry), tx.Get(TextClose))
	}
	if again := c.SetLook(Look{Texts: map[string]string{"ar.close": "أغلق"}}); again.Texts != "" {
		t.Fatal("asked twice while the first fetch is out")
	}
	u = c.TextsLoaded("ar", BuiltinJSON("ar"))
	if u.Change&ChangeLook == 0 || u.Texts != "" {
		t.Fatalf("texts arrived: %+v", u)
	}
	tx = c.Texts()
	if tx.Get(TextRetry) != "إعادة المحاولة" || tx.Get(TextClose) != "أغلق" || tx.Unread(2) != "رسالتان غير مقروءتين" {
		t.Fatalf("after the fetch: %q %q %q", tx.Get(TextRetry), tx.Get(TextClose), tx.Unread(2))
	}

	// setLanguage: the Arabic texts stay until the German ones are here.
	u = c.SetLanguage("de-AT")
	if u.Texts != "de" || c.Texts().Lang() != "ar" {
		t.Fatalf("setLanguage: fetch %q, shown %s", u.Texts, c.Texts().Lang())
	}
	u = c.TextsLoaded("de", BuiltinJSON("de"))
	if u.Change&ChangeLook == 0 || c.Texts().Lang() != "de" || c.Texts().Get(TextRetry) != "Erneut versuchen" || c.Texts().Dir() != "ltr" {
		t.Fatalf("after the German texts: %s %q", c.Texts().Lang(), c.Texts().Get(TextRetry))
	}
	// "" returns to the automatic choice, asked for again (the
	// browser's cache has it), German until it is here.
	u = c.SetLanguage("")
	if u.Texts != "ar" || c.Texts().Lang() != "de" {
		t.Fatalf("back to automatic: %+v, shown %s", u, c.Texts().Lang())
	}
	// Texts that come after the language changed again are not shown.
	c.SetLanguage("de")
	if u = c.TextsLoaded("ar", BuiltinJSON("ar")); c.Texts().Lang() != "de" || u.Change&ChangeLook != 0 {
		t.Fatalf("late texts shown: %s", c.Texts().Lang())
	}
	// A language without built-in texts falls back like any other choice.
	c.SetLanguage("")
	c.TextsLoaded("ar", BuiltinJSON("ar"))
	if u = c.SetLanguage("ja"); u.Texts != "" || c.Texts().Lang() != "ar" {
		t.Fatalf("setLanguage(ja): %+v, shown %s", u, c.Texts().Lang())
	}
	// The page's language option beats the frame's; the bot's locale in
	// the welcome too, unless the page set one.
	c.SetLanguage("")
	if c.SetLook(Look{Locale: "pl"}); c.Language() != "pl" {
		t.Fatalf("page option: %s", c.Language())
	}
}

// TestClientTextsFailure: when the texts cannot be fetched the widget
// shows the keys (something is badly wrong) and asks again after the
// next welcome.
func TestClientTextsFailure(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock)
	srv.textsDown = true
	srv.look = Look{Title: "Acme", Locale: "he"}
	tb := newTab(t, "tab", srv, new(MemoryStorage), 7)
	tb.online()
	if !slices.Equal(tb.fetched, []string{"en", "he"}) {
		t.Fatalf("fetched %q, want en at start, then he after the welcome named the bot's locale", tb.fetched)
	}
	if tx := tb.c.Texts(); tx.Lang() != "he" || tx.Get(TextRetry) != TextRetry {
		t.Fatalf("after failures: %s %q", tx.Lang(), tx.Get(TextRetry))
	}
	tb.apply(tb.c.SetOpen(true, true))
	if len(tb.fetched) != 2 {
		t.Fatalf("asked again without a welcome: %q", tb.fetched)
	}
	srv.textsDown = false
	tb.lose(CloseAbnormal)
	tb.sleep()
	tb.connect()
	if tb.fetched[len(tb.fetched)-1] != "he" || tb.c.Texts().Lang() != "he" || tb.c.Texts().Get(TextRetry) != "ניסיון חוזר" {
		t.Fatalf("after a welcome: fetched %q, texts %s %q", tb.fetched, tb.c.Texts().Lang(), tb.c.Texts().Get(TextRetry))
	}
}

// TestClientTextsRejectsGarbage: a body that is not a texts object (an
// error page, say) counts as a failed fetch.
func TestClientTextsRejectsGarbage(t *testing.T) {
	c := NewClient(ClientOptions{Bot: "acme", FrameLang: "nl"})
	if u := c.SetLook(Look{}); u.Texts != "nl" {
		t.Fatalf("%+v", u)
	}
	c.TextsLoaded("nl", []byte("<html>502 Bad Gateway</html>"))
	c.TextsLoaded("xx", BuiltinJSON("en"))
	if c.Texts().Get(TextRetry) != TextRetry || c.Texts().Lang() != "nl" {
		t.Fatal("garbage or another language taken as texts")
	}
	if u := c.SetLook(Look{}); u.Texts != "" {
		t.Fatal("a failed language asked for again before a welcome")
	}
}
