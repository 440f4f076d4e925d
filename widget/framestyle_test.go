package widget

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// lookOf undoes what the loader undoes: the single-quoted custom property
// after "--ph-look:", percent escapes, then JSON.
func lookOf(t *testing.T, css []byte) map[string]any {
	t.Helper()
	s := string(css)
	i := strings.Index(s, "--ph-look:'")
	j := strings.LastIndex(s, "'}")
	if i < 0 || j < i {
		t.Fatalf("no --ph-look in %q", s)
	}
	raw := s[i+len("--ph-look:'") : j]
	if strings.ContainsAny(raw, "'\\\n\r") {
		t.Fatalf("the look would break out of its CSS string: %q", raw)
	}
	dec, err := url.PathUnescape(raw) // decodeURIComponent's rules for %XX
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(dec), &m); err != nil {
		t.Fatalf("%v in %s", err, dec)
	}
	return m
}

func TestFrameStyleCarriesTheLookSafely(t *testing.T) {
	hostile := `Ann's "bot" \ 100% <b>
next line }'; color: red`
	l := NewFrameLook(Look{Title: hostile, Subtitle: "Wir antworten schnell", Greeting: "Hallo – wie geht's?",
		BrandColor: "#ffcc00", Position: "left", Icon: "javascript:alert(1)"}, "", "de-AT")
	l.Connect = "open"
	l.Teaser = &Teaser{Text: "Fragen?", DelayMS: 5000, Paths: []string{"/preise"}}
	css := FrameStyle([]byte(".x{}"), l)
	if !strings.HasPrefix(string(css), ".x{}:host{--ph-brand:#ffcc00;--ph-on-brand:#111827;") {
		t.Errorf("colours: %s", css)
	}
	m := lookOf(t, css)
	if m["t"] != hostile || m["g"] != "Hallo – wie geht's?" || m["p"] != "left" || m["k"] != "open" {
		t.Errorf("look = %v", m)
	}
	if _, ok := m["i"]; ok {
		t.Errorf("a javascript: icon reached the loader: %v", m["i"])
	}
	x := m["x"].(map[string]any)
	if x["l"] != "de" || x["r"] != "ltr" || x["o"] != "Chat öffnen" || x["d"] != "Chat mit "+hostile || x["n"] != "Verbindung wird hergestellt…" {
		t.Errorf("texts = %v", x)
	}
	// Right to left: the loader draws the panel with dir="rtl".
	ar := lookOf(t, FrameStyle(nil, NewFrameLook(Look{Title: "أكمي"}, "ar", "en")))["x"].(map[string]any)
	if ar["l"] != "ar" || ar["r"] != "rtl" || ar["o"] != "فتح الدردشة" || ar["d"] != "الدردشة مع أكمي" {
		t.Errorf("Arabic texts = %v", ar)
	}
	z := m["z"].(map[string]any)
	if z["t"] != "Fragen?" || z["d"] != 5000.0 || z["p"].([]any)[0] != "/preise" {
		t.Errorf("teaser = %v", z)
	}
}

func TestFrameLookLanguage(t *testing.T) {
	for _, tc := range []struct{ locale, option, page, want string }{
		{"", "", "nl-BE", "nl"},
		{"fr", "", "nl-BE", "fr"}, // the bot's locale over the page's
		{"fr", "de", "nl", "de"},  // the page's data-language over both
		{"", "", "xx", "en"},
		{"", "", "he-IL", "he"},
		{"pl", "", "ar", "pl"},
	} {
		if got := NewFrameLook(Look{Locale: tc.locale}, tc.option, tc.page).Lang; got != tc.want {
			t.Errorf("locale %q, option %q, page %q: %q, want %q", tc.locale, tc.option, tc.page, got, tc.want)
		}
	}
}
