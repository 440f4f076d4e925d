package widget

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// pluralKeys are the keys of the unread count, by category.
var pluralKeys = map[string]string{"zero": TextUnreadZero, "one": TextUnreadOne, "two": TextUnreadTwo,
	"few": TextUnreadFew, "many": TextUnreadMany, "other": TextUnreadOther}

// TestBuiltinTextsComplete: every language has every key of English once,
// the same placeholders, an ellipsis character rather than three dots,
// and exactly the plural keys its rule picks for 0 to 1000 (and "other").
func TestBuiltinTextsComplete(t *testing.T) {
	if len(builtinTexts) != len(Languages) {
		t.Fatalf("%d languages have texts, Languages has %d", len(builtinTexts), len(Languages))
	}
	ph := regexp.MustCompile(`\{[a-z]+\}`)
	en := Builtin("en")
	for i, l := range builtinTexts {
		if l.lang != Languages[i] {
			t.Fatalf("texts %d are %s, Languages[%d] is %s", i, l.lang, i, Languages[i])
		}
		uses := map[string]bool{"other": true}
		for n := 0; n <= 1000; n++ {
			uses[PluralCategory(l.lang, n)] = true
		}
		seen := map[string]bool{}
		for _, p := range l.texts {
			if seen[p.key] {
				t.Errorf("%s: %s twice", l.lang, p.key)
			}
			seen[p.key] = true
			if strings.TrimSpace(p.text) == "" || strings.Contains(p.text, "...") {
				t.Errorf("%s %s = %q: empty, or three dots for an ellipsis", l.lang, p.key, p.text)
			}
			cat, plural := "", strings.HasPrefix(p.key, "unread_")
			if plural {
				cat = strings.TrimPrefix(p.key, "unread_")
				if pluralKeys[cat] != p.key || !uses[cat] {
					t.Errorf("%s has %s, a category its plural rule never picks", l.lang, p.key)
				}
			} else if _, ok := en[p.key]; !ok {
				t.Errorf("%s has %s, which English lacks", l.lang, p.key)
			}
			want := ph.FindAllString(en[p.key], -1)
			if plural {
				want = []string{"{n}"}
			}
			got := ph.FindAllString(p.text, -1)
			// One, two and zero may be said in words ("رسالتان").
			if !slices.Equal(got, want) && !(plural && len(got) == 0 && (cat == "zero" || cat == "one" || cat == "two")) {
				t.Errorf("%s %s has placeholders %q, want %q", l.lang, p.key, got, want)
			}
		}
		for key := range en {
			if !seen[key] && !strings.HasPrefix(key, "unread_") && key != TextPlural {
				t.Errorf("%s lacks %s", l.lang, key)
			}
		}
		for cat := range uses {
			if !seen[pluralKeys[cat]] {
				t.Errorf("%s lacks %s, which its plural rule picks", l.lang, pluralKeys[cat])
			}
		}
	}
	keys := TextKeys()
	if !slices.IsSorted(keys) || len(slices.Compact(slices.Clone(keys))) != len(keys) {
		t.Errorf("TextKeys() = %q: not sorted or not unique", keys)
	}
	for _, key := range keys {
		if !IsTextKey(key) || !IsTextKey("nl."+key) || !IsTextKey("ar."+key) {
			t.Errorf("IsTextKey(%q)", key)
		}
	}
	for _, k := range []string{"", "nope", "xx.send", "nl.", "nl.nope", ".send", "NL.send", "nl-BE.send"} {
		if IsTextKey(k) {
			t.Errorf("IsTextKey(%q) = true", k)
		}
	}
	if !IsTextKey(TextUnreadFew) || !IsTextKey("pl."+TextUnreadMany) {
		t.Error("the plural keys are not text keys")
	}
	for key, want := range map[string]string{
		TextLauncherOpen: "Open chat", TextLauncherClose: "Close chat", TextPlaceholder: "Type your message…",
		TextSending: "Sending…", TextSent: "Sent", TextDelivered: "Delivered", TextFailed: "Not delivered",
		TextRetry: "Retry", TextReconnecting: "Reconnecting…", TextMinimise: "Minimise", TextOpenFile: "Open file",
		TextOffline: "You're offline; we'll send your messages when you're back.", TextNewMessages: "New messages",
	} {
		if got := NewTexts("en", nil).Get(key); got != want {
			t.Errorf("en %s = %q, want %q", key, got, want)
		}
	}
}

