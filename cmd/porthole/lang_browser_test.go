package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// Languages in a real browser: right-to-left Arabic in the widget and on
// the chat page, on a desktop and on a phone, under axe-core; the
// built-in texts fetched from the server; Porthole.setLanguage.

// arabicScript is a demo bot that speaks Arabic.
const arabicScript = `name: Acme in Arabic
start: welcome
fallback: thanks
blocks:
  welcome:
    messages:
      - text: "أهلًا بك! كيف يمكننا مساعدتك في شحنتك؟"
        quick_replies:
          - {title: "تتبّع شحنة", next: track}
          - {title: "عرض الخدمات", next: services}
  track:
    messages:
      - text: "أرسل لنا رقم الشحنة وسنخبرك بمكانها الآن."
  services:
    messages:
      - text: "اختر خدمة:"
      - cards:
          - {title: "الشحن البحري", subtitle: "من ميناء إلى ميناء", image: /static/demo/harbour.svg, buttons: [{title: "اختيار", next: track}]}
          - {title: "الشحن البري", subtitle: "حتى باب منزلك", image: /static/demo/lighthouse.svg, buttons: [{title: "اختيار", next: track}]}
          - {title: "التخزين", subtitle: "مستودعات آمنة", image: /static/demo/sea.svg, buttons: [{title: "اختيار", next: track}]}
  thanks:
    messages:
      - text: "شكرًا لرسالتك! شحنتك في الطريق وستصل غدًا."
        quick_replies:
          - {title: "عرض الخدمات", next: services}
`

// langPage is a host page in a language, embedding the widget.
const langPage = `<!doctype html>
<html lang="%s" dir="%s"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme</title>%s</head>
<body><main><h1>Acme</h1><p>%s</p></main>
<script async src="%s/widget.js" data-bot="demo"%s></script>
</body></html>`

// langSite is the proxy, with the Arabic demo bot (an Arabic title and
// greeting, and one German override among its texts), and a host site
// on another origin with pages in Arabic (/ar, /ar-left with the
// launcher on the left) and English (/en, /en-pl calling setLanguage
// before the widget loads).
type langSite struct {
	proxy *proc
	url   string // the proxy's origin
	host  *httptest.Server
}

