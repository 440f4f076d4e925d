package widget

import (
	"regexp"
	"strings"
	"testing"
)

func TestBuiltinTextsComplete(t *testing.T) {
	ph := regexp.MustCompile(`\{[a-z]+\}`)
	for _, key := range TextKeys() {
		v, _ := builtin(key)
		want := strings.Join(ph.FindAllString(v[0], -1), ",")
		for i, s := range v {
			if strings.TrimSpace(s) == "" {
				t.Errorf("%s: empty in %s", key, Languages[i])
			}
			if got := strings.Join(ph.FindAllString(s, -1), ","); got != want {
				t.Errorf("%s in %s has placeholders %q, English %q", key, Languages[i], got, want)
			}
			if strings.Contains(s, "...") {
				t.Errorf("%s in %s: use an ellipsis character", key, Languages[i])
			}
		}
		if !IsTextKey(key) || !IsTextKey("nl."+key) {
			t.Errorf("IsTextKey(%q)", key)
		}
	}
	keys := TextKeys()
	for i := 1; i < len(keys); i++ {
		if keys[i] == keys[i-1] {
			t.Errorf("key %q twice", keys[i])
		}
	}
	for _, k := range []string{"", "nope", "es.send", "nl.", "nl.nope", ".send"} {
		if IsTextKey(k) {
			t.Errorf("IsTextKey(%q) = true", k)
		}
	}
	en := NewTexts("en", nil)
	for key, want := range map[string]string{
		TextLauncherOpen: "Open chat", TextLauncherClose: "Close chat", TextPlaceholder: "Type your message…",
		TextSending: "Sending…", TextSent: "Sent", TextDelivered: "Delivered", TextFailed: "Not delivered",
		TextRetry: "Retry", TextReconnecting: "Reconnecting…", TextMinimise: "Minimise", TextOpenFile: "Open file",
		TextOffline: "You're offline; we'll send your messages when you're back.", TextNewMessages: "New messages",
	} {
		if got := en.Get(key); got != want {
			t.Errorf("en %s = %q, want %q", key, got, want)
		}
	}
}

func TestPickLanguage(t *testing.T) {
	cases := []struct {
		configured, page string
		browser          []string
		want             string
	}{
		{"", "", nil, "en"},
		{"nl-BE", "", nil, "nl"},
		{"", "nl-BE", nil, "nl"},
		{"", "de_AT", nil, "de"},
		{"", "FR-ca", nil, "fr"},
		{"", "es", []string{"pt-BR", "de-CH", "fr"}, "de"},
		{"fr", "nl", []string{"de"}, "fr"},
		{"es", "", []string{"en-US"}, "en"},
		{"xx", "yy", []string{"zz"}, "en"},
		{" nl ", "", nil, "nl"},
		{"dutch", "", nil, "en"},
	}
	for _, c := range cases {
		if got := PickLanguage(c.configured, c.page, c.browser...); got != c.want {
			t.Errorf("PickLanguage(%q, %q, %q) = %s, want %s", c.configured, c.page, c.browser, got, c.want)
		}
	}
}

func TestTextsFormatting(t *testing.T) {
	cases := []struct {
		lang string
		n    int
		want string
	}{
		{"en", 1, "1 unread message"},
		{"en", 0, "0 unread messages"},
		{"en", 5, "5 unread messages"},
		{"nl", 1, "1 ongelezen bericht"},
		{"nl", 2, "2 ongelezen berichten"},
		{"de", 1, "1 ungelesene Nachricht"},
		{"de", 12, "12 ungelesene Nachrichten"},
		{"fr", 0, "0 message non lu"},
		{"fr", 1, "1 message non lu"},
		{"fr", 2, "2 messages non lus"},
	}
	for _, c := range cases {
		if got := NewTexts(c.lang, nil).Unread(c.n); got != c.want {
			t.Errorf("%s Unread(%d) = %q, want %q", c.lang, c.n, got, c.want)
		}
	}
	en := NewTexts("en-GB", nil)
	if en.Lang() != "en" || en.CardOf(2, 5) != "Card 2 of 5" || en.Typing("Acme") != "Acme is typing…" || en.Typing(" ") != "Typing…" {
		t.Fatal(en.CardOf(2, 5), en.Typing("Acme"))
	}
	if en.Dialog("Acme") != "Chat with Acme" || en.Dialog("") != "Chat" {
		t.Fatal(en.Dialog("Acme"))
	}
	if NewTexts("de", nil).CardOf(1, 3) != "Karte 1 von 3" || NewTexts("fr", nil).Typing("Léa") != "Léa est en train d’écrire…" {
		t.Fatal("de/fr formatting")
	}
	if en.State(StateSending) != "Sending…" || en.State("") != "" || en.Error(CodeRateLimited) == en.Error("weird") {
		t.Fatal("state/error texts")
	}
	if got := (Texts{}).Get(TextSend); got != "Send" {
		t.Fatalf("zero Texts: %q", got)
	}
	if got := en.Get("no_such_key"); got != "no_such_key" {
		t.Fatal(got)
	}
}

func TestTextOverrides(t *testing.T) {
	over := map[string]string{
		"send":         "Go",
		"nl.send":      "Hup",
		"placeholder":  "",
		"unread_other": "{n} new",
	}
	if got := NewTexts("en", over).Get(TextSend); got != "Go" {
		t.Fatal(got)
	}
	if got := NewTexts("nl", over).Get(TextSend); got != "Hup" {
		t.Fatal(got)
	}
	if got := NewTexts("fr", over).Get(TextSend); got != "Go" {
		t.Fatal(got)
	}
	if got := NewTexts("de", over).Get(TextPlaceholder); got != "Nachricht schreiben…" {
		t.Fatalf("empty override used: %q", got)
	}
	if got := NewTexts("en", over).Unread(3); got != "3 new" {
		t.Fatal(got)
	}
}