// TestBuiltinJSON: the asset the widget fetches reads back as the
// language's texts, and only languages of Languages have one.
func TestBuiltinJSON(t *testing.T) {
	for _, lang := range Languages {
		m := Builtin(lang)
		want := Builtin(lang)
		if len(m) != len(want) {
			t.Fatalf("%s: %d texts, want %d", lang, len(m), len(want))
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s %s = %q, want %q", lang, k, m[k], v)
			}
		}
	}
	if BuiltinJSON("xx") != nil || Builtin("xx") != nil {
		t.Error("a language without texts has some")
	}
	for _, bad := range []string{``, `[]`, `{}`, `{"send": "Send"`, `"send"`} {
		if _, ok := ParseTexts([]byte(bad)); ok {
			t.Errorf("ParseTexts(%q) accepted", bad)
		}
	}
	if IsTextKey(TextPlural) {
		t.Error("the plural rule can be overridden")
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
		{"", "ja", []string{"zh-CN", "de-CH", "fr"}, "de"},
		{"fr", "nl", []string{"de"}, "fr"},
		{"es", "", []string{"en-US"}, "es"},
		{"", "pt-BR", nil, "pt"},
		{"", "", []string{"ar-EG"}, "ar"},
		{"iw", "he-IL", nil, "he"},
		{"xx", "yy", []string{"zz"}, "en"},
		{" nl ", "", nil, "nl"},
		{"dutch", "", nil, "en"},
	}
	for _, c := range cases {
		if got := PickLanguage(c.configured, c.page, c.browser...); got != c.want {
			t.Errorf("PickLanguage(%q, %q, %q) = %s, want %s", c.configured, c.page, c.browser, got, c.want)
		}
	}
	for _, l := range Languages {
		want := "ltr"
		if l == "ar" || l == "he" {
			want = "rtl"
		}
		if Dir(l) != want || NewTexts(l, nil).Dir() != want {
			t.Errorf("Dir(%s) = %s, want %s", l, Dir(l), want)
		}
	}
}

// TestPluralCategory holds the rules to CLDR's examples for integers,
// and the rule each language's texts carry (TextPlural) to the rules.
func TestPluralCategory(t *testing.T) {
	for _, lang := range Languages {
		r := Builtin(lang)[TextPlural]
		for n := 0; n < 5000; n++ {
			i := n
			if i > 2 {
				i = 3 + i%100
			}
			if got, want := r[i], pluralLetter(PluralCategory(lang, n)); got != want {
				t.Fatalf("%s: the texts' rule says %c for %d, PluralCategory %c", lang, got, n, want)
			}
		}
	}
	for lang, cats := range map[string]map[string][]int{
		"en": {"one": {1}, "other": {0, 2, 5, 11, 21, 100}},
		"fr": {"one": {0, 1}, "other": {2, 5, 100}},
		"pt": {"one": {0, 1}, "other": {2, 5, 100}},
		"tr": {"one": {1}, "other": {0, 2, 3}},
		"ar": {"zero": {0}, "one": {1}, "two": {2}, "few": {3, 7, 10, 103, 110, 1003}, "many": {11, 26, 99, 111, 1011}, "other": {100, 101, 102, 200, 1000}},
		"he": {"one": {1}, "two": {2}, "other": {0, 3, 10, 20, 100}},
		"pl": {"one": {1}, "few": {2, 3, 4, 22, 24, 32, 102}, "many": {0, 5, 11, 12, 13, 14, 21, 25, 100, 112}},
	} {
		for cat, ns := range cats {
			for _, n := range ns {
				if got := PluralCategory(lang, n); got != cat {
					t.Errorf("PluralCategory(%s, %d) = %s, want %s", lang, n, got, cat)
				}
			}
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
		{"es", 3, "3 mensajes no leídos"},
		{"pl", 1, "1 nieprzeczytana wiadomość"},
		{"pl", 3, "3 nieprzeczytane wiadomości"},
		{"pl", 5, "5 nieprzeczytanych wiadomości"},
		{"pl", 22, "22 nieprzeczytane wiadomości"},
		{"pl", 12, "12 nieprzeczytanych wiadomości"},
		{"ar", 1, "رسالة واحدة غير مقروءة"},
		{"ar", 2, "رسالتان غير مقروءتين"},
		{"ar", 3, "3 رسائل غير مقروءة"},
		{"ar", 11, "11 رسالة غير مقروءة"},
		{"ar", 100, "100 رسالة غير مقروءة"},
		{"he", 1, "הודעה אחת שלא נקראה"},
		{"he", 2, "שתי הודעות שלא נקראו"},
		{"he", 7, "7 הודעות שלא נקראו"},
		{"tr", 4, "4 okunmamış mesaj"},
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
	if got := NewTexts("ar", nil).Dialog("أكمي"); got != "الدردشة مع أكمي" {
		t.Fatalf("ar dialog %q", got)
	}
	if en.State(StateSending) != "Sending…" || en.State("") != "" || en.Error(CodeRateLimited) == en.Error("weird") {
		t.Fatal("state/error texts")
	}
	// Without built-in texts (something went badly wrong), keys.
	if got := (Texts{}).Get(TextSend); got != TextSend {
		t.Fatalf("zero Texts: %q", got)
	}
	if got := en.Get("no_such_key"); got != "no_such_key" {
		t.Fatal(got)
	}
	if got := TextsOf("nl", JSONValue{}, nil).Unread(2); got != TextUnreadOther {
		t.Fatalf("unread without texts: %q", got)
	}
}

func TestTextOverrides(t *testing.T) {
	over := map[string]string{
		"send":          "Go",
		"nl.send":       "Hup",
		"placeholder":   "",
		"unread_other":  "{n} new",
		"pl.unread_few": "{n} nowe",
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
	// An override of one plural form leaves the others built in.
	if got := NewTexts("pl", over).Unread(3); got != "3 nowe" {
		t.Fatal(got)
	}
	if got := NewTexts("pl", over).Unread(5); got != "5 nieprzeczytanych wiadomości" {
		t.Fatal(got)
	}
	// A page's override of "other" alone serves every count when the
	// built-in texts are missing.
	if got := TextsOf("ar", JSONValue{}, map[string]string{"unread_other": "{n} جديدة"}).Unread(3); got != "3 جديدة" {
		t.Fatal(got)
	}
}