func newLangSite(t testing.TB) *langSite {
	t.Helper()
	data := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &langSite{url: fmt.Sprintf("http://localhost:%d", port)}
	page := func(lang, dir, head, attrs string) string {
		text := "We move boxes across the sea."
		if lang == "ar" {
			text = "ننقل الصناديق عبر البحار."
		}
		return fmt.Sprintf(langPage, lang, dir, head, text, s.url, attrs)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ar", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, page("ar", "rtl", "", "")) })
	mux.HandleFunc("/ar-left", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, page("ar", "rtl", "", ` data-position="left"`))
	})
	mux.HandleFunc("/en", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, page("en", "ltr", "", "")) })
	mux.HandleFunc("/en-pl", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, page("en", "ltr", `<script>window.Porthole = window.Porthole || []; Porthole.push(["setLanguage", "pl-PL"]);</script>`, ""))
	})
	s.host = httptest.NewServer(mux)
	t.Cleanup(s.host.Close)

	script := filepath.Join(data, "arabic.yaml")
	if err := os.WriteFile(script, []byte(arabicScript), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`public_url: "http://localhost:%d"
bots:
  - id: demo
    provider: demo
    origins: ["self", "%s"]
    demo: {typing_delay: 60ms, script: %q}
    widget:
      title: "شركة أكمي للشحن"
      subtitle: "نرد خلال ثوانٍ"
      brand_color: "#0b6e6e"
      greeting: "اسألنا عن شحنتك."
      texts: {"de.placeholder": "Ihre Frage an Acme…"}
`, port, s.host.URL, script)
	if err := os.WriteFile(filepath.Join(data, "porthole.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.proxy, _ = startProxyOn(t, data, port)
	return s
}

// rect is an element's bounding box in the shadow root, with the
// viewport's width.
func rect(t testing.TB, ctx context.Context, sel string) map[string]float64 {
	t.Helper()
	return evalJS[map[string]float64](t, ctx, `(function(){var r = `+in(sel)+`.getBoundingClientRect();
		return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, vw: innerWidth}})()`)
}

// TestWidgetRightToLeft: on an Arabic page the loader draws the panel
// right to left at once, the widget fetches the Arabic texts (and no
// others) and keeps the panel right to left, the carousel scrolls the
// right way, the launcher stays on the side the site chose, and axe-core
// finds no violations, on a desktop and on a phone.
func TestWidgetRightToLeft(t *testing.T) {
	axe := axeSource(t)
	s := newLangSite(t)
	for _, tc := range []struct {
		name          string
		width, height int
	}{{"desktop", 1280, 860}, {"phone", 390, 780}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := browser(t, tc.width, tc.height)
			reqs := recordRequests(t, ctx)
			navigate(t, ctx, s.host.URL+"/ar")
			waitJS(t, ctx, "the styled launcher", launcherStyled)
			if got := evalJS[string](t, ctx, in(".launcher")+`.getAttribute("aria-label")`); got != "فتح الدردشة" {
				t.Errorf("the loader's launcher says %q", got)
			}
			if l := rect(t, ctx, ".launcher"); l["right"] < l["vw"]-40 {
				t.Errorf("the launcher %v left the right side the site chose", l)
			}
			click(t, ctx, ".launcher")
			// The loader's frame, before the widget runs: right to left.
			waitJS(t, ctx, "the open panel", in(".panel")+` && !`+in(".panel")+`.hidden`)
			if dir := evalJS[string](t, ctx, in(".panel")+`.dir`); dir != "rtl" {
				t.Errorf("the loader drew the panel with dir %q", dir)
			}
			botSays(t, ctx, "أهلًا بك")
			for attr, want := range map[string]string{
				in(".panel") + `.dir`:                              "rtl",
				in(".panel") + `.lang`:                             "ar",
				`getComputedStyle(` + in(".panel") + `).direction`: "rtl",
				in("textarea") + `.placeholder`:                    "اكتب رسالتك…",
				in(".send") + `.getAttribute("aria-label")`:        "إرسال",
				in(".close") + `.getAttribute("aria-label")`:       "إغلاق",
				in(".launcher") + `.getAttribute("aria-label")`:    "إغلاق الدردشة",
				in(".panel") + `.getAttribute("aria-label")`:       "الدردشة مع شركة أكمي للشحن",
				in(".quick") + `.getAttribute("aria-label")`:       "ردود مقترحة",
				// The send arrow points the way the line runs.
				`getComputedStyle(` + in(".send svg") + `).transform`: "matrix(-1, 0, 0, 1, 0, 0)",
			} {
				if got := evalJS[string](t, ctx, attr); got != want {
					t.Errorf("%s = %q, want %q", attr, got, want)
				}
			}
			if got := reqs.matching("/static/dist/texts."); len(got) != 1 || !strings.Contains(got[0], "/texts.ar.") {
				t.Errorf("texts fetched: %q, want the Arabic ones once", got)
			}

			typeMessage(t, ctx, "أين شحنتي؟")
			botSays(t, ctx, "شكرًا لرسالتك")
			// The visitor's messages keep to the end of the line, which
			// right to left is the left; the bot's to the start, the right.
			user, bot, log := rect(t, ctx, ".msg.user .bubble"), rect(t, ctx, ".msg.bot .bubble"), rect(t, ctx, ".log")
			if user["left"]-log["left"] > 30 || log["right"]-bot["right"] > 30 {
				t.Errorf("not mirrored: visitor's bubble %v, bot's %v, log %v", user, bot, log)
			}
			if send, ta := rect(t, ctx, ".send"), rect(t, ctx, "textarea"); send["right"] > ta["left"]+1 {
				t.Errorf("the send button %v is not left of the composer %v", send, ta)
			}

			// The carousel starts at the right and goes left.
			clickText(t, ctx, "عرض الخدمات")
			waitJS(t, ctx, "three cards", shadow+`.querySelectorAll(".card").length == 3`)
			waitJS(t, ctx, "the previous button disabled at the start", in(".nav.prev")+`.disabled && !`+in(".nav.next")+`.disabled`)
			if first, track := rect(t, ctx, ".card"), rect(t, ctx, ".track"); track["right"]-first["right"] > 12 {
				t.Errorf("the first card %v does not start at the right of the track %v", first, track)
			}
			click(t, ctx, ".nav.next")
			waitJS(t, ctx, "the track scrolled left", in(".track")+`.scrollLeft < -20 && !`+in(".nav.prev")+`.disabled`)

			for _, v := range runAxe(t, ctx, axe, `document.querySelector("[data-porthole]")`) {
				t.Errorf("axe: %s", v)
			}
		})
	}
	// The site's choice of side is physical: left stays left.
	t.Run("left launcher", func(t *testing.T) {
		ctx := browser(t, 1280, 860)
		navigate(t, ctx, s.host.URL+"/ar-left")
		waitJS(t, ctx, "the styled launcher", launcherStyled)
		click(t, ctx, ".launcher")
		botSays(t, ctx, "أهلًا بك")
		if l, p := rect(t, ctx, ".launcher"), rect(t, ctx, ".panel"); l["left"] > 40 || p["left"] > 40 {
			t.Errorf("launcher %v and panel %v left the left side", l, p)
		}
		if dir := evalJS[string](t, ctx, in(".panel")+`.dir`); dir != "rtl" {
			t.Errorf("panel dir %q", dir)
		}
	})
}

// TestWidgetSetLanguage: Porthole.setLanguage fetches the new language's
// texts and switches the panel to them, direction included; the bot's
// overrides (widget.texts) and the page's (init({texts})) still win, and
// "" goes back to the page's language. A setLanguage queued before the
// widget loaded holds from the start.
func TestWidgetSetLanguage(t *testing.T) {
	s := newLangSite(t)
	ctx := browser(t, 1280, 860)
	reqs := recordRequests(t, ctx)
	navigate(t, ctx, s.host.URL+"/en")
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	click(t, ctx, ".launcher")
	botSays(t, ctx, "أهلًا بك")
	state := func() string {
		return evalJS[string](t, ctx, `[`+in(".panel")+`.lang, `+in(".panel")+`.dir, `+in("textarea")+`.placeholder, `+
			in(".send")+`.getAttribute("aria-label"), `+in(".launcher")+`.getAttribute("aria-label")].join(" | ")`)
	}
	want := func(what, expr string) {
		t.Helper()
		waitJS(t, ctx, what, `(function(){var p = `+in(".panel")+`; return `+expr+`})()`)
	}
	if got := state(); got != "en | ltr | Type your message… | Send | Close chat" {
		t.Fatalf("English page: %s", got)
	}
	evalJS[any](t, ctx, `Porthole.setLanguage("he-IL"), null`)
	want("Hebrew texts", `p.lang == "he" && p.dir == "rtl" && `+in("textarea")+`.placeholder == "הקלידו הודעה…"`)
	if got := state(); got != "he | rtl | הקלידו הודעה… | שליחה | סגירת הצ׳אט" {
		t.Errorf("Hebrew: %s", got)
	}
	evalJS[any](t, ctx, `Porthole.setLanguage("de"), null`)
	want("German texts", `p.lang == "de" && p.dir == "ltr"`)
	if got := state(); got != "de | ltr | Ihre Frage an Acme… | Senden | Chat schließen" {
		t.Errorf("German with the bot's placeholder: %s", got)
	}
	evalJS[any](t, ctx, `Porthole.init({texts: {"de.send": "Los", "he.send": "שלח"}}), null`)
	want("the page's override", in(".send")+`.getAttribute("aria-label") == "Los"`)
	evalJS[any](t, ctx, `Porthole.setLanguage(""), null`)
	want("English again", `p.lang == "en" && p.dir == "ltr"`)
	if got := state(); got != "en | ltr | Type your message… | Send | Close chat" {
		t.Errorf("back to the page's language: %s", got)
	}
	// Each language's texts once; English again from the browser's cache
	// or a second request, never another file.
	for _, lang := range []string{"en", "he", "de"} {
		if n := len(reqs.matching("/static/dist/texts." + lang + ".")); n < 1 {
			t.Errorf("texts of %s fetched %d times", lang, n)
		}
	}
	if n := len(reqs.matching("/static/dist/texts.")); n > 4 {
		t.Errorf("%d texts requests: %q", n, reqs.matching("/static/dist/texts."))
	}

	// Queued before the widget loaded: Polish from the first render.
	navigate(t, ctx, s.host.URL+"/en-pl")
	waitJS(t, ctx, "the styled launcher", launcherStyled)
	click(t, ctx, ".launcher")
	want("Polish texts", `p.lang == "pl" && `+in("textarea")+`.placeholder == "Napisz wiadomość…"`)
}

// TestChatPageRightToLeft: the no-JavaScript chat page in Arabic is
// right to left, mirrored, and passes axe-core on a desktop and on a
// phone.
func TestChatPageRightToLeft(t *testing.T) {
	axe := axeSource(t)
	s := newLangSite(t)
	for _, tc := range []struct {
		name          string
		query         string
		width, height int
	}{{"desktop", "?lang=ar", 1280, 860}, {"phone-embedded", "?lang=ar&embed=1", 390, 780}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := browser(t, tc.width, tc.height)
			navigate(t, ctx, s.url+"/chat/demo"+tc.query)
			typeInto(t, ctx, mainDoc, "textarea", "أين شحنتي؟")
			clickButton(t, ctx, mainDoc, "إرسال")
			doc := waitDOM(t, ctx, mainDoc, "the bot's answer", func(d *goquery.Document) bool {
				return strings.Contains(d.Find(".msg.bot").Text(), "شكرًا لرسالتك")
			})
			if h := doc.Find("html"); h.AttrOr("lang", "") != "ar" || h.AttrOr("dir", "") != "rtl" {
				t.Errorf("<html lang=%q dir=%q>", h.AttrOr("lang", ""), h.AttrOr("dir", ""))
			}
			// Without its self-refresh, so that no reload cuts axe short.
			navigate(t, ctx, s.url+"/chat/demo"+tc.query+"&refresh=off")
			waitDOM(t, ctx, mainDoc, "the transcript", func(d *goquery.Document) bool { return d.Find(".msg.user").Length() > 0 })
			m := evalJS[map[string]float64](t, ctx, `(function(){
				var u = document.querySelector(".msg.user .bubble").getBoundingClientRect(),
					b = document.querySelector(".msg.bot .bubble").getBoundingClientRect(),
					l = document.querySelector(".log").getBoundingClientRect();
				return {user: u.left - l.left, bot: l.right - b.right, scrollW: document.documentElement.scrollWidth, vw: innerWidth}})()`)
			if m["user"] > 2 || m["bot"] > 2 {
				t.Errorf("not mirrored: the visitor's bubble %vpx from the left, the bot's %vpx from the right", m["user"], m["bot"])
			}
			if m["scrollW"] > m["vw"] {
				t.Errorf("the page is %v px wide on a %v px screen", m["scrollW"], m["vw"])
			}
			for _, v := range runAxe(t, ctx, axe, "document") {
				t.Errorf("axe: %s", v)
			}
		})
	}
}
